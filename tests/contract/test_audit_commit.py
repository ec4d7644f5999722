"""How a group commit reaches the database: statements, durability setting, refusals.

``SqlAuditStore.append_batch`` writes a batch with as few statements as it can (multi-row
inserts on SQLite) and learns about a reused decision id from the unique index; these
tests pin what that must not change: one chain whatever the batch size, a refused batch
leaves nothing, and ``audit_sync`` sets exactly the SQLite pragma it documents.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from contract.backends import Backend
from lictor.core.audit.chain import ChainVerifier, leaf_data, record_hash_of
from lictor.errors import ConfigError, Conflict
from lictor.service.ports import AuditQuery, AuditStore
from lictor.store.audit import SqlAuditStore
from lictor.store.database import Database

# PRAGMA synchronous values (https://www.sqlite.org/pragma.html#pragma_synchronous).
SQLITE_NORMAL = 1
SQLITE_FULL = 2


def entry(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "decision",
        "decision_id": f"commit-{i:05d}",
        "at": f"2026-11-25T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
        "agent_id": "payments-bot",
        "tool": "get_invoice",
        "outcome": "allow",
        "arguments": {"n": i, "ratio": i / 7, "text": "grüße ☃"},
        **fields,
    }


def synchronous(database: Database) -> int:
    with database.reading() as connection:
        return int(connection.execute(text("PRAGMA synchronous")).scalar_one())


@pytest.mark.parametrize("size", [1, 83, 84, 300, 1024])
def test_a_batch_of_any_size_is_one_verifiable_chain(audit: AuditStore, size: int) -> None:
    audit.append_batch([entry(-1)])  # the batch starts after an existing head
    sealed = audit.append_batch([entry(i) for i in range(size)])

    stored = list(audit.records())
    assert [r.seq for r in stored] == list(range(size + 1))
    assert stored[1:] == sealed
    verifier = ChainVerifier()
    for record in stored:
        verifier.add(record)
    assert verifier.size == size + 1
    for record in stored:
        assert record.record_hash == record_hash_of(record.seq, record.prev_hash, record.payload)
    found = audit.query(AuditQuery(decision_id=f"commit-{size - 1:05d}", limit=5))
    assert [r.seq for r in found.records] == [size]


def test_stored_payload_bytes_are_the_hashed_bytes(sql_backend: Backend) -> None:
    audit = SqlAuditStore(sql_backend.open_store().database)
    sealed = audit.append_batch([entry(i) for i in range(100)])
    for (seq, prev_hash, payload_json, record_hash), record in zip(
        audit.canonical_records(), sealed, strict=True
    ):
        assert seq == record.seq
        assert prev_hash == record.prev_hash
        assert record_hash == record.record_hash
        assert leaf_data(seq, prev_hash, record.payload).startswith(
            b'{"payload":' + payload_json + b","
        )


def test_a_recorded_decision_id_refuses_the_whole_batch_and_the_chain_goes_on(
    audit: AuditStore,
) -> None:
    audit.append_batch([entry(i) for i in range(3)])

    with pytest.raises(Conflict) as caught:
        audit.append_batch([entry(10), entry(1, tool="other"), entry(11)])

    assert caught.value.id == "commit-00001"
    assert audit.size() == 3
    assert audit.find_decision("commit-00010") is None
    after = audit.append_batch([entry(10)])
    assert after[0].seq == 3


def test_results_may_share_a_decision_id(audit: AuditStore) -> None:
    audit.append_batch([entry(1)])
    result = {"v": 1, "kind": "result", "decision_id": "commit-00001", "status": "ok"}

    sealed = audit.append_batch([result, dict(result, status="error")])

    assert [r.seq for r in sealed] == [1, 2]


def test_sqlite_fsyncs_every_commit_unless_told_otherwise(sql_backend: Backend) -> None:
    store = sql_backend.open_store()
    if store.database.is_postgresql:
        with pytest.raises(ConfigError):
            store.database.set_sync("os")
        store.database.set_sync("full")  # the default is accepted everywhere
        return
    assert synchronous(store.database) == SQLITE_FULL

    store.database.set_sync("os")  # pooled connections are reopened with the new pragma

    assert store.database.sync == "os"
    assert synchronous(store.database) == SQLITE_NORMAL
    store.audit.append_batch([entry(1)])
    store.database.set_sync("full")
    assert synchronous(store.database) == SQLITE_FULL


def test_an_unknown_sync_mode_is_a_config_error(sql_backend: Backend) -> None:
    store = sql_backend.open_store()
    with pytest.raises(ConfigError):
        store.database.set_sync("sometimes")  # type: ignore[arg-type]  # what a bad config gives


def test_a_relaxed_write_skips_the_fsync_of_its_own_commit_only(sql_backend: Backend) -> None:
    store = sql_backend.open_store()
    database = store.database
    seen: list[int] = []
    with database.writing(durable=False) as connection:
        if not database.is_postgresql:
            driver = connection.connection.driver_connection
            assert driver is not None
            seen.append(int(driver.execute("PRAGMA synchronous").fetchone()[0]))
        connection.execute(text("SELECT 1"))
    store.audit.append_batch([entry(1)])  # the next durable write on the pooled connections

    if database.is_postgresql:
        assert seen == []  # PostgreSQL's durability is the server's own setting
        return
    assert seen == [SQLITE_NORMAL]
    assert synchronous(database) == SQLITE_FULL  # restored for whoever takes it next


def test_a_key_read_sees_every_commit_and_fails_as_a_store_error_once_closed(
    sql_backend: Backend,
) -> None:
    from sqlalchemy import bindparam, select

    from lictor.errors import StoreError
    from lictor.store.schema import audit_records

    store = sql_backend.open_store()
    database = store.database
    by_seq = select(audit_records.c.record_hash).where(audit_records.c.seq == bindparam("seq"))
    assert database.read_row(by_seq, {"seq": 0}) is None
    sealed = store.audit.append_batch([entry(1), entry(2)])

    assert database.read_row(by_seq, {"seq": 1}) == (sealed[1].record_hash,)
    database.close()
    with pytest.raises(StoreError):
        database.read_row(by_seq, {"seq": 1})
