"""Durable storage behind the service ports: SQLite (embedded default) and PostgreSQL.

:func:`open_store` turns a URL into a :class:`Store` holding the three durable ports
(audit trail, inventory, credentials). One SQLAlchemy Core implementation serves both
databases; what differs between them is confined to :mod:`lictor.store.database`.

``open_store`` opens no connection; call :meth:`Store.migrate` once at start-up (it is
idempotent and safe to run from several replicas at once) before using the ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Engine

from lictor.errors import StoreError
from lictor.service.ports import AgentStore, AuditStore, CredentialStore
from lictor.store.agents import SqlAgents
from lictor.store.audit import SqlAuditStore
from lictor.store.credentials import SqlCredentials
from lictor.store.database import MIGRATION_LOCK, Database, connect
from lictor.store.policies import SqlPolicyVersions
from lictor.store.risk import SqlRiskStore

__all__ = [
    "SqlAgents",
    "SqlAuditStore",
    "SqlCredentials",
    "SqlPolicyVersions",
    "SqlRiskStore",
    "Store",
    "open_store",
]

MIGRATIONS: Final = Path(__file__).parent / "migrations"
"""The Alembic script directory, shipped inside the package."""


@dataclass(frozen=True, slots=True)
class Store:
    """The durable ports over one database, and the database's lifecycle.

    Attributes:
        audit: The hash-chained audit trail.
        agents: The inventory.
        credentials: Credential records.
        database: The engine and its transaction rules; ``database.engine`` is there for
            maintenance and tests. **Raw SQL bypasses the chain**: rows written that way
            are exactly what verification exists to catch.
    """

    audit: AuditStore
    agents: AgentStore
    credentials: CredentialStore
    database: Database

    @property
    def policies(self) -> SqlPolicyVersions:
        """Stored policy versions and the active pointer (``lictor.service.lifecycle``)."""
        return SqlPolicyVersions(self.database)

    @property
    def risk(self) -> SqlRiskStore:
        """Risk state: sessions, baselines, window events (``lictor.service.risk``)."""
        return SqlRiskStore(self.database)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (see the warning on ``database``)."""
        return self.database.engine

    def migrate(self) -> None:
        """Bring the schema up to the newest revision; a no-op when it is already there.

        Runs in one transaction under the migration lock (PostgreSQL advisory lock,
        SQLite write lock), so replicas starting together migrate once, and a failed
        migration leaves the schema as it was.

        Raises:
            StoreError: The database failed or holds a revision this Lictor does not know
                (it was migrated by a newer version).
        """
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.database.writing(lock=MIGRATION_LOCK) as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except CommandError as exc:
            raise StoreError(f"cannot migrate {self.database.description}: {exc}") from exc

    def ping(self) -> bool:
        """Return whether the database answers (for a readiness probe); never raises."""
        return self.database.ping()

    def close(self) -> None:
        """Close the connections; any later use raises StoreError. Idempotent."""
        self.database.close()


def open_store(url: str) -> Store:
    """Return the store for a database URL, without connecting yet.

    Args:
        url: ``sqlite:///path/to/lictor.db`` (the parent directory is created) or
            ``postgresql://user:password@host:5432/dbname`` (driven by psycopg 3).
            Driver options ride in the query string, e.g. ``?timeout=30`` (SQLite busy
            timeout, seconds) or ``?options=-csearch_path%3Dlictor`` (PostgreSQL schema).

    Returns:
        The store; call :meth:`Store.migrate` before first use.

    Raises:
        ConfigError: The URL is malformed or names an unsupported database.
    """
    database = connect(url)
    return Store(
        audit=SqlAuditStore(database),
        agents=SqlAgents(database),
        credentials=SqlCredentials(database),
        database=database,
    )
