"""The inventory as the server sees it: a short-lived read cache and audited changes.

The Governor reads an agent record on every decision. :class:`CachedAgents` keeps each
record (or its absence) for at most ``ttl_seconds`` (0.5 s), so the hot path touches the
store about twice a second per agent, while a change made on another replica is seen
within that window. Changes made through this process invalidate the entry at once.

Changes themselves go through :class:`lictor.service.inventory.Inventory` (audited as
``agent_change`` entries before they are applied, and versioned).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lictor.core.agents import Agent
from lictor.service.ports import AgentStore
from lictor.service.records import agent_change_entry


class CachedAgents:
    """A read-through, TTL-bounded view of an :class:`AgentStore`; writes pass through.

    A read that raced with a local write never re-inserts the value it read before the
    write: each write bumps a generation counter, and a read inserts only if the
    generation did not move while it was reading the store.
    """

    def __init__(
        self,
        store: AgentStore,
        *,
        ttl_seconds: float = 0.5,
        max_entries: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._ttl = ttl_seconds
        self._max = max_entries
        self._monotonic = monotonic
        self._cache: dict[str, tuple[Agent | None, float]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, agent_id: str) -> Agent | None:
        """Return the agent record (cached up to the TTL), or None if not registered."""
        now = self._monotonic()
        hit = self._cache.get(agent_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        generation = self._generation
        agent = self.store.get(agent_id)
        with self._lock:
            if generation == self._generation:
                if len(self._cache) >= self._max:
                    self._cache.clear()
                self._cache[agent_id] = (agent, now + self._ttl)
        return agent

    def list(self) -> list[Agent]:
        """Return every record from the store (never cached: not on the hot path)."""
        return self.store.list()

    def put(self, agent: Agent) -> None:
        """Insert or replace a record and drop its cache entry."""
        try:
            self.store.put(agent)
        finally:
            self.invalidate(agent.id)

    def put_if(self, agent: Agent, expected_version: int | None) -> bool:
        """Write only if the stored version matches; drop the cache entry either way."""
        try:
            return self.store.put_if(agent, expected_version)
        finally:
            self.invalidate(agent.id)

    def delete(self, agent_id: str) -> bool:
        """Remove a record, drop its cache entry; return whether it existed."""
        try:
            return self.store.delete(agent_id)
        finally:
            self.invalidate(agent_id)

    def invalidate(self, agent_id: str | None = None) -> None:
        """Forget one cached record, or all of them."""
        with self._lock:
            self._generation += 1
            if agent_id is None:
                self._cache.clear()
            else:
                self._cache.pop(agent_id, None)


def changed_fields(before: Agent | None, after: Agent | None) -> list[str]:
    """Return the names of the record fields that differ, sorted."""
    old = before.to_json() if before is not None else {}
    new = after.to_json() if after is not None else {}
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def inventory_entry(
    *,
    action: str,
    agent_id: str,
    before: Agent | None,
    after: Agent | None,
    at: datetime,
    actor: str,
    credential_id: str | None,
    source: str | None,
) -> dict[str, Any]:
    """Return the ``agent_change`` audit entry for one change (see ``agent_change_entry``)."""
    return agent_change_entry(
        action=action,
        agent_id=agent_id,
        before=before.to_json() if before is not None else None,
        after=after.to_json() if after is not None else None,
        at=at,
        actor=actor,
        credential_id=credential_id,
        source=source,
    )
