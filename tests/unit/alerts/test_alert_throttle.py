"""Throttle: one alert per key per window, and summaries of what was held back."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from lictor.alerts.throttle import Throttle

NOW = datetime(2026, 11, 25, 14, 0, 0, tzinfo=UTC)
KEY = ("rule", "bot/x")


def test_first_event_passes_and_the_rest_of_the_window_is_counted() -> None:
    throttle: Throttle[int] = Throttle()
    assert throttle.admit(KEY, 60, NOW, 1)
    assert not throttle.admit(KEY, 60, NOW + timedelta(seconds=10), 2)
    assert not throttle.admit(KEY, 60, NOW + timedelta(seconds=59), 3)
    assert throttle.close_due(NOW + timedelta(seconds=59)) == []
    [closed] = throttle.close_due(NOW + timedelta(seconds=60))
    assert (closed.suppressed, closed.last, closed.key) == (2, 3, KEY)
    assert throttle.admit(KEY, 60, NOW + timedelta(seconds=61), 4)


def test_a_window_without_suppressed_events_closes_silently() -> None:
    throttle: Throttle[int] = Throttle()
    throttle.admit(KEY, 60, NOW, 1)
    assert throttle.next_close() == NOW + timedelta(seconds=60)
    assert throttle.close_due(NOW + timedelta(hours=1)) == []
    assert throttle.next_close() is None


def test_keys_are_independent_and_zero_window_never_throttles() -> None:
    throttle: Throttle[int] = Throttle()
    assert throttle.admit(("r", "a"), 60, NOW, 1)
    assert throttle.admit(("r", "b"), 60, NOW, 2)
    assert throttle.admit(("r", "a"), 0, NOW, 3)
    assert throttle.admit(("r", "a"), 0, NOW, 4)


def test_close_all_reports_open_windows() -> None:
    throttle: Throttle[int] = Throttle()
    throttle.admit(KEY, 60, NOW, 1)
    throttle.admit(KEY, 60, NOW, 2)
    [closed] = throttle.close_all(NOW)
    assert closed.suppressed == 1
    assert throttle.next_close() is None


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=30)),
        max_size=60,
    ),
    st.integers(min_value=1, max_value=20),
)
def test_every_event_is_sent_or_counted_in_exactly_one_summary(
    steps: list[tuple[str, int]], window: int
) -> None:
    throttle: Throttle[int] = Throttle()
    now = NOW
    sent = counted = 0
    sends: dict[str, list[int]] = {}
    elapsed = 0
    for index, (key, gap) in enumerate(steps):
        now += timedelta(seconds=gap)
        elapsed += gap
        counted += sum(c.suppressed for c in throttle.close_due(now))
        if throttle.admit(("r", key), window, now, index):
            sent += 1
            sends.setdefault(key, []).append(elapsed)
    counted += sum(c.suppressed for c in throttle.close_all(now))
    assert sent + counted == len(steps)
    # At most one alert per key per window: the sends of one key are a window apart.
    for times in sends.values():
        assert all(later - earlier >= window for earlier, later in itertools.pairwise(times))
