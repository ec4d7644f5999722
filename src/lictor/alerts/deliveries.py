"""Delivery of alerts: one worker thread per sink, retries with backoff, a delivery log.

Rule 1: :meth:`SinkWorker.submit` never blocks. The worker's backlog is bounded; an
alert that does not fit is logged as dead at once ("queue full"), never waited for.
Rule 2: a failed attempt is retried after an exponential backoff with jitter
(``initial * 2**(n-1)``, capped, times a random factor in [0.5, 1]) until
``max_attempts``; then the delivery is dead-lettered. A permanent failure (HTTP 4xx
such as 404, SMTP 5xx) is dead-lettered at once.
Rule 3: every state change is written to the :class:`DeliveryLog`, so what reached a
sink, what is pending and what was given up on survives the process. A log that
cannot be written is reported in the server log and does not stop delivery.

Guarantee: at-least-once (a receiver may see an alert twice when a response is lost,
or when a delivery is resumed; ``X-Lictor-Delivery`` lets it drop duplicates). On a
crash, queued and retrying deliveries stay ``pending`` in the log. A running service
resumes a pending delivery once nobody has touched it for longer than its sink's
longest backoff plus a margin (:meth:`AlertService.resume_stale
<lictor.alerts.service.AlertService.resume_stale>`), so no live replica is still
retrying it; ``lictor alerts retry`` resends one at once.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from lictor.alerts.sinks import DeliveryFailed, Sink
from lictor.errors import Conflict, LictorError
from lictor.service.ids import new_ulid
from lictor.service.ports import Clock
from lictor.store.alerts import Delivery, DeliveryStatus

__all__ = [
    "DeliveryLog",
    "MemoryDeliveries",
    "RetryPolicy",
    "SinkWorker",
    "attempt_once",
    "new_delivery",
]

log = logging.getLogger("lictor.alerts")


class DeliveryLog(Protocol):
    """Where delivery records go; :class:`~lictor.store.alerts.SqlDeliveries` in a server."""

    def add(self, delivery: Delivery) -> None:
        """Store a new delivery."""
        ...

    def update(self, delivery: Delivery) -> None:
        """Record a new status, attempt count and error."""
        ...

    def get(self, delivery_id: str) -> Delivery | None:
        """Return one delivery, or None."""
        ...

    def list(self, status: DeliveryStatus | None = None, limit: int = 100) -> list[Delivery]:
        """Return deliveries, newest first."""
        ...


class MemoryDeliveries:
    """A delivery log in a dict, for tests and the embedded Governor. Thread-safe."""

    def __init__(self) -> None:
        self._rows: dict[str, Delivery] = {}
        self._lock = threading.Lock()

    def add(self, delivery: Delivery) -> None:
        """Store a new delivery.

        Raises:
            Conflict: A delivery with this id exists.
        """
        with self._lock:
            if delivery.id in self._rows:
                raise Conflict("delivery", delivery.id)
            self._rows[delivery.id] = delivery

    def update(self, delivery: Delivery) -> None:
        """Replace the stored record (only status, attempts, error and time change)."""
        with self._lock:
            if delivery.id in self._rows:
                self._rows[delivery.id] = delivery

    def get(self, delivery_id: str) -> Delivery | None:
        """Return one delivery, or None."""
        with self._lock:
            return self._rows.get(delivery_id)

    def list(self, status: DeliveryStatus | None = None, limit: int = 100) -> list[Delivery]:
        """Return up to ``limit`` deliveries, newest first."""
        with self._lock:
            rows = [d for d in self._rows.values() if status is None or d.status is status]
        rows.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return rows[:limit]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one sink is retried."""

    max_attempts: int = 5
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 300.0

    def delay(self, attempts: int, rng: Callable[[], float] = random.random) -> float:
        """Return the wait after ``attempts`` failed attempts: exponential, capped, jittered.

        The factor in [0.5, 1] spreads retries of many alerts after one outage, so a
        receiver coming back is not hit by all of them in the same second.
        """
        base: float = min(
            self.backoff_max_seconds, self.backoff_initial_seconds * 2 ** (attempts - 1)
        )
        return base * (0.5 + rng() / 2)


def new_delivery(alert: Mapping[str, Any], sink: str, now: datetime) -> Delivery:
    """Return a fresh pending delivery of ``alert`` to ``sink``."""
    return Delivery(
        id=new_ulid(now),
        alert_id=str(alert.get("alert_id", "")),
        sink=sink,
        status=DeliveryStatus.PENDING,
        attempts=0,
        last_error=None,
        alert=dict(alert),
        created_at=now,
        updated_at=now,
    )


