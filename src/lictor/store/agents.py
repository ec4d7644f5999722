"""The inventory in SQL: :class:`SqlAgents` implements ``AgentStore``.

A record is stored as the JSON of :meth:`Agent.to_json` and validated again with
:func:`parse_agent` when read, so a row edited by hand into something invalid is an
error, never a half-valid agent.

The record's ``version`` lives in that JSON. :meth:`SqlAgents.put_if` compares it and
writes in one transaction under a lock (SQLite's write lock, a PostgreSQL advisory
lock), so two replicas changing one agent cannot both win.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import delete, select

from lictor.core.agents import Agent, parse_agent
from lictor.errors import PolicyError, StoreError
from lictor.store.database import Database
from lictor.store.schema import agents

__all__ = ["AGENTS_LOCK", "SqlAgents"]

AGENTS_LOCK: Final = 0x6C6963746F7210
"""PostgreSQL advisory lock key serialising versioned inventory writes."""


class SqlAgents:
    """Agent records keyed by id, on SQLite or PostgreSQL. Thread-safe."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def get(self, agent_id: str) -> Agent | None:
        """Return the agent record, or None if it is not registered.

        Raises:
            StoreError: The database failed, the store is closed, or the row is invalid.
        """
        with self._db.reading() as connection:
            text = connection.execute(
                select(agents.c.record).where(agents.c.id == agent_id)
            ).scalar()
        return _agent(agent_id, text) if text is not None else None

    def list(self) -> list[Agent]:
        """Return every record, sorted by id (code point order, as the memory store).

        Sorted here, not by ``ORDER BY``: PostgreSQL would sort by the database's
        collation, which differs between installations.

        Raises:
            StoreError: The database failed, the store is closed, or a row is invalid.
        """
        with self._db.reading() as connection:
            rows = connection.execute(select(agents.c.id, agents.c.record)).all()
        return sorted((_agent(row.id, row.record) for row in rows), key=lambda a: a.id)

    def put(self, agent: Agent) -> None:
        """Insert or replace a record.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        with self._db.writing() as connection:
            connection.execute(self._db.upsert(agents, _row(agent)))

    def put_if(self, agent: Agent, expected_version: int | None) -> bool:
        """Write ``agent`` only if the stored version is ``expected_version`` (None: absent).

        Raises:
            StoreError: The database failed, the store is closed, or the row is invalid.
        """
        with self._db.writing(lock=AGENTS_LOCK) as connection:
            text = connection.execute(
                select(agents.c.record).where(agents.c.id == agent.id)
            ).scalar()
            current = _agent(agent.id, text).version if text is not None else None
            if current != expected_version:
                return False
            connection.execute(self._db.upsert(agents, _row(agent)))
        return True

    def delete(self, agent_id: str) -> bool:
        """Remove a record; return whether it existed.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        with self._db.writing() as connection:
            result = connection.execute(delete(agents).where(agents.c.id == agent_id))
        return result.rowcount > 0


def _row(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "record": json.dumps(agent.to_json(), sort_keys=True, allow_nan=False),
        # Bookkeeping for operators; a record written without one gets the wall clock.
        "updated_at": agent.updated_at if agent.updated_at is not None else datetime.now(UTC),
    }


def _agent(agent_id: str, text: str) -> Agent:
    try:
        return parse_agent(json.loads(text), source=f"agents row {agent_id!r}")
    except (ValueError, PolicyError) as exc:
        raise StoreError(f"stored agent {agent_id!r} is not a valid record: {exc}") from exc
