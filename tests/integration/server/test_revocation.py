"""Revocation reaches every replica's credential cache on the next request (PostgreSQL).

Two runtimes share one PostgreSQL schema, as two replicas would. Replica A has the
agent's token cached; the credential is revoked through replica B's store. A refuses
the very next request: the revocation travels as a NOTIFY, not by cache expiry (A's
cache entry would otherwise live for a whole second).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
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
from server.support import FINANCE, NOW, bearer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def shared_postgres(postgres_database: str) -> str:
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return f"{postgres_database}?options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def replicas(tmp_path: Path, shared_postgres: str) -> Iterator[tuple[Runtime, Runtime]]:
    settings = Settings(
        data_dir=tmp_path / "a",
        store_url=shared_postgres,
        policies=FINANCE / "policies",
        agents=FINANCE / "agents.yaml",
        checkpoint_seconds=3600,
    )
    first = Runtime.open(settings, clock=FixedClock(NOW))
    other = settings.model_copy(update={"data_dir": tmp_path / "b"})
    second = Runtime.open(other, clock=FixedClock(NOW))
    try:
        yield first, second
    finally:
        second.close()
        first.close()


async def test_a_revocation_on_one_replica_stops_the_next_request_on_another(
    replicas: tuple[Runtime, Runtime],
) -> None:
    a, b = replicas
    issued = a.credentials.issue(CredentialKind.AGENT, "payments-bot", Role.AGENT)
    body = {"tool": "get_invoice", "arguments": {"invoice_id": "INV-1"}}
    transport = httpx.ASGITransport(app=create_app(a))
    async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as client:
        first = await client.post("/v1/decide", json=body, headers=bearer(issued.token))
        assert first.status_code == 200  # A now holds the token in its one-second cache
        b.credentials.revoke(issued.credential.id)
        started = time.monotonic()
        refused = None
        while time.monotonic() - started < 0.5:
            response = await client.post("/v1/decide", json=body, headers=bearer(issued.token))
            if response.status_code == 401:
                refused = time.monotonic() - started
                break
        assert refused is not None, "replica A kept accepting a revoked token"
        assert refused < 0.5  # well inside the cache's second: the NOTIFY did it
