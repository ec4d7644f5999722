"""Reviews in process: bound to the action, single use, expiry, separation of duties, audit."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.agents import Agent
from lictor.core.decisions import Outcome
from lictor.core.policy import compile_policy
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import AgentId
from lictor.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ReviewDenied,
    ReviewExpired,
    ReviewTimeout,
    StoreError,
)
from lictor.sdk.deciders import await_verdict
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, MemoryAgents, MemoryAudit
from lictor.service.reviews import (
    MemoryReviews,
    Review,
    ReviewService,
    ReviewStatus,
    Verdict,
)

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
BOT = Agent(id=AgentId("bot"), allowed_tools=("pay", "read"))
RULES: list[dict[str, Any]] = [
    {"id": "read", "effect": "allow", "match": {"tools": ["read"]}},
    {"id": "pay", "effect": "allow", "match": {"tools": ["pay"]}},
    {"id": "big", "effect": "review", "match": {"tools": ["pay"]}, "when": "arguments.n > 100"},
]


def build(
    audit: Any = None, clock: FixedClock | None = None
) -> tuple[Governor, ReviewService, MemoryAudit, FixedClock]:
    clock = clock or FixedClock(NOW)
    memory = MemoryAudit()
    governor = Governor(
        compile_policy(parse_rules(RULES), version="sha256:v1"),
        MemoryAgents([BOT]),
        audit=audit if audit is not None else memory,
        clock=clock,
    )
    reviews = ReviewService(MemoryReviews(), governor.audit, clock, review_seconds=60)
    governor.attach_reviews(reviews)
    return governor, reviews, memory, clock


def pay(n: Any, principal: str = "emma") -> dict[str, Any]:
    return {"agent_id": "bot", "tool": "pay", "arguments": {"n": n}, "principal": {"id": principal}}


def steps(audit: MemoryAudit, review_id: str) -> list[str]:
    return [
        str(e["action"])
        for e in audit.entries
        if e.get("kind") == "review" and e.get("review_id") == review_id
    ]


def test_a_review_opens_a_pending_review_bound_to_the_action() -> None:
    governor, reviews, audit, _ = build()
    decision = governor.decide(pay(500))
    assert decision.outcome is Outcome.REVIEW
    assert decision.review_id is not None
    review = reviews.get(decision.review_id)
    assert review.status is ReviewStatus.PENDING
    assert (review.agent_id, review.principal_id, review.tool) == ("bot", "emma", "pay")
    assert review.policy_version == "sha256:v1"
    assert review.decision_id == decision.decision_id
    assert audit.find_decision(decision.decision_id)["review_id"] == decision.review_id  # type: ignore[index]
    assert steps(audit, decision.review_id) == []  # the decision record is the opening
    assert governor.decide(pay(5)).review_id is None  # an allow opens nothing


def test_an_approval_is_used_once_and_only_by_the_identical_action() -> None:
    governor, reviews, audit, _ = build()
    first = governor.decide(pay(500))
    assert first.review_id is not None
    reviews.resolve(first.review_id, Verdict.APPROVE, reviewer="rick", comment="fine")
    assert governor.decide(pay(501)).outcome is Outcome.REVIEW
    assert governor.decide(pay(500, principal="bob")).outcome is Outcome.REVIEW
    retry = governor.decide(pay(500))
    assert retry.outcome is Outcome.ALLOW
    assert [r.rule for r in retry.reasons] == ["lictor/review-approved"]
    assert first.review_id in retry.reasons[0].message
    assert governor.decide(pay(500)).outcome is Outcome.REVIEW
    used = reviews.get(first.review_id)
    assert used.status is ReviewStatus.CONSUMED
    assert used.consumed_by == retry.decision_id
    assert steps(audit, first.review_id) == ["approved"]
    used_by = audit.find_decision(retry.decision_id)
    assert used_by is not None
    assert first.review_id in used_by["reasons"][0]["message"]


def test_an_approval_never_outlives_a_policy_change() -> None:
    governor, reviews, _, _ = build()
    first = governor.decide(pay(500))
    assert first.review_id is not None
    reviews.resolve(first.review_id, Verdict.APPROVE, reviewer="rick", comment="")
    governor.swap_policy(compile_policy(parse_rules(RULES), version="sha256:v2"))
    assert governor.decide(pay(500)).outcome is Outcome.REVIEW


def test_only_one_of_many_concurrent_retries_uses_the_approval() -> None:
    governor, reviews, _, _ = build()
    first = governor.decide(pay(500))
    assert first.review_id is not None
    reviews.resolve(first.review_id, Verdict.APPROVE, reviewer="rick", comment="")
    outcomes: list[Outcome] = []
    barrier = threading.Barrier(8)

    def retry() -> None:
        barrier.wait()
        outcomes.append(governor.decide(pay(500)).outcome)

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count(Outcome.ALLOW) == 1


def test_expiry_denies_and_a_late_verdict_is_refused() -> None:
    governor, reviews, audit, clock = build()
    first = governor.decide(pay(500))
    assert first.review_id is not None
    clock.advance(61)
    assert reviews.get(first.review_id).status is ReviewStatus.EXPIRED
    with pytest.raises(Conflict):
        reviews.resolve(first.review_id, Verdict.APPROVE, reviewer="rick", comment="")
    assert steps(audit, first.review_id) == ["expired"]
    with pytest.raises(ReviewExpired):
        await_verdict(governor, pay(500), first, 0)


def test_nobody_reviews_their_own_action() -> None:
    governor, reviews, _, _ = build()
    first = governor.decide(pay(500, principal="rick"))
    assert first.review_id is not None
    for reviewer in ("rick", "bot"):
        with pytest.raises(Forbidden):
            reviews.resolve(first.review_id, Verdict.APPROVE, reviewer=reviewer, comment="")
    assert reviews.get(first.review_id).is_pending
    with pytest.raises(NotFound):
        reviews.resolve("nope", Verdict.DENY, reviewer="rosa", comment="")


def test_a_decision_that_cannot_be_recorded_leaves_no_pending_review() -> None:
    class Failing(MemoryAudit):
        def append(self, entry: Mapping[str, Any]) -> None:
            if entry.get("kind") == "decision":
                raise StoreError("disk full")
            super().append(entry)

    audit = Failing()
    governor, reviews, _, _ = build(audit=audit)
    decision = governor.decide(pay(500))
    assert decision.outcome is Outcome.DENY
    assert decision.review_id is None
    [review] = reviews.store.list()
    assert review.status is ReviewStatus.CANCELLED
    assert steps(audit, review.review_id) == ["cancelled"]


def test_a_review_store_failure_is_an_audited_deny() -> None:
    class Broken(MemoryReviews):
        def add(self, review: Review) -> None:
            raise StoreError("reviews table gone")

    governor, _, audit, clock = build()
    assert governor.reviews is not None
    governor.attach_reviews(ReviewService(Broken(), audit, clock))
    decision = governor.decide(pay(500))
    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].rule == "lictor/evaluation-error"
    assert audit.find_decision(decision.decision_id)["outcome"] == "deny"  # type: ignore[index]


def test_waiting_in_process_ends_with_the_verdict() -> None:
    governor, reviews, _, _ = build()
    held = governor.decide(pay(500))
    assert held.review_id is not None
    review_id = held.review_id
    timer = threading.Timer(
        0.1, lambda: reviews.resolve(review_id, Verdict.APPROVE, reviewer="rick", comment="")
    )
    timer.start()
    allowed = await_verdict(governor, pay(500), held, 5)
    timer.join()
    assert allowed.outcome is Outcome.ALLOW

    denied = governor.decide(pay(600))
    assert denied.review_id is not None
    reviews.resolve(denied.review_id, Verdict.DENY, reviewer="rick", comment="no")
    with pytest.raises(ReviewDenied) as info:
        await_verdict(governor, pay(600), denied, 5)
    assert info.value.review.comment == "no"
    pending = governor.decide(pay(700))
    with pytest.raises(ReviewTimeout):
        await_verdict(governor, pay(700), pending, 0.05)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(300)
@given(first=json_values, second=json_values)
def test_an_approval_applies_exactly_when_the_canonical_arguments_match(
    first: Any, second: Any
) -> None:
    from lictor.service.records import digest

    governor, reviews, _, _ = build()
    rules = [{"id": "all", "effect": "review", "match": {"tools": ["pay"]}}]
    governor.swap_policy(compile_policy(parse_rules(rules), version="sha256:v1"))
    held = governor.decide({"agent_id": "bot", "tool": "pay", "arguments": {"x": first}})
    assert held.review_id is not None
    reviews.resolve(held.review_id, Verdict.APPROVE, reviewer="rick", comment="")
    retry = governor.decide({"agent_id": "bot", "tool": "pay", "arguments": {"x": second}})
    same = digest({"x": first}) == digest({"x": second})
    assert (retry.outcome is Outcome.ALLOW) is same


def test_every_settled_review_is_announced_once_on_the_event_bus() -> None:
    from lictor.service.events import EventBus, EventKind, Severity

    governor, reviews, _, clock = build()
    bus = EventBus()
    seen: list[Any] = []
    bus.subscribe(seen.append)
    reviews.events = bus
    approved = governor.decide(pay(500)).review_id
    left = governor.decide(pay(600)).review_id
    assert approved is not None
    assert left is not None

    reviews.resolve(approved, Verdict.APPROVE, reviewer="rita", comment="invoice checked")
    clock.advance(61)
    reviews.expire_due()
    reviews.expire_due()  # nothing left to expire: no second event

    resolved = [e for e in seen if e.kind is EventKind.REVIEW_RESOLVED]
    assert [(e.details["review_id"], e.details["status"]) for e in resolved] == [
        (approved, "approved"),
        (left, "expired"),
    ]
    assert resolved[0].details["reviewer"] == "rita"
    assert [e.severity for e in resolved] == [Severity.INFO, Severity.LOW]
    assert all(e.agent_id == "bot" and e.principal_id == "emma" for e in resolved)


def test_due_reviews_expire_in_the_background_without_anyone_reading_them() -> None:
    import time

    from lictor.service.periodic import Periodic

    governor, reviews, audit, clock = build()
    review_id = governor.decide(pay(500)).review_id
    assert review_id is not None
    expiry = Periodic("expiry", reviews.expire_due, interval_seconds=0.02).start()
    try:
        time.sleep(0.1)
        assert reviews.store.get(review_id).status is ReviewStatus.PENDING  # type: ignore[union-attr]
        clock.advance(61)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if reviews.store.get(review_id).status is ReviewStatus.EXPIRED:  # type: ignore[union-attr]
                break
            time.sleep(0.01)
    finally:
        expiry.close()

    assert reviews.store.get(review_id).status is ReviewStatus.EXPIRED  # type: ignore[union-attr]
    assert steps(audit, review_id)[-1] == "expired"
