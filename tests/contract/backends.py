"""The store backends the contract and tamper tests run against.

A ``Backend`` opens handles on one database: the first ``open()`` creates and migrates
it, later ones are further handles on the same data, as after a restart or on another
replica. PostgreSQL runs in a fresh schema per test (selected through ``search_path`` in
the URL), dropped afterwards, so parallel runs and reruns never see each other's rows.

PostgreSQL is found through ``LICTOR_TEST_POSTGRES_URL``. When it is unreachable the
PostgreSQL cases are skipped with the reason, except under ``CI=true``, where that is a
failure: CI must never pass by silently testing less.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from secrets import token_hex
from typing import Any

import psycopg
import pytest
import redis
from psycopg import sql
from sqlalchemy.engine import make_url

from lictor.service.memory import MemoryAgents, MemoryAuditStore, MemoryCredentials
from lictor.service.ports import AgentStore, AuditStore, CredentialStore, RiskStore
from lictor.store import Store, open_store
from lictor.store.redis_risk import RedisRiskStore

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SESSION_TOKEN = secrets.token_hex(4)
"""Names this test run's PostgreSQL schemas, so concurrent runs never collide."""


@dataclass
class Stores:
    """The three ports of one backend handle; ``close`` is a no-op in memory."""

    audit: AuditStore
    agents: AgentStore
    credentials: CredentialStore
    close: Callable[[], None] = lambda: None


@dataclass
class Backend:
    """Opens handles on one database and closes them all at teardown."""

    name: str
    url: str | None = None  # None: in memory
    _memory: Stores | None = None
    _migrated: bool = False
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def open(self) -> Stores:
        """Return the ports of a new handle (in memory: the same objects every time)."""
        if self._memory is not None:
            # Memory cannot restart, but it can stand in for replicas of one process.
            return self._memory
        store = self.open_store()
        return Stores(store.audit, store.agents, store.credentials, store.close)

    def open_store(self) -> Store:
        """Return a new ``Store`` on this database; the first one migrates it."""
        if self.url is None:
            raise TypeError(f"the {self.name} backend has no database")
        store = open_store(self.url)
        self._closers.append(store.close)
        if not self._migrated:
            store.migrate()
            self._migrated = True
        return store

    def close_all(self) -> None:
        for close in self._closers:
            close()


def postgres_base_url() -> str:
    return os.environ.get("LICTOR_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@cache
def _postgres_problem() -> str | None:
    """Return why PostgreSQL cannot be used, or None; asked once per test session."""
    try:
        with psycopg.connect(_libpq_url(postgres_base_url()), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return " ".join(str(exc).split()) or type(exc).__name__


def require_postgres() -> str:
    """Return the base URL, or skip (fail under CI=true) when PostgreSQL is unreachable."""
    problem = _postgres_problem()
    if problem is not None:
        shown = make_url(postgres_base_url()).render_as_string(hide_password=True)
        reason = f"PostgreSQL not reachable at {shown}; set LICTOR_TEST_POSTGRES_URL ({problem})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return postgres_base_url()


@contextmanager
def backend_named(name: str, tmp_path: Path, *, fresh_schema: bool = False) -> Iterator[Backend]:
    """Yield an empty backend (``memory``, ``sqlite`` or ``postgres``), cleaned up after.

    PostgreSQL reuses this session's migrated schema, emptied, because migrating costs
    about as much as the test itself; ``fresh_schema`` gives a test that changes the
    schema (migrations, triggers) a new one of its own instead.
    """
    schema: PostgresSchema | None = None
    if name == "memory":
        memory = Stores(MemoryAuditStore(), MemoryAgents(), MemoryCredentials())
        backend = Backend(name, _memory=memory)
    elif name == "sqlite":
        backend = Backend(name, f"sqlite:///{tmp_path / 'lictor.db'}")
    elif fresh_schema:
        schema = PostgresSchema(require_postgres())
        backend = Backend(name, schema.url)
    else:
        shared = _shared_schema()
        shared.empty()
        backend = Backend(name, shared.url, _migrated=True)
    try:
        yield backend
    finally:
        backend.close_all()
        if schema is not None:
            schema.drop()


@cache
def _shared_schema() -> PostgresSchema:
    schema = PostgresSchema(require_postgres())
    store = open_store(schema.url)
    try:
        store.migrate()
    finally:
        store.close()
    return schema


class PostgresSchema:
    """A throw-away schema; ``url`` puts it first on the search path."""

    _counter = 0

    def __init__(self, base_url: str) -> None:
        PostgresSchema._counter += 1
        self.name = f"lictor_test_{SESSION_TOKEN}_{PostgresSchema._counter}"
        self._admin = _libpq_url(base_url)
        self.url = (
            make_url(base_url)
            .update_query_dict({"options": f"-csearch_path={self.name}"})
            .render_as_string(hide_password=False)
        )
        with psycopg.connect(self._admin, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.name)))

    def empty(self) -> None:
        """Delete every row (DELETE: on small tables it is ten times faster than TRUNCATE)."""
        with psycopg.connect(self._admin, autocommit=True) as connection:
            for table in ("audit_records", "audit_checkpoints", "agents", "credentials"):
                connection.execute(
                    sql.SQL("DELETE FROM {}").format(sql.Identifier(self.name, table))
                )

    def drop(self) -> None:
        with psycopg.connect(self._admin, autocommit=True) as connection:
            connection.execute(_drop(self.name))


def drop_session_schemas() -> None:
    """Drop any schema this session left behind (a test killed mid-teardown).

    The shared schema goes too, so it is forgotten here: a module that cleans up when it
    ends may run before others that still need it (test order differs under xdist).
    """
    _shared_schema.cache_clear()
    if _postgres_problem() is not None:
        return
    with psycopg.connect(_libpq_url(postgres_base_url()), autocommit=True) as connection:
        names = connection.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
            (f"lictor_test_{SESSION_TOKEN}_%",),
        ).fetchall()
        for (name,) in names:
            connection.execute(_drop(name))


def _drop(schema: str) -> sql.Composed:
    return sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))


@dataclass
class RedisHandles:
    """Opens risk stores on one Redis namespace; every client is closed at teardown."""

    url: str
    prefix: str = field(default_factory=lambda: f"lictor-test:{token_hex(6)}:")
    clients: list[redis.Redis] = field(default_factory=list)
    engines: list[Any] = field(default_factory=list)  # RiskEngines flushed at teardown

    def open(self, **options: Any) -> RedisRiskStore:
        """A store with a connection pool of its own: another replica, or a restart."""
        return RedisRiskStore(self.raw(), prefix=self.prefix, **options)

    def raw(self) -> redis.Redis:
        client = redis.Redis.from_url(self.url)
        self.clients.append(client)
        return client

    def keys(self) -> list[bytes]:
        return sorted(self.raw().scan_iter(match=f"{self.prefix}*"))

    def close(self, at: datetime) -> None:
        """Land written-behind changes, delete this namespace, close every client."""
        for engine in self.engines:
            engine.flush(at)
        keys = self.keys()
        if keys:
            self.raw().delete(*keys)
        for client in self.clients:
            client.close()


@dataclass
class RiskBackend:
    """Opens risk stores on one shared state: each ``open()`` is another replica."""

    name: str
    open: Callable[[], RiskStore]
    engines: list[Any] = field(default_factory=list)  # flushed at teardown (Redis)
