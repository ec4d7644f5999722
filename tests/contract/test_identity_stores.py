"""Versioned agent writes and credential expiry/last use, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from contract.backends import Backend
from lictor.core.agents import Agent, AgentStatus, ShadowSighting
from lictor.core.requests import AgentId
from lictor.errors import NotFound
from lictor.service.ports import AgentStore, Credential, CredentialKind, CredentialStore, Role

T0 = datetime(2026, 11, 25, 9, 0, 0, 123000, tzinfo=UTC)


def versioned(version: int, name: str = "") -> Agent:
    return Agent(id=AgentId("mailer"), name=name, version=version, updated_at=T0)


def test_put_if_writes_only_over_the_expected_version(agents: AgentStore) -> None:
    assert agents.put_if(versioned(1, "first"), None)
    assert not agents.put_if(versioned(1, "again"), None)  # it exists now
    assert not agents.put_if(versioned(2, "stale"), 0)
    assert agents.put_if(versioned(2, "second"), 1)

    stored = agents.get("mailer")
    assert stored is not None
    assert (stored.name, stored.version) == ("second", 2)


def test_bookkeeping_and_the_shadow_sighting_survive_the_store(agents: AgentStore) -> None:
    record = Agent(
        id=AgentId("ghost"),
        status=AgentStatus.SHADOW,
        created_by="lictor:shadow-discovery",
        created_at=T0,
        updated_by="x",
        updated_at=T0,
        version=7,
        shadow=ShadowSighting(T0, T0 + timedelta(seconds=5), "10.0.0.9", "curl/8", ("a",), 3),
        tokens_valid_after=T0,
    )
    assert agents.put_if(record, None)
    assert agents.get("ghost") == record


def test_concurrent_writers_of_one_version_have_exactly_one_winner(
    sql_backend: Backend,
) -> None:
    first, second = sql_backend.open(), sql_backend.open()
    assert first.agents.put_if(versioned(1), None)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def write(index: int) -> None:
        store = first if index % 2 else second
        barrier.wait()
        results.append(store.agents.put_if(versioned(2, f"writer-{index}"), 1))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 7 + [True]


def credential(credential_id: str) -> Credential:
    return Credential(credential_id, CredentialKind.AGENT, "mailer", Role.AGENT, T0)


def test_expire_keeps_the_earliest_time(credentials: CredentialStore) -> None:
    credentials.add(credential("c1"), "h")
    later, earlier = T0 + timedelta(hours=1), T0 + timedelta(minutes=10)

    assert credentials.expire("c1", later).expires_at == later
    assert credentials.expire("c1", earlier).expires_at == earlier
    assert credentials.expire("c1", later).expires_at == earlier
    found = credentials.get("c1")
    assert found is not None
    assert found[0].expires_at == earlier
    assert found[0].is_valid_at(earlier - timedelta(microseconds=1))
    assert not found[0].is_valid_at(earlier)
    with pytest.raises(NotFound):
        credentials.expire("nope", T0)


def test_record_use_keeps_the_latest_time_and_skips_unknown_ids(
    credentials: CredentialStore,
) -> None:
    credentials.add(credential("c1"), "h")
    credentials.add(credential("c2"), "h")
    used = T0 + timedelta(seconds=30)

    credentials.record_use({"c1": used, "c2": T0, "ghost": used})
    credentials.record_use({"c1": T0})  # older: ignored

    by_id = {c.id: c for c in credentials.list()}
    assert by_id["c1"].last_used_at == used
    assert by_id["c2"].last_used_at == T0
    assert by_id["c1"].to_json()["last_used_at"] == "2026-11-25T09:00:30.123Z"
