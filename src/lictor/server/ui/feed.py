"""The live feed: committed decisions fanned out to dashboard connections.

The audit writer calls :meth:`FeedHub.publish` on its own thread after each group
commit, so the feed only ever shows decisions that are on disk. Each connection has a
bounded queue; a reader too slow to keep up loses the oldest events and is told how
many it missed, rather than slowing the writer or growing memory without bound.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lictor.core.audit.chain import SealedRecord

__all__ = ["FeedHub", "Subscription", "feed_item"]

QUEUE_LIMIT = 256


def feed_item(seq: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What the feed shows of one decision record (the rest is one click away)."""
    reasons = payload.get("reasons") or []
    principal = payload.get("principal") or {}
    return {
        "seq": seq,
        "decision_id": payload.get("decision_id"),
        "at": payload.get("at"),
        "agent_id": payload.get("agent_id"),
        "principal": principal.get("id") if isinstance(principal, Mapping) else None,
        "tool": payload.get("tool"),
        "outcome": payload.get("outcome"),
        "rules": [r.get("rule") for r in reasons if isinstance(r, Mapping)],
        "task": (payload.get("context") or {}).get("task")
        if isinstance(payload.get("context"), Mapping)
        else None,
    }


@dataclass(eq=False)
class Subscription:
    """One connection's queue, filled from the writer thread through its loop."""

    loop: asyncio.AbstractEventLoop
    agent: str | None = None
    outcome: str | None = None
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    missed: int = 0

    def wants(self, item: Mapping[str, Any]) -> bool:
        """Apply the connection's filters."""
        if self.agent and item.get("agent_id") != self.agent:
            return False
        return not (self.outcome and item.get("outcome") != self.outcome)

    def offer(self, item: dict[str, Any]) -> None:
        """Enqueue on the loop's thread; drop the oldest when full."""
        if self.queue.full():
            self.queue.get_nowait()
            self.missed += 1
        self.queue.put_nowait(item)


class FeedHub:
    """Fan-out from the audit writer to live-feed connections."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self, subscription: Subscription) -> None:
        """Start delivering to a connection."""
        with self._lock:
            self._subscriptions.add(subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to a connection (idempotent)."""
        with self._lock:
            self._subscriptions.discard(subscription)

    @property
    def connections(self) -> int:
        """How many connections are listening."""
        return len(self._subscriptions)

    def publish(self, records: Sequence[SealedRecord]) -> None:
        """Called by the audit writer with each committed batch (writer thread)."""
        items = [
            feed_item(r.seq, r.payload) for r in records if r.payload.get("kind") == "decision"
        ]
        if not items:
            return
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            wanted = [item for item in items if subscription.wants(item)]
            for item in wanted:
                try:
                    subscription.loop.call_soon_threadsafe(subscription.offer, item)
                except RuntimeError:  # its loop is closed: the connection is gone
                    self.unsubscribe(subscription)
                    break
