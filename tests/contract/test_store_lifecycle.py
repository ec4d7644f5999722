"""What only a real database has: URLs, migrations, readiness, closing, failures.

Run on SQLite and PostgreSQL; the memory stores have no lifecycle.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from contract.backends import Backend
from lictor.core.agents import Agent
from lictor.core.audit.chain import verify_chain
from lictor.core.requests import AgentId
from lictor.errors import ConfigError, StoreError
from lictor.service.ports import AuditQuery, Credential, CredentialKind, Role
from lictor.store import Store, open_store
from lictor.store.schema import metadata


def test_migrate_is_idempotent(sql_backend: Backend) -> None:
    store = sql_backend.open_store()
    store.audit.append_batch([{"kind": "decision", "decision_id": "d1"}])

    store.migrate()
    store.migrate()

    assert store.audit.size() == 1


def test_the_migrated_schema_matches_the_metadata(sql_backend: Backend) -> None:
    store = sql_backend.open_store()

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)

    assert differences == []


def test_ping_is_true_until_the_store_is_closed(sql_backend: Backend) -> None:
    store = sql_backend.open_store()
    assert store.ping() is True

    store.close()
    store.close()  # idempotent

    assert store.ping() is False


def port_calls(store: Store) -> list[Callable[[], object]]:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    return [
        lambda: store.audit.append_batch([{"kind": "decision", "decision_id": "d9"}]),
        store.audit.head,
        store.audit.size,
        lambda: list(store.audit.records()),
        lambda: store.audit.find_decision("d1"),
        lambda: store.audit.query(AuditQuery()),
        store.audit.checkpoints,
        lambda: store.agents.get("a"),
        store.agents.list,
        lambda: store.agents.put(Agent(id=AgentId("a"))),
        lambda: store.agents.delete("a"),
        lambda: store.credentials.get("c"),
        store.credentials.list,
        lambda: store.credentials.revoke("c", now),
        lambda: store.credentials.add(
            Credential("c", CredentialKind.AGENT, "a", Role.AGENT, now), "h"
        ),
    ]


def test_every_call_on_a_closed_store_raises_store_error(sql_backend: Backend) -> None:
    store = sql_backend.open_store()
    store.close()

    for call in port_calls(store):
        with pytest.raises(StoreError, match="closed"):
            call()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_an_unreachable_database_raises_store_error(tmp_path: Path, database: str) -> None:
    # A directory where the database file should be; a port nothing listens on.
    (tmp_path / "lictor.db").mkdir()
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'lictor.db'}",
        "postgres": "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2",
    }[database]
    store = open_store(url)
    try:
        assert store.ping() is False
        with pytest.raises(StoreError):
            store.migrate()
        for call in port_calls(store):
            with pytest.raises(StoreError) as caught:
                call()
            assert caught.value.__cause__ is not None  # raised from the driver error
    finally:
        store.close()


def test_a_failed_insert_leaves_nothing_and_the_chain_goes_on(sql_backend: Backend) -> None:
    store = sql_backend.open_store()
    store.audit.append_batch([{"kind": "decision", "decision_id": "d0", "tool": "ok"}])
    install_failing_trigger(store, tool="boom")
    batch = [{"kind": "decision", "decision_id": f"d{i}", "tool": "ok"} for i in (1, 2)]

    with pytest.raises(StoreError) as caught:
        store.audit.append_batch(
            [*batch, {"kind": "decision", "decision_id": "d3", "tool": "boom"}]
        )

    assert caught.value.__cause__ is not None
    assert store.audit.size() == 1
    assert [r.seq for r in store.audit.append_batch(batch)] == [1, 2]
    assert verify_chain(store.audit.records()).size == 3


def install_failing_trigger(store: Store, tool: str) -> None:
    with store.engine.begin() as connection:
        if store.database.is_postgresql:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.tool = '{tool}' THEN RAISE EXCEPTION 'refused'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_boom BEFORE INSERT ON audit_records "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_boom BEFORE INSERT ON audit_records "
                    f"WHEN NEW.tool = '{tool}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )


def test_a_payload_time_that_does_not_parse_never_matches_a_time_filter(
    sql_backend: Backend,
) -> None:
    store = sql_backend.open_store()
    store.audit.append_batch(
        [{"kind": "decision", "at": "not a time"}, {"kind": "decision", "at": "2026-03-01T12:00Z"}]
    )

    page = store.audit.query(AuditQuery(since=datetime(2000, 1, 1, tzinfo=UTC)))

    assert [r.seq for r in page.records] == [1]


def test_a_naive_query_time_is_refused(sql_backend: Backend) -> None:
    store = sql_backend.open_store()

    with pytest.raises(ValueError, match="naive"):
        store.audit.query(AuditQuery(since=datetime(2026, 3, 1)))  # noqa: DTZ001 - on purpose


# --- SQLite specifics --------------------------------------------------------------------


def test_sqlite_commits_are_fsynced_in_wal_mode(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'lictor.db'}")
    try:
        store.migrate()
        with store.engine.connect() as connection:
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    finally:
        store.close()

    assert journal == "wal"
    assert synchronous == 2  # FULL


KILLED_WRITER = """
import os, signal, sys
from lictor.store import open_store
store = open_store(sys.argv[1])
store.migrate()
sealed = store.audit.append_batch([{"kind": "decision", "decision_id": "acknowledged"}])
print(sealed[0].record_hash, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint, no atexit
"""


def test_sqlite_keeps_an_acknowledged_append_when_the_process_is_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lictor.db'}"
    writer = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", KILLED_WRITER, url], capture_output=True, text=True, timeout=60
    )
    assert writer.returncode == -signal.SIGKILL, writer.stderr
    acknowledged = writer.stdout.strip()

    store = open_store(url)
    try:
        head = store.audit.head()
    finally:
        store.close()

    assert head is not None
    assert head.record_hash == acknowledged


def test_sqlite_waits_for_another_writer_then_gives_up(tmp_path: Path) -> None:
    path = tmp_path / "lictor.db"
    store = open_store(f"sqlite:///{path}?timeout=0.2")
    store.migrate()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

        with pytest.raises(StoreError, match="locked"):
            store.audit.append_batch([{"kind": "decision", "decision_id": "d1"}])
        assert store.audit.size() == 0  # readers are not blocked (WAL)

        other.execute("ROLLBACK")
        assert store.audit.append_batch([{"kind": "decision", "decision_id": "d1"}])[0].seq == 0
    finally:
        other.close()
        store.close()


# --- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root@localhost/lictor",
        "postgresql+psycopg2://postgres@localhost/test",
        "sqlite://",
        "sqlite:///:memory:",
        "not a url",
    ],
)
def test_unsupported_urls_are_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        open_store(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:secret@db/lictor",
        "postgres://u:secret@db/lictor",
        "postgresql+psycopg://db/x",
    ],
)
def test_postgresql_urls_use_psycopg_3_and_hide_the_password(url: str) -> None:
    store = open_store(url)  # no connection is opened
    try:
        assert store.engine.dialect.name == "postgresql"
        assert store.engine.dialect.driver == "psycopg"
        assert "secret" not in store.database.description
    finally:
        store.close()
