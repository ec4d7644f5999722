"""Waiting for a review through the SDK against the real HTTP app (sync: loopback uvicorn)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from lictor.core.requests import Principal
from lictor.errors import ReviewDenied, ReviewTimeout
from lictor.sdk import AsyncLictorClient, Guard
from lictor.server.runtime import Runtime
from lictor.service.reviews import ReviewStatus, Verdict

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

MARIA = Principal("maria@corp.example", ("support",))


@contextmanager
def reviewer(runtime: Runtime, verdict: Verdict) -> Iterator[None]:
    """A person in another thread who resolves the first pending review as it appears."""
    reviews = runtime.reviews
    assert reviews is not None
    done = threading.Event()

    def work() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not done.is_set():
            pending = reviews.store.list(status=ReviewStatus.PENDING)
            if pending:
                time.sleep(0.1)  # the agent is waiting by now
                reviews.resolve(pending[0].review_id, verdict, reviewer="rick", comment="seen")
                return
            time.sleep(0.02)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=10)


def governed(client: Any, guard: Guard, ran: list[float]) -> Any:
    def refund(order: str, amount: float) -> str:
        ran.append(amount)
        return f"refunded {amount}"

    async def arefund(order: str, amount: float) -> str:
        return refund(order, amount)

    wrapped: Any = guard.wrap(
        arefund if isinstance(client, AsyncLictorClient) else refund, name="refunds.issue"
    )

    async def invoke(*args: Any) -> Any:
        result = wrapped(*args)
        return await result if isinstance(client, AsyncLictorClient) else result

    return invoke


async def test_an_approved_call_runs_once_after_the_wait(
    client_for: Any, tokens: Any, runtime: Runtime
) -> None:
    client = client_for(tokens.agent)
    ran: list[float] = []
    invoke = governed(client, Guard(client, principal=MARIA, review_timeout_seconds=10), ran)
    with reviewer(runtime, Verdict.APPROVE):
        assert await invoke("ORD-2", 500.0) == "refunded 500.0"
    assert ran == [500.0]
    assert runtime.reviews is not None
    [review] = runtime.reviews.store.list(status=ReviewStatus.CONSUMED)
    assert review.tool == "refunds.issue"


async def test_a_denied_call_raises_and_never_runs(
    client_for: Any, tokens: Any, runtime: Runtime
) -> None:
    client = client_for(tokens.agent)
    ran: list[float] = []
    invoke = governed(client, Guard(client, principal=MARIA, review_timeout_seconds=10), ran)
    with reviewer(runtime, Verdict.DENY), pytest.raises(ReviewDenied) as info:
        await invoke("ORD-2", 500.0)
    assert info.value.review.comment == "seen"
    assert info.value.decision.review_id == info.value.review.review_id
    assert ran == []


async def test_a_wait_that_runs_out_raises_review_timeout(
    client_for: Any, tokens: Any, runtime: Runtime
) -> None:
    client = client_for(tokens.agent)
    ran: list[float] = []
    invoke = governed(client, Guard(client, principal=MARIA, review_timeout_seconds=0.3), ran)
    started = time.monotonic()
    with pytest.raises(ReviewTimeout) as info:
        await invoke("ORD-2", 500.0)
    assert 0.25 < time.monotonic() - started < 5
    assert info.value.review.status is ReviewStatus.PENDING
    assert ran == []