def attempt_once(
    sink: Sink, delivery: Delivery, now: datetime, policy: RetryPolicy
) -> tuple[Delivery, bool]:
    """Make one attempt; return the updated record and whether to try again later."""
    attempts = delivery.attempts + 1
    try:
        sink.send(delivery.alert, delivery.id, now)
    except DeliveryFailed as exc:
        retry = not exc.permanent and attempts < policy.max_attempts
        status = DeliveryStatus.PENDING if retry else DeliveryStatus.DEAD
        updated = replace(
            delivery, status=status, attempts=attempts, last_error=str(exc), updated_at=now
        )
        return updated, retry
    except Exception as exc:  # a sink bug must not kill its worker: dead-letter, logged
        log.exception("alert sink %s failed unexpectedly", sink.name)
        updated = replace(
            delivery,
            status=DeliveryStatus.DEAD,
            attempts=attempts,
            last_error=f"internal error: {type(exc).__name__}: {exc}",
            updated_at=now,
        )
        return updated, False
    updated = replace(
        delivery,
        status=DeliveryStatus.DELIVERED,
        attempts=attempts,
        last_error=None,
        updated_at=now,
    )
    return updated, False


class SinkWorker:
    """Delivers to one sink from its own thread; see the module docs for the rules."""

    def __init__(
        self,
        sink: Sink,
        deliveries: DeliveryLog,
        clock: Clock,
        *,
        retry: RetryPolicy | None = None,
        max_backlog: int = 10_000,
    ) -> None:
        self.sink = sink
        self.retry = retry if retry is not None else RetryPolicy()
        self._log = deliveries
        self._clock = clock
        self._max_backlog = max_backlog
        self._heap: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._closing = False
        self._drain_until = 0.0
        self._thread: threading.Thread | None = None
        self._busy = False
        self._held: set[str] = set()  # ids queued, waiting for a retry or in flight
        self.delivered = 0
        self.dead = 0

    def start(self) -> SinkWorker:
        """Start the worker thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"lictor-alerts-{self.sink.name}", daemon=True
            )
            self._thread.start()
        return self

    def submit(self, delivery: Delivery) -> bool:
        """Queue a delivery; return False (and dead-letter it) when the backlog is full."""
        with self._cond:
            if not self._closing and len(self._heap) < self._max_backlog:
                heapq.heappush(self._heap, (time.monotonic(), next(self._order), delivery))
                self._held.add(delivery.id)
                self._cond.notify()
                return True
        reason = "closing" if self._closing else "backlog full"
        self._write(replace(delivery, status=DeliveryStatus.DEAD, last_error=reason))
        self.dead += 1
        return False

    def resume(self, delivery: Delivery) -> bool:
        """Queue a ``pending`` delivery read back from the log, unless this worker holds it.

        Returns whether it was queued.
        """
        with self._cond:
            if delivery.id in self._held or self._closing:
                return False
        return self.submit(delivery)

    @property
    def backlog(self) -> int:
        """Deliveries queued or waiting for a retry (not counting the one in flight)."""
        with self._cond:
            return len(self._heap)

    def is_idle(self) -> bool:
        """Return whether nothing is queued, waiting or in flight."""
        with self._cond:
            return not self._heap and not self._busy

    def close(self, timeout_seconds: float = 5.0) -> None:
        """Try everything queued (retries without waiting) until the deadline, then stop.

        What is still undelivered stays ``pending`` in the log, to be resent with
        ``lictor alerts retry``.
        """
        with self._cond:
            self._closing = True
            self._drain_until = time.monotonic() + timeout_seconds
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_seconds + 0.5)
            if thread.is_alive():
                log.warning("alert sink %s did not stop in time", self.sink.name)
        self.sink.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                item = self._next_due()
                if item is None:
                    return
                self._busy = True
            _, _, delivery = item
            try:
                self._attempt(delivery)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _next_due(self) -> tuple[float, int, Delivery] | None:
        """Wait (holding the condition) for the next due delivery; None means stop."""
        while True:
            now = time.monotonic()
            if self._closing:
                if not self._heap or now >= self._drain_until:
                    return None
                return heapq.heappop(self._heap)  # draining: retries do not wait
            if self._heap and self._heap[0][0] <= now:
                return heapq.heappop(self._heap)
            wait = self._heap[0][0] - now if self._heap else None
            self._cond.wait(wait)

    def _attempt(self, delivery: Delivery) -> None:
        updated, retry = attempt_once(self.sink, delivery, self._clock.now(), self.retry)
        self._write(updated)
        if updated.status is DeliveryStatus.DELIVERED:
            self.delivered += 1
        elif updated.status is DeliveryStatus.DEAD:
            self.dead += 1
            log.warning(
                "alert %s to %s dead-lettered after %d attempts: %s",
                updated.alert_id,
                self.sink.name,
                updated.attempts,
                updated.last_error,
            )
        if retry:
            due = time.monotonic() + self.retry.delay(updated.attempts)
            with self._cond:
                heapq.heappush(self._heap, (due, next(self._order), updated))
        else:
            with self._cond:
                self._held.discard(updated.id)

    def _write(self, delivery: Delivery) -> None:
        try:
            if delivery.attempts == 0 and self._log.get(delivery.id) is None:
                self._log.add(delivery)
            else:
                self._log.update(delivery)
        except LictorError:
            log.exception("cannot write the alert delivery log (delivery %s)", delivery.id)
