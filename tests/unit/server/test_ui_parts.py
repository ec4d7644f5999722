"""The dashboard's pure parts: CSRF tokens, origin checks, charts and the feed hub."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.audit.chain import SealedRecord
from lictor.server.ui.charts import stacked_bars
from lictor.server.ui.feed import QUEUE_LIMIT, FeedHub, Subscription
from lictor.server.ui.session import csrf_token, csrf_valid, same_origin, session_cookie


@given(st.text(min_size=1), st.text(min_size=1))
def test_csrf_token_belongs_to_its_session(one: str, other: str) -> None:
    assert csrf_valid(one, csrf_token(one))
    if one != other:
        assert not csrf_valid(other, csrf_token(one))
    assert not csrf_valid(one, None)
    assert not csrf_valid(one, "")


def test_origin_must_be_this_host() -> None:
    assert same_origin({"origin": "http://lictor.test"}, "lictor.test")
    assert not same_origin({"origin": "https://evil.example"}, "lictor.test")
    assert not same_origin({"origin": "null"}, "lictor.test")
    assert same_origin({}, "lictor.test")  # judged by the CSRF token alone


def test_cookie_flags_and_logout() -> None:
    cookie = session_cookie("tok")
    assert cookie.startswith("lictor_session=tok;")
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=Strict" in cookie
    assert "Max-Age=0" in session_cookie("", max_age=0)


counts = st.dictionaries(st.sampled_from(["allow", "review", "deny", "other"]), st.integers(0, 50))


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(200)
@given(st.lists(counts, max_size=60))
def test_stacked_bars_scale_to_the_busiest_bucket(buckets: list[dict[str, int]]) -> None:
    series = ("allow", "review", "deny")
    chart = stacked_bars([(str(i), c) for i, c in enumerate(buckets)], series, height=100)
    totals = [sum(c.get(s, 0) for s in series) for c in buckets]
    assert chart.total == sum(totals)
    assert chart.maximum == max(totals, default=0)
    for bar in chart.bars:
        assert bar.series in series
        assert bar.y >= 0
        assert bar.y + bar.height <= 100.01
    # The busiest bucket's stack fills the height.
    if chart.maximum:
        busiest = totals.index(chart.maximum)
        stack = [b for b in chart.bars if b.label.startswith(f"{busiest}:")]
        assert abs(sum(b.height for b in stack) - 100) < 0.1


def _record(seq: int, agent: str, outcome: str, kind: str = "decision") -> SealedRecord:
    payload = {"kind": kind, "agent_id": agent, "outcome": outcome, "tool": "t", "reasons": []}
    return SealedRecord(seq=seq, prev_hash="0" * 64, payload=payload, record_hash="1" * 64)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_hub_filters_and_drops_the_oldest_when_a_reader_lags() -> None:
    hub = FeedHub()
    loop = asyncio.get_running_loop()
    only_denies = Subscription(loop, outcome="deny")
    everything = Subscription(loop)
    hub.subscribe(only_denies)
    hub.subscribe(everything)
    records = [_record(i, "a", "deny" if i % 2 else "allow") for i in range(QUEUE_LIMIT + 10)]
    records.append(_record(999, "a", "allow", kind="result"))  # not a decision: not shown
    hub.publish(records)
    await asyncio.sleep(0.05)  # let the loop run the queued offers
    assert everything.queue.qsize() == QUEUE_LIMIT
    assert everything.missed == 10
    assert everything.queue.get_nowait()["seq"] == 10  # the oldest were dropped
    assert only_denies.queue.qsize() == (QUEUE_LIMIT + 10) // 2
    assert all(
        only_denies.queue.get_nowait()["outcome"] == "deny"
        for _ in range(only_denies.queue.qsize())
    )
    hub.unsubscribe(everything)
    assert hub.connections == 1
