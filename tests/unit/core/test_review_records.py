"""Review records: the wire form round-trips, and only ``pending`` is pending."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.reviews import Review, ReviewStatus

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


reviews_json = st.builds(
    Review,
    review_id=st.text(min_size=1),
    decision_id=st.text(min_size=1),
    agent_id=st.text(min_size=1),
    principal_id=st.none() | st.text(),
    tool=st.text(min_size=1),
    arguments_digest=st.text(),
    policy_version=st.text(),
    status=st.sampled_from(ReviewStatus),
    created_at=st.just(NOW),
    expires_at=st.just(NOW),
    request=st.dictionaries(st.text(), st.integers() | st.text() | st.none()),
    reviewer=st.none() | st.text(),
    comment=st.none() | st.text(),
    resolved_at=st.none() | st.just(NOW),
    approved_until=st.none() | st.just(NOW),
    consumed_at=st.none() | st.just(NOW),
    consumed_by=st.none() | st.text(),
)


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(300)
@given(reviews_json)
def test_the_wire_form_round_trips(review: Review) -> None:
    assert Review.from_json(review.to_json()) == review


@given(st.sampled_from(ReviewStatus))
def test_only_a_pending_review_is_pending(status: ReviewStatus) -> None:
    review = Review("r", "d", "a", None, "t", "sha256:x", "v", status, NOW, NOW, {})
    assert review.is_pending is (status is ReviewStatus.PENDING)
