"""The alert delivery log in SQL: one row per (alert, sink), updated as attempts go.

:class:`SqlDeliveries` implements :class:`lictor.alerts.deliveries.DeliveryLog`. The log
is what lets an operator see which alerts reached which sink, which ones were given up
on (dead letters), and resend them; it is written off the decision path only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, select, update

from lictor.errors import Conflict
from lictor.store.database import Database
from lictor.store.schema import alert_deliveries

__all__ = ["Delivery", "DeliveryStatus", "SqlDeliveries"]


class DeliveryStatus(StrEnum):
    """Where one alert stands with one sink."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert on its way to one sink; ``alert`` is the JSON the sink is sent."""

    id: str
    alert_id: str
    sink: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    alert: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """Return the record as JSON (what ``lictor alerts deliveries --json`` prints)."""
        return {
            "id": self.id,
            "alert_id": self.alert_id,
            "sink": self.sink,
            "status": self.status.value,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "alert": dict(self.alert),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


_COLUMNS = tuple(alert_deliveries.c)


class SqlDeliveries:
    """The delivery log on SQLite or PostgreSQL. Thread-safe."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, delivery: Delivery) -> None:
        """Store a new delivery.

        Raises:
            Conflict: A delivery with this id exists.
            StoreError: The database failed, or the store is closed.
        """
        statement = self._db.insert_or_ignore(alert_deliveries).values(
            id=delivery.id,
            alert_id=delivery.alert_id,
            sink=delivery.sink,
            status=delivery.status.value,
            attempts=delivery.attempts,
            last_error=delivery.last_error,
            alert=json.dumps(delivery.alert, sort_keys=True),
            created_at=delivery.created_at,
            updated_at=delivery.updated_at,
        )
        with self._db.writing() as connection:
            inserted = connection.execute(statement.returning(alert_deliveries.c.id)).first()
        if inserted is None:
            raise Conflict("delivery", delivery.id)

    def update(self, delivery: Delivery) -> None:
        """Record the outcome of an attempt: status, attempts, last error, time.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        with self._db.writing() as connection:
            connection.execute(
                update(alert_deliveries)
                .where(alert_deliveries.c.id == delivery.id)
                .values(
                    status=delivery.status.value,
                    attempts=delivery.attempts,
                    last_error=delivery.last_error,
                    updated_at=delivery.updated_at,
                )
            )

    def get(self, delivery_id: str) -> Delivery | None:
        """Return one delivery, or None.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        with self._db.reading() as connection:
            row = connection.execute(
                select(*_COLUMNS).where(alert_deliveries.c.id == delivery_id)
            ).first()
        return _delivery(row) if row is not None else None

    def list(self, status: DeliveryStatus | None = None, limit: int = 100) -> list[Delivery]:
        """Return up to ``limit`` deliveries, newest first, optionally of one status.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        statement = select(*_COLUMNS)
        if status is not None:
            statement = statement.where(alert_deliveries.c.status == status.value)
        statement = statement.order_by(
            alert_deliveries.c.created_at.desc(), alert_deliveries.c.id.desc()
        ).limit(limit)
        with self._db.reading() as connection:
            rows = connection.execute(statement).all()
        return [_delivery(row) for row in rows]


def _delivery(row: Row[*tuple[Any, ...]]) -> Delivery:
    return Delivery(
        id=row.id,
        alert_id=row.alert_id,
        sink=row.sink,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        alert=json.loads(row.alert),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
