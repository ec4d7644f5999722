"""Credential records in SQL: :class:`SqlCredentials` implements ``CredentialStore``.

Only the SHA-256 of a secret is stored. Revocation is one conditional ``UPDATE``, so
two nodes revoking at once agree on the first revocation time. ``last_used_at`` is
written in batches (:meth:`SqlCredentials.record_use`), never once per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, or_, select, update

from lictor.errors import Conflict, NotFound
from lictor.service.ports import Credential, CredentialKind, Role
from lictor.store.database import Database
from lictor.store.notify import CREDENTIALS_CHANNEL, notify
from lictor.store.schema import credentials

__all__ = ["SqlCredentials"]

_COLUMNS = (
    credentials.c.id,
    credentials.c.kind,
    credentials.c.subject,
    credentials.c.role,
    credentials.c.created_at,
    credentials.c.revoked_at,
    credentials.c.description,
    credentials.c.secret_hash,
    credentials.c.expires_at,
    credentials.c.last_used_at,
)


class SqlCredentials:
    """Credential records keyed by id, on SQLite or PostgreSQL. Thread-safe."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, credential: Credential, secret_hash: str) -> None:
        """Store a new credential.

        Raises:
            Conflict: A credential with this id exists.
            StoreError: The database failed, or the store is closed.
        """
        statement = self._db.insert_or_ignore(credentials).values(
            id=credential.id,
            kind=credential.kind.value,
            subject=credential.subject,
            role=credential.role.value,
            secret_hash=secret_hash,
            created_at=credential.created_at,
            revoked_at=credential.revoked_at,
            description=credential.description,
            expires_at=credential.expires_at,
            last_used_at=credential.last_used_at,
        )
        # RETURNING rather than rowcount, which SQLAlchemy leaves at -1 for inserts on
        # psycopg.
        with self._db.writing() as connection:
            inserted = connection.execute(statement.returning(credentials.c.id)).first()
        if inserted is None:
            raise Conflict("credential", credential.id)

    def get(self, credential_id: str) -> tuple[Credential, str] | None:
        """Return the record and its secret hash, or None.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        with self._db.reading() as connection:
            row = connection.execute(
                select(*_COLUMNS).where(credentials.c.id == credential_id)
            ).first()
        return (_credential(row), row.secret_hash) if row is not None else None

    def list(self, subject: str | None = None) -> list[Credential]:
        """Return credentials, optionally of one subject, oldest first (then by id).

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        statement = select(*_COLUMNS)
        if subject is not None:
            statement = statement.where(credentials.c.subject == subject)
        with self._db.reading() as connection:
            rows = connection.execute(statement).all()
        # Sorted here for the same order as the memory store on every database collation.
        return sorted((_credential(row) for row in rows), key=lambda c: (c.created_at, c.id))

    def revoke(self, credential_id: str, at: datetime) -> Credential:
        """Mark revoked at ``at``; revoking again keeps the first time.

        Raises:
            NotFound: No credential has this id.
            StoreError: The database failed, or the store is closed.
        """
        table = credentials.c
        with self._db.writing() as connection:
            connection.execute(
                update(credentials)
                .where(table.id == credential_id, table.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            row = connection.execute(select(*_COLUMNS).where(table.id == credential_id)).first()
            if row is not None:
                notify(connection, CREDENTIALS_CHANNEL, _credential(row).subject)
        if row is None:
            raise NotFound("credential", credential_id)
        return _credential(row)

    def expire(self, credential_id: str, at: datetime) -> Credential:
        """Make the credential stop working at ``at``; an earlier expiry is kept.

        Raises:
            NotFound: No credential has this id.
            StoreError: The database failed, or the store is closed.
        """
        table = credentials.c
        with self._db.writing() as connection:
            connection.execute(
                update(credentials)
                .where(
                    table.id == credential_id,
                    or_(table.expires_at.is_(None), table.expires_at > at),
                )
                .values(expires_at=at)
            )
            row = connection.execute(select(*_COLUMNS).where(table.id == credential_id)).first()
            if row is not None:
                notify(connection, CREDENTIALS_CHANNEL, _credential(row).subject)
        if row is None:
            raise NotFound("credential", credential_id)
        return _credential(row)

    def record_use(self, used: Mapping[str, datetime]) -> None:
        """Set ``last_used_at`` of each id in one transaction; a later stored time is kept.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        if not used:
            return
        table = credentials.c
        with self._db.writing() as connection:
            for credential_id, at in sorted(used.items()):
                connection.execute(
                    update(credentials)
                    .where(
                        table.id == credential_id,
                        or_(table.last_used_at.is_(None), table.last_used_at < at),
                    )
                    .values(last_used_at=at)
                )


def _credential(row: Row[*tuple[Any, ...]]) -> Credential:
    return Credential(
        id=row.id,
        kind=CredentialKind(row.kind),
        subject=row.subject,
        role=Role(row.role),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        description=row.description,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
    )
