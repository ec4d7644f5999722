"""Throttling: one alert per key per window, and a count of what the window held back.

Semantics (docs/alerts.md, "Throttling"): the first event for a key opens a window of
``window_seconds`` and is sent at once. Later events for that key inside the window are
suppressed and counted. When the window closes, a summary with that count is due if,
and only if, something was suppressed; the next event after the close opens a new
window. So every event is either sent or counted in exactly one summary.

Pure: time comes in as an argument, so tests drive it without a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

__all__ = ["Closed", "Throttle"]

T = TypeVar("T")


@dataclass(slots=True)
class _Window(Generic[T]):
    opened_at: datetime
    closes_at: datetime
    suppressed: int = 0
    last: T | None = None


@dataclass(frozen=True, slots=True)
class Closed(Generic[T]):
    """A window that closed with suppressed events: the summary to send."""

    key: tuple[str, str]
    opened_at: datetime
    closed_at: datetime
    suppressed: int
    last: T


class Throttle(Generic[T]):
    """Windows keyed by (rule name, dedup key). Not thread-safe: one alerts thread owns it."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], _Window[T]] = {}

    def admit(self, key: tuple[str, str], window_seconds: float, now: datetime, item: T) -> bool:
        """Return True if ``item`` should be sent now, False if it was suppressed.

        Call :meth:`close_due` first with the same ``now`` so a window that has ended
        yields its summary before a new one opens.
        """
        if window_seconds <= 0:
            return True
        window = self._windows.get(key)
        if window is not None and now < window.closes_at:
            window.suppressed += 1
            window.last = item
            return False
        self._windows[key] = _Window(now, now + timedelta(seconds=window_seconds))
        return True

    def close_due(self, now: datetime) -> list[Closed[T]]:
        """Close every window that has ended; return those that suppressed something."""
        closed: list[Closed[T]] = []
        for key, window in list(self._windows.items()):
            if now < window.closes_at:
                continue
            del self._windows[key]
            if window.suppressed and window.last is not None:
                closed.append(
                    Closed(key, window.opened_at, window.closes_at, window.suppressed, window.last)
                )
        return closed

    def next_close(self) -> datetime | None:
        """Return when the earliest open window closes, or None."""
        return min((w.closes_at for w in self._windows.values()), default=None)

    def close_all(self, now: datetime) -> list[Closed[T]]:
        """Close every window now (shutting down); return those that suppressed something."""
        closed = [
            Closed(key, w.opened_at, now, w.suppressed, w.last)
            for key, w in self._windows.items()
            if w.suppressed and w.last is not None
        ]
        self._windows.clear()
        return closed
