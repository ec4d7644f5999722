"""Human review over HTTP: open, wait, approve once, deny, expire, refuse self-review."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from lictor.server.runtime import Runtime
from lictor.service.memory import FixedClock
from lictor.service.ports import AuditQuery, CredentialKind, Role
from lictor.settings import Settings
from lictor.store import open_store
from lictor.store.reviews import SqlReviews
from server.support import NOW, Tokens, bearer, problem_type, slug

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

KNOWN_PAYEE = "DE89370400440532013000"


def transfer(amount: int, principal: str = "emma@corp.example") -> dict[str, Any]:
    return {
        "tool": "send_money",
        "arguments": {"amount": amount, "to_account": KNOWN_PAYEE},
        "principal": {"id": principal},
        "context": {"task": f"pay {amount} to {KNOWN_PAYEE}"},
    }


async def decide(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/decide", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()
    return decision


async def verdict(
    client: httpx.AsyncClient, token: str, review_id: str, action: str, comment: str = "ok"
) -> httpx.Response:
    return await client.post(
        f"/v1/reviews/{review_id}/{action}", json={"comment": comment}, headers=bearer(token)
    )


def review_steps(runtime: Runtime, review_id: str) -> list[str]:
    """The ``review`` records of one review (each is durable before its step is answered)."""
    page = runtime.store.audit.query(AuditQuery(kind="review", limit=1000))
    return [r.payload["action"] for r in page.records if r.payload["review_id"] == review_id]


async def test_a_review_decision_opens_a_review_bound_to_the_action(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    decision = await decide(client, tokens.agent, transfer(20_000))
    assert decision["outcome"] == "review"
    review_id = decision["review_id"]
    record = runtime.store.audit.find_decision(decision["decision_id"])
    assert record is not None
    assert record.payload["review_id"] == review_id

    response = await client.get(f"/v1/reviews/{review_id}", headers=bearer(tokens.reviewer))
    assert response.status_code == 200, response.text
    review = response.json()
    assert review["status"] == "pending"
    assert review["agent_id"] == "payments-bot"
    assert review["principal_id"] == "emma@corp.example"
    assert review["tool"] == "send_money"
    assert review["arguments_digest"] == record.payload["arguments_digest"]
    assert review["policy_version"] == decision["policy_version"]
    assert review["decision_id"] == decision["decision_id"]
    assert [r["rule"] for r in review["reasons"]] == ["finance/large-transfer"]

    listed = await client.get("/v1/reviews?status=pending", headers=bearer(tokens.reviewer))
    assert [r["review_id"] for r in listed.json()["reviews"]] == [review_id]
    assert review_steps(runtime, review_id) == []  # the decision record opened it


async def test_an_approval_allows_exactly_one_identical_retry(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    first = await decide(client, tokens.agent, transfer(20_000))
    review_id = first["review_id"]
    approved = await verdict(client, tokens.reviewer, review_id, "approve", "known supplier")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["reviewer"] == "rick"
    assert approved.json()["comment"] == "known supplier"

    # Other arguments: an ordinary new decision (a new review), the approval untouched.
    other = await decide(client, tokens.agent, transfer(20_001))
    assert other["outcome"] == "review"
    assert other["review_id"] != review_id

    retry = await decide(client, tokens.agent, transfer(20_000))
    assert retry["outcome"] == "allow"
    assert [r["rule"] for r in retry["reasons"]] == ["lictor/review-approved"]
    assert review_id in retry["reasons"][0]["message"]
    again = await decide(client, tokens.agent, transfer(20_000))
    assert again["outcome"] == "review"  # single use
    assert again["review_id"] not in (review_id, other["review_id"])

    shown = (await client.get(f"/v1/reviews/{review_id}", headers=bearer(tokens.agent))).json()
    assert shown["status"] == "consumed"
    assert shown["consumed_by"] == retry["decision_id"]
    assert review_steps(runtime, review_id) == ["approved"]
    used_by = runtime.store.audit.find_decision(retry["decision_id"])
    assert used_by is not None
    assert review_id in used_by.payload["reasons"][0]["message"]


async def test_an_approval_for_another_principal_does_not_apply(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first = await decide(client, tokens.agent, transfer(20_000, principal="emma@corp.example"))
    await verdict(client, tokens.reviewer, first["review_id"], "approve")
    retry = await decide(client, tokens.agent, transfer(20_000, principal="bob@corp.example"))
    assert retry["outcome"] == "review"


async def test_a_denied_review_stays_denied_and_the_retry_is_reviewed_again(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    first = await decide(client, tokens.agent, transfer(20_000))
    denied = await verdict(client, tokens.reviewer, first["review_id"], "deny", "not invoiced")
    assert denied.json()["status"] == "denied"
    late = await verdict(client, tokens.reviewer, first["review_id"], "approve")
    assert late.status_code == 409
    assert problem_type(late) == slug("conflict")
    retry = await decide(client, tokens.agent, transfer(20_000))
    assert retry["outcome"] == "review"
    assert review_steps(runtime, first["review_id"]) == ["denied"]


async def test_long_poll_returns_as_soon_as_the_verdict_lands(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first = await decide(client, tokens.agent, transfer(20_000))
    review_id = first["review_id"]

    async def approve_soon() -> None:
        await asyncio.sleep(0.3)
        response = await verdict(client, tokens.reviewer, review_id, "approve")
        assert response.status_code == 200

    started = time.monotonic()
    task = asyncio.create_task(approve_soon())
    waited = await client.get(
        f"/v1/reviews/{review_id}", params={"wait": "10"}, headers=bearer(tokens.agent)
    )
    elapsed = time.monotonic() - started
    await task
    assert waited.json()["status"] == "approved"
    assert 0.25 < elapsed < 3


async def test_long_poll_times_out_with_the_review_still_pending(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first = await decide(client, tokens.agent, transfer(20_000))
    started = time.monotonic()
    waited = await client.get(
        f"/v1/reviews/{first['review_id']}", params={"wait": "0.5"}, headers=bearer(tokens.agent)
    )
    assert waited.json()["status"] == "pending"
    assert 0.45 < time.monotonic() - started < 3


async def test_an_expired_review_denies_and_cannot_be_approved(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime, clock: FixedClock
) -> None:
    first = await decide(client, tokens.agent, transfer(20_000))
    clock.advance(runtime.settings.review_seconds + 1)
    shown = await client.get(
        f"/v1/reviews/{first['review_id']}", params={"wait": "5"}, headers=bearer(tokens.agent)
    )
    assert shown.json()["status"] == "expired"
    late = await verdict(client, tokens.reviewer, first["review_id"], "approve")
    assert late.status_code == 409
    retry = await decide(client, tokens.agent, transfer(20_000))
    assert retry["outcome"] == "review"
    assert retry["review_id"] != first["review_id"]
    assert review_steps(runtime, first["review_id"]) == ["expired"]


async def test_only_reviewers_may_approve_and_never_their_own_request(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    first = await decide(client, tokens.agent, transfer(20_000, principal="rick"))
    review_id = first["review_id"]
    for token in (tokens.admin, tokens.auditor, tokens.agent):
        refused = await verdict(client, token, review_id, "approve")
        assert refused.status_code == 403
        assert problem_type(refused) == slug("forbidden")
    own = await verdict(client, tokens.reviewer, review_id, "approve")
    assert own.status_code == 403
    assert problem_type(own) == slug("forbidden")
    # A reviewer whose name is the agent's id is refused too.
    agent_named = runtime.credentials.issue(CredentialKind.ADMIN, "payments-bot", Role.REVIEWER)
    refused = await verdict(client, agent_named.token, review_id, "approve")
    assert refused.status_code == 403
    still = await client.get(f"/v1/reviews/{review_id}", headers=bearer(tokens.reviewer))
    assert still.json()["status"] == "pending"
    other = runtime.credentials.issue(CredentialKind.ADMIN, "rosa", Role.REVIEWER)
    assert (await verdict(client, other.token, review_id, "approve")).status_code == 200


async def test_an_agent_reads_only_its_own_reviews(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first = await decide(client, tokens.agent, transfer(20_000))
    response = await client.get(
        f"/v1/reviews/{first['review_id']}", headers=bearer(tokens.other_agent)
    )
    assert response.status_code == 404
    listed = await client.get("/v1/reviews", headers=bearer(tokens.agent))
    assert listed.status_code == 403


BAD_VERDICTS: list[tuple[str, Any]] = [
    ("approve", {}),
    ("approve", {"comment": 3}),
    ("approve", {"comment": "ok", "extra": 1}),
    ("deny", []),
]


async def test_bad_input_is_422_and_changes_nothing(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first = await decide(client, tokens.agent, transfer(20_000))
    review_id = first["review_id"]
    for action, body in BAD_VERDICTS:
        response = await client.post(
            f"/v1/reviews/{review_id}/{action}", json=body, headers=bearer(tokens.reviewer)
        )
        assert response.status_code == 422, (body, response.text)
    for query in ("wait=61", "wait=-1", "wait=nan", "wait=x", "other=1", "wait=1&wait=2"):
        response = await client.get(
            f"/v1/reviews/{review_id}?{query}", headers=bearer(tokens.agent)
        )
        assert response.status_code == 422, (query, response.text)
        assert problem_type(response) == slug("invalid-request")
    for query in ("status=nope", "limit=0", "limit=x", "agent=a&agent=b"):
        response = await client.get(f"/v1/reviews?{query}", headers=bearer(tokens.reviewer))
        assert response.status_code == 422, (query, response.text)
    shown = await client.get(f"/v1/reviews/{review_id}", headers=bearer(tokens.reviewer))
    assert shown.json()["status"] == "pending"


async def test_unknown_reviews_are_404(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.get("/v1/reviews/nope", headers=bearer(tokens.reviewer))
    assert response.status_code == 404
    response = await verdict(client, tokens.reviewer, "nope", "approve")
    assert response.status_code == 404


async def test_two_replicas_racing_for_one_approval_cannot_both_win(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime, settings: Settings
) -> None:
    first = await decide(client, tokens.agent, transfer(20_000))
    await verdict(client, tokens.reviewer, first["review_id"], "approve")
    other = open_store(settings.resolved_store_url)  # a second replica's connections
    try:
        stores = [SqlReviews(runtime.store.database), SqlReviews(other.database)] * 4
        barrier = threading.Barrier(len(stores))
        won: list[str] = []

        def use(store: SqlReviews, number: int) -> None:
            barrier.wait()
            done = store.consume(first["review_id"], decision_id=f"d{number}", at=NOW)
            if done is not None:
                won.append(done.consumed_by or "")

        threads = [threading.Thread(target=use, args=(store, n)) for n, store in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.close()
    assert len(won) == 1
    final = SqlReviews(runtime.store.database).get(first["review_id"])
    assert final is not None
    assert final.consumed_by == won[0]
