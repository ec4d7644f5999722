"""Stored policy versions and the active version pointer, in SQL.

:class:`SqlPolicyVersions` implements :class:`lictor.service.lifecycle.PolicyVersionStore`.
A version row is written once and never changed (its key is the content digest, so the
same bundle loaded twice is one row). The pointer is one row that every replica polls.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select

from lictor.service.lifecycle import ActivePointer, PolicyVersion
from lictor.store.database import Database
from lictor.store.schema import policy_active, policy_versions

__all__ = ["SqlPolicyVersions"]

_ACTIVE_ID = 1


class SqlPolicyVersions:
    """Policy versions on SQLite or PostgreSQL; thread-safe, shared by all replicas."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, version: PolicyVersion) -> bool:
        """Store a version unless its digest is stored already; return whether it was new.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        row = {
            "digest": version.digest,
            "author": version.author,
            "message": version.message,
            "loaded_at": version.loaded_at,
            "rule_count": version.rule_count,
            "files": json.dumps(dict(version.files), sort_keys=True, ensure_ascii=False),
        }
        with self._db.writing() as connection:
            result = connection.execute(self._db.insert_or_ignore(policy_versions).values(row))
            return bool(result.rowcount)

    def get(self, digest: str) -> PolicyVersion | None:
        """Return the version with exactly this digest, or None.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        statement = select(policy_versions).where(policy_versions.c.digest == digest)
        with self._db.reading() as connection:
            row = connection.execute(statement).first()
        return _version(row) if row is not None else None

    def history(self) -> list[PolicyVersion]:
        """Return every version, oldest first.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        table = policy_versions.c
        statement = select(policy_versions).order_by(table.loaded_at, table.digest)
        with self._db.reading() as connection:
            rows = connection.execute(statement).all()
        return [_version(row) for row in rows]

    def activate(self, digest: str, at: datetime, by: str) -> None:
        """Point every replica at ``digest`` (which must be stored).

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        values = {"id": _ACTIVE_ID, "digest": digest, "activated_at": at, "activated_by": by}
        with self._db.writing() as connection:
            connection.execute(self._db.upsert(policy_active, values))

    def active(self) -> ActivePointer | None:
        """Return the active pointer, or None before any version was activated.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        statement = select(policy_active).where(policy_active.c.id == _ACTIVE_ID)
        with self._db.reading() as connection:
            row = connection.execute(statement).first()
        if row is None:
            return None
        return ActivePointer(row.digest, row.activated_at, row.activated_by)


def _version(row: Row[Any]) -> PolicyVersion:
    files = json.loads(row.files)
    return PolicyVersion(
        digest=row.digest,
        author=row.author,
        message=row.message,
        loaded_at=row.loaded_at,
        rule_count=row.rule_count,
        files=files if isinstance(files, dict) else {},
    )
