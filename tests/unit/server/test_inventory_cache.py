"""Inventory changes are computed from the stored record, not from a replica's cache."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from lictor.core.agents import Agent, AgentStatus
from lictor.core.requests import AgentId
from lictor.server.inventory import CachedAgents
from lictor.service.inventory import Inventory
from lictor.service.memory import FixedClock, MemoryAgents, MemoryAudit


def test_a_release_after_another_replica_quarantined_is_not_a_no_op() -> None:
    shared = MemoryAgents([Agent(id=AgentId("bot"))])
    clock = FixedClock(datetime(2026, 11, 25, 12, tzinfo=UTC))
    here = CachedAgents(shared, ttl_seconds=60)  # this replica's view, cached
    assert here.get("bot") is not None  # cached as active
    stored = shared.get("bot")
    assert stored is not None
    # Another replica quarantines the agent: the shared store changes, our cache does not.
    shared.put(replace(stored, status=AgentStatus.QUARANTINED))
    cached = here.get("bot")
    assert cached is not None
    assert cached.status is AgentStatus.ACTIVE  # stale, as a replica's cache may be
    change = Inventory(here, MemoryAudit(), clock).set_status(
        "bot", AgentStatus.ACTIVE, actor="admin", reason="cleared"
    )
    assert change.before is not None
    assert change.before.status is AgentStatus.QUARANTINED
    released = shared.get("bot")
    assert released is not None
    assert released.status is AgentStatus.ACTIVE
