"""Fixtures of the alert integration tests: the delivery log on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

# The shared store backends live in tests/contract; put tests/ on the path so this
# directory also runs on its own.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from contract.backends import backend_named, drop_session_schemas  # after the path

from lictor.alerts.deliveries import DeliveryLog, MemoryDeliveries
from lictor.store.alerts import SqlDeliveries
from lictor.store.schema import alert_deliveries


@pytest.fixture(scope="session", autouse=True)
def _postgres_cleanup() -> Iterator[None]:
    yield
    drop_session_schemas()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def deliveries(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeliveryLog]:
    """An empty delivery log: in memory, or in a migrated store."""
    if request.param == "memory":
        yield MemoryDeliveries()
        return
    with backend_named(request.param, tmp_path) as backend:
        store = backend.open_store()
        with store.database.writing() as connection:
            connection.execute(delete(alert_deliveries))  # the shared schema is reused
        yield SqlDeliveries(store.database)
