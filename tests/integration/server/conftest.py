"""Fixtures for the HTTP API: a real store (SQLite or PostgreSQL), a Runtime, an ASGI client.

Every test that takes ``runtime`` runs once per backend. PostgreSQL tests get a schema of
their own inside one database created for the session; with ``CI=true`` an unreachable
server fails them, elsewhere they are skipped with the reason shown.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest

from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.service.memory import FixedClock
from lictor.service.ports import CredentialKind, Role
from lictor.settings import Settings
from server.support import FINANCE, NOW, POSTGRES_URL, Tokens


@pytest.fixture
def anyio_backend() -> str:
    # The Governor awaits its group commit with asyncio.wrap_future.
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of this test session's own, dropped at the end."""
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI=true: PostgreSQL tests are mandatory)")
        pytest.skip(reason)
    name = f"lictor_server_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_URL.rsplit("/", 1)[0]
        try:
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'lictor.db').as_posix()}"
    database: str = request.getfixturevalue("postgres_database")
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return f"{database}?options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        store_url=store_url,
        policies=FINANCE / "policies",
        agents=FINANCE / "agents.yaml",
        max_body_bytes=4096,
        checkpoint_seconds=3600,
    )


@pytest.fixture
def runtime(settings: Settings, clock: FixedClock) -> Iterator[Runtime]:
    opened = Runtime.open(settings, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def tokens(runtime: Runtime) -> Tokens:
    issue = runtime.credentials.issue
    return Tokens(
        agent=issue(CredentialKind.AGENT, "payments-bot", Role.AGENT).token,
        other_agent=issue(CredentialKind.AGENT, "expense-helper", Role.AGENT).token,
        unknown_agent=issue(CredentialKind.AGENT, "ghost-bot", Role.AGENT).token,
        admin=issue(CredentialKind.ADMIN, "alice", Role.ADMIN).token,
        auditor=issue(CredentialKind.ADMIN, "audrey", Role.AUDITOR).token,
        reviewer=issue(CredentialKind.ADMIN, "rick", Role.REVIEWER).token,
    )


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime), client=("10.1.2.3", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://lictor.test") as http:
        yield http
