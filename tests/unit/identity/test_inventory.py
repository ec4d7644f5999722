"""The inventory use cases: versioned, audited changes, apply diffs, shadow sightings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lictor.core.agents import Agent, AgentStatus, RiskTier, ShadowSighting, parse_agent
from lictor.core.requests import AgentId
from lictor.errors import Conflict, NotFound, PolicyError
from lictor.service.inventory import SHADOW_ACTOR, Inventory
from lictor.service.memory import FixedClock, MemoryAgents, MemoryAudit

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def make() -> tuple[Inventory, MemoryAgents, MemoryAudit, FixedClock]:
    store, audit, clock = MemoryAgents(), MemoryAudit(), FixedClock(NOW)
    return Inventory(store, audit, clock), store, audit, clock


def agent(agent_id: str = "mailer", **fields: Any) -> Agent:
    return parse_agent({"id": agent_id, "owner": "ops@corp.example", **fields})


def changes(audit: MemoryAudit) -> list[tuple[str, str, list[str]]]:
    return [(e["action"], e["agent_id"], e["changed"]) for e in audit.entries]


def test_register_stamps_who_and_when_and_version_one() -> None:
    inventory, store, audit, _ = make()

    change = inventory.register(agent(), actor="alice", source="cli")

    stored = store.get("mailer")
    assert stored is not None
    assert (stored.version, stored.created_by, stored.created_at) == (1, "alice", NOW)
    assert (stored.updated_by, stored.updated_at) == ("alice", NOW)
    assert change.before is None
    assert audit.entries[0]["kind"] == "agent_change"
    assert audit.entries[0]["after"]["version"] == 1
    assert audit.entries[0]["before"] is None


def test_registering_an_existing_agent_is_a_conflict_and_writes_nothing() -> None:
    inventory, _, audit, _ = make()
    inventory.register(agent(), actor="alice")

    with pytest.raises(Conflict):
        inventory.register(agent(name="other"), actor="bob")

    assert len(audit.entries) == 1


def test_every_change_bumps_the_version_and_keeps_the_creator() -> None:
    inventory, store, audit, clock = make()
    inventory.register(agent(), actor="alice")
    clock.advance(60)

    inventory.update("mailer", {"risk_tier": "high"}, actor="bob", reason="handles payroll")
    inventory.set_status("mailer", AgentStatus.SUSPENDED, actor="carol", reason="incident 7")

    stored = store.get("mailer")
    assert stored is not None
    assert stored.version == 3
    assert stored.risk_tier is RiskTier.HIGH
    assert stored.status is AgentStatus.SUSPENDED
    assert (stored.created_by, stored.created_at) == ("alice", NOW)
    assert (stored.updated_by, stored.updated_at) == ("carol", NOW + timedelta(seconds=60))
    assert changes(audit)[1:] == [
        ("update", "mailer", ["risk_tier"]),
        ("suspended", "mailer", ["status"]),
    ]
    assert [e["reason"] for e in audit.entries] == [None, "handles payroll", "incident 7"]
    assert [e["actor"] for e in audit.entries] == ["alice", "bob", "carol"]


def test_a_stale_version_is_a_conflict_and_nothing_is_written() -> None:
    inventory, store, audit, _ = make()
    inventory.register(agent(), actor="alice")
    inventory.update("mailer", {"name": "Mailer"}, actor="bob", expected_version=1)

    with pytest.raises(Conflict):
        inventory.update("mailer", {"name": "Stale"}, actor="carol", expected_version=1)

    stored = store.get("mailer")
    assert stored is not None
    assert (stored.name, stored.version) == ("Mailer", 2)
    assert len(audit.entries) == 2


def test_a_change_that_changes_nothing_writes_nothing() -> None:
    inventory, store, audit, _ = make()
    inventory.register(agent(tags=["mail"]), actor="alice")

    change = inventory.update("mailer", {"tags": ["mail"]}, actor="bob")

    assert change.is_noop
    stored = store.get("mailer")
    assert stored is not None
    assert stored.version == 1
    assert len(audit.entries) == 1


def test_update_refuses_bookkeeping_fields_and_unknown_agents() -> None:
    inventory, _, _, _ = make()
    inventory.register(agent(), actor="alice")

    with pytest.raises(PolicyError) as caught:
        inventory.update("mailer", {"version": 9}, actor="bob")
    assert caught.value.pointer == "/version"
    with pytest.raises(PolicyError):
        inventory.update("mailer", {"risk_tolerance": 7}, actor="bob")
    with pytest.raises(NotFound):
        inventory.update("nobody", {"name": "x"}, actor="bob")


def test_apply_is_idempotent_and_dry_run_changes_nothing() -> None:
    inventory, store, audit, _ = make()
    inventory.register(agent("old-job"), actor="alice")
    inventory.register(agent("mailer", risk_tier="low"), actor="alice")
    records = [agent("mailer", risk_tier="high"), agent("reader")]

    dry = inventory.apply(records, actor="git", dry_run=True)
    assert not dry.applied
    assert [(i.agent_id, i.action, i.fields) for i in dry.items] == [
        ("mailer", "change", ("risk_tier",)),
        ("reader", "add", dry.items[1].fields),
    ]
    assert dry.items[0].before == {"risk_tier": "low"}
    assert dry.items[0].after == {"risk_tier": "high"}
    assert len(audit.entries) == 2

    applied = inventory.apply(records, actor="git")
    assert applied.applied
    assert [i.action for i in applied.items] == ["change", "add"]
    again = inventory.apply(records, actor="git")
    assert [i.action for i in again.items] == ["unchanged", "unchanged"]
    assert len(audit.entries) == 4  # two applied changes; the second apply wrote nothing
    old = store.get("old-job")
    assert old is not None
    assert old.status is AgentStatus.ACTIVE


def test_apply_retires_missing_agents_only_when_asked_and_never_shadow_ones() -> None:
    inventory, store, _, _ = make()
    inventory.register(agent("old-job"), actor="alice")
    inventory.record_shadow("ghost", ShadowSighting(NOW, NOW, tools=("x",)))

    plan = inventory.apply([agent("mailer")], actor="git", retire_missing=True)

    assert [(i.agent_id, i.action) for i in plan.items] == [
        ("mailer", "add"),
        ("old-job", "retire"),
    ]
    old = store.get("old-job")
    ghost = store.get("ghost")
    assert old is not None
    assert old.status is AgentStatus.RETIRED
    assert ghost is not None
    assert ghost.status is AgentStatus.SHADOW


def test_apply_refuses_a_file_naming_one_agent_twice() -> None:
    inventory, _, audit, _ = make()
    with pytest.raises(PolicyError):
        inventory.apply([agent("a"), agent("a")], actor="git")
    assert audit.entries == []


def test_shadow_sightings_merge_and_only_the_first_is_audited() -> None:
    inventory, store, audit, clock = make()
    first = ShadowSighting(NOW, NOW, "10.0.0.1", "agent/1", ("read",), 1)
    later = NOW + timedelta(minutes=5)
    second = ShadowSighting(later, later, "10.0.0.2", "agent/2", ("read", "send"), 3)

    inventory.record_shadow("ghost", first)
    clock.advance(300)
    inventory.record_shadow("ghost", second)

    stored = store.get("ghost")
    assert stored is not None
    assert stored.shadow is not None
    assert stored.status is AgentStatus.SHADOW
    assert stored.shadow.count == 4
    assert stored.shadow.tools == ("read", "send")
    assert (stored.shadow.first_seen_at, stored.shadow.last_seen_at) == (NOW, later)
    assert (stored.shadow.source, stored.shadow.user_agent) == ("10.0.0.2", "agent/2")
    assert stored.version == 2
    assert changes(audit) == [("shadow_discovered", "ghost", audit.entries[0]["changed"])]
    assert audit.entries[0]["actor"] == SHADOW_ACTOR


def test_a_sighting_never_touches_a_registered_agent() -> None:
    inventory, store, audit, _ = make()
    inventory.register(agent(), actor="alice")

    assert inventory.record_shadow("mailer", ShadowSighting(NOW, NOW)) is None

    stored = store.get("mailer")
    assert stored is not None
    assert stored.shadow is None
    assert stored.version == 1
    assert len(audit.entries) == 1


def test_register_adopts_a_shadow_agent_and_keeps_its_sighting() -> None:
    inventory, store, audit, _ = make()
    inventory.record_shadow("ghost", ShadowSighting(NOW, NOW, tools=("read",)))

    change = inventory.register(agent("ghost", allowed_tools=["read"]), actor="alice")

    assert change.action == "adopt"
    stored = store.get("ghost")
    assert stored is not None
    assert stored.status is AgentStatus.ACTIVE
    assert stored.shadow is not None
    assert stored.shadow.tools == ("read",)
    assert stored.created_by == SHADOW_ACTOR
    assert stored.version == 2
    assert audit.entries[-1]["action"] == "adopt"
    assert "status" in audit.entries[-1]["changed"]


def test_revoke_tokens_sets_the_cut_off_and_a_put_keeps_it() -> None:
    inventory, store, audit, _ = make()
    inventory.register(agent(), actor="alice")
    inventory.revoke_tokens("mailer", after=NOW, actor="ir", reason="quarantine")

    inventory.put(agent(name="Renamed"), expected_version=2, actor="alice")

    stored = store.get("mailer")
    assert stored is not None
    assert stored.tokens_valid_after == NOW
    assert stored.name == "Renamed"
    assert audit.entries[1]["changed"] == ["tokens_valid_after"]


def test_delete_is_audited_and_unknown_is_not_found() -> None:
    inventory, store, audit, _ = make()
    inventory.register(agent(), actor="alice")
    inventory.delete("mailer", actor="bob")
    assert store.get("mailer") is None
    assert audit.entries[-1]["action"] == "delete"
    assert audit.entries[-1]["after"] is None
    with pytest.raises(NotFound):
        inventory.delete("mailer", actor="bob")


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(list(RiskTier))),
        max_size=12,
    )
)
def test_applying_any_file_twice_writes_nothing_the_second_time(
    rows: list[tuple[str, RiskTier]],
) -> None:
    inventory, _, audit, _ = make()
    records = list({i: Agent(id=AgentId(i), risk_tier=t) for i, t in rows}.values())
    inventory.apply(records, actor="git")
    written = len(audit.entries)

    again = inventory.apply(records, actor="git")

    assert len(audit.entries) == written
    assert all(i.action == "unchanged" for i in again.items)


def test_a_record_round_trips_through_its_wire_form() -> None:
    original = Agent(
        id=AgentId("ghost"),
        status=AgentStatus.SHADOW,
        created_by="x",
        created_at=NOW,
        updated_at=NOW,
        version=4,
        shadow=ShadowSighting(NOW, NOW, "10.0.0.1", None, ("a",), 2),
        tokens_valid_after=NOW,
    )
    assert Agent.from_json(original.to_json()) == original
