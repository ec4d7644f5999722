"""Backend fixtures: ``backend`` runs a test on memory, SQLite and PostgreSQL.

``sql_backend`` is for behaviour only a real database has (migrations, closing,
connection failures) and starts from a database of its own. ``stores``, ``audit``,
``agents`` and ``credentials`` are shortcuts to a first handle on ``backend``.
``risk_backend`` runs the risk-state contract on SQLite, PostgreSQL and Redis;
``handles`` opens Redis risk stores in a namespace of the test's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contract.backends import (
    Backend,
    RedisHandles,
    RiskBackend,
    Stores,
    backend_named,
    drop_session_schemas,
)
from lictor.service.ports import AgentStore, AuditStore, CredentialStore


@pytest.fixture(scope="session", autouse=True)
def _postgres_cleanup() -> Iterator[None]:
    yield
    drop_session_schemas()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with backend_named(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture(params=["sqlite", "postgres"])
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with backend_named(request.param, tmp_path, fresh_schema=True) as opened:
        yield opened


@pytest.fixture
def stores(backend: Backend) -> Stores:
    return backend.open()


@pytest.fixture
def audit(stores: Stores) -> AuditStore:
    return stores.audit


@pytest.fixture
def agents(stores: Stores) -> AgentStore:
    return stores.agents


@pytest.fixture
def credentials(stores: Stores) -> CredentialStore:
    return stores.credentials


@pytest.fixture
def handles(redis_url: str) -> Iterator[RedisHandles]:
    opened = RedisHandles(redis_url)
    try:
        yield opened
    finally:
        opened.close(datetime.now(UTC))


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def risk_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RiskBackend]:
    if request.param == "redis":
        redis_handles: RedisHandles = request.getfixturevalue("handles")
        yield RiskBackend("redis", redis_handles.open, redis_handles.engines)
        return
    with backend_named(request.param, tmp_path, fresh_schema=True) as opened:
        yield RiskBackend(request.param, lambda: opened.open_store().risk)
