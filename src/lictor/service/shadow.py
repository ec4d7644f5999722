"""Shadow agents: requests from agents nobody registered, recorded without slowing decisions.

A decision for an unregistered agent hands a :class:`~lictor.core.agents.ShadowSighting`
to :meth:`ShadowRecorder.seen`, which only merges it into an in-memory map (a dict
update under a lock). A background thread writes the merged sightings to the inventory
(:meth:`lictor.service.inventory.Inventory.record_shadow`) every ``flush_seconds``.

Nothing is lost on a failed write: the sighting goes back into the map and is merged
with newer ones for the next attempt, and :meth:`ShadowRecorder.close` makes a last
flush. Even if the process dies first, each request is already in the audit trail as
its own denied decision, so the sighting can be rebuilt from there.

The first time this process records a given agent it emits a ``shadow_agent_seen``
event (:mod:`lictor.service.events`) and logs ``shadow agent seen`` at WARNING.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from lictor.core.agents import ShadowSighting
from lictor.errors import LictorError
from lictor.service.events import Event, EventBus, EventKind, Severity
from lictor.service.inventory import Inventory
from lictor.service.ports import Clock

__all__ = ["ShadowRecorder"]

log = logging.getLogger("lictor.shadow")

MAX_PENDING_AGENTS: Final = 10_000
"""Distinct unregistered agent ids held between flushes; more are merged into logs only."""


class ShadowRecorder:
    """Collects shadow sightings and writes them to the inventory in the background."""

    def __init__(
        self,
        inventory: Inventory,
        clock: Clock,
        *,
        events: EventBus | None = None,
        flush_seconds: float = 0.2,
    ) -> None:
        self._inventory = inventory
        self._clock = clock
        self._events = events
        self._flush_seconds = flush_seconds
        self._pending: dict[str, ShadowSighting] = {}
        self._announced: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ShadowRecorder:
        """Start the background writer; return self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="lictor-shadow-recorder", daemon=True
            )
            self._thread.start()
        return self

    def seen(
        self,
        agent_id: str,
        tool: str,
        *,
        source: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        """Note one request from an unregistered agent (no I/O; safe on any thread)."""
        now = self._clock.now()
        sighting = ShadowSighting(now, now, source, user_agent, (tool,), 1)
        with self._lock:
            previous = self._pending.get(agent_id)
            if previous is None and len(self._pending) >= MAX_PENDING_AGENTS:
                log.critical(
                    "shadow agent seen: %r (tool %r); too many unregistered agents pending, "
                    "this sighting is only in the audit trail",
                    agent_id,
                    tool,
                )
                return
            self._pending[agent_id] = previous.merge(sighting) if previous else sighting
        self._wake.set()

    def flush(self) -> int:
        """Write every pending sighting now; return how many agents were written.

        A sighting whose write fails is kept for the next flush.
        """
        with self._lock:
            batch, self._pending = self._pending, {}
        written = 0
        for agent_id, sighting in sorted(batch.items()):
            try:
                stored = self._inventory.record_shadow(agent_id, sighting)
            except LictorError:
                log.warning("could not record shadow agent %r yet; will retry", agent_id)
                with self._lock:
                    later = self._pending.get(agent_id)
                    self._pending[agent_id] = sighting.merge(later) if later else sighting
                continue
            written += 1
            if stored is not None:
                self._announce(agent_id, sighting)
        return written

    def close(self) -> None:
        """Stop the writer after a last flush. Idempotent."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            self.flush()
            self._stop.wait(self._flush_seconds)

    def _announce(self, agent_id: str, sighting: ShadowSighting) -> None:
        if agent_id in self._announced:
            return
        self._announced.add(agent_id)
        log.warning(
            "shadow agent seen: %r asked for %s from %s",
            agent_id,
            ", ".join(sighting.tools),
            sighting.source or "an unknown address",
        )
        if self._events is not None:
            self._events.emit(
                Event(
                    kind=EventKind.SHADOW_AGENT_SEEN,
                    at=sighting.last_seen_at,
                    severity=Severity.HIGH,
                    summary=f"unregistered agent {agent_id!r} asked to act",
                    agent_id=agent_id,
                    details=sighting.to_json(),
                )
            )
