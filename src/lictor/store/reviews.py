"""Reviews and incident-response state in SQL: reviews, principal quarantines, emergency mode.

Every review state change is one conditional ``UPDATE ... RETURNING`` on the row's
current state, so replicas sharing the database agree on the first verdict and on who
used an approval: the loser's statement matches no row.
"""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update

from lictor.core.decisions import Reason
from lictor.errors import Conflict, StoreError
from lictor.service.response import EmergencyState, PrincipalQuarantine
from lictor.service.reviews import Review, ReviewStatus, review_json
from lictor.store.database import Database
from lictor.store.schema import emergency_mode, principal_quarantines, reviews

__all__ = ["SqlResponseState", "SqlReviews"]

_EMERGENCY_ROW = 1


class SqlReviews:
    """Reviews keyed by id, on SQLite or PostgreSQL. Thread-safe."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, review: Review) -> None:
        """Store a new review.

        Raises:
            Conflict: the id exists.
            StoreError: the database failed.
        """
        statement = self._db.insert_or_ignore(reviews).values(
            id=review.review_id,
            decision_id=review.decision_id,
            agent_id=review.agent_id,
            principal_id=review.principal_id,
            tool=review.tool,
            arguments_digest=review.arguments_digest,
            policy_version=review.policy_version,
            status=review.status.value,
            created_at=review.created_at,
            expires_at=review.expires_at,
            resolved_at=review.resolved_at,
            reviewer=review.reviewer,
            comment=review.comment,
            approved_until=review.approved_until,
            consumed_at=review.consumed_at,
            consumed_by=review.consumed_by,
            request=json.dumps(dict(review.request), sort_keys=True, allow_nan=False),
            reasons=json.dumps([r.to_json() for r in review.reasons], allow_nan=False),
        )
        with self._db.writing() as connection:
            inserted = connection.execute(statement.returning(reviews.c.id)).first()
        if inserted is None:
            raise Conflict("review", review.review_id)

    def get(self, review_id: str) -> Review | None:
        """Return the review, or None.

        Raises:
            StoreError: the database failed, or the row is invalid.
        """
        with self._db.reading() as connection:
            row = connection.execute(select(reviews).where(reviews.c.id == review_id)).first()
        return _review(row) if row is not None else None

    def list(
        self, *, status: ReviewStatus | None = None, agent_id: str | None = None, limit: int = 100
    ) -> list[Review]:
        """Return reviews, oldest first (ids are ULIDs, so id order is creation order)."""
        statement = select(reviews)
        if status is not None:
            statement = statement.where(reviews.c.status == status.value)
        if agent_id is not None:
            statement = statement.where(reviews.c.agent_id == agent_id)
        statement = statement.order_by(reviews.c.created_at, reviews.c.id).limit(limit)
        with self._db.reading() as connection:
            rows = connection.execute(statement).all()
        return [_review(row) for row in rows]

    def settle(
        self,
        review_id: str,
        status: ReviewStatus,
        *,
        at: datetime,
        reviewer: str | None = None,
        comment: str | None = None,
        approved_until: datetime | None = None,
    ) -> Review | None:
        """Move a pending review to ``status``; None if it was not pending (or absent)."""
        statement = (
            update(reviews)
            .where(reviews.c.id == review_id, reviews.c.status == ReviewStatus.PENDING.value)
            .values(
                status=status.value,
                resolved_at=at,
                reviewer=reviewer,
                comment=comment,
                approved_until=approved_until,
            )
            .returning(*reviews.c)
        )
        with self._db.writing() as connection:
            row = connection.execute(statement).first()
        return _review(row) if row is not None else None

    def approved_for(
        self,
        *,
        agent_id: str,
        principal_id: str | None,
        tool: str,
        arguments_digest: str,
        policy_version: str,
        now: datetime,
    ) -> builtins.list[Review]:
        """Return approved, unconsumed, still valid reviews with exactly this binding."""
        table = reviews.c
        principal = (
            table.principal_id.is_(None)
            if principal_id is None
            else table.principal_id == principal_id
        )
        statement = (
            select(reviews)
            .where(
                table.agent_id == agent_id,
                table.tool == tool,
                table.arguments_digest == arguments_digest,
                table.policy_version == policy_version,
                principal,
                table.status == ReviewStatus.APPROVED.value,
                table.consumed_at.is_(None),
                table.approved_until > now,
            )
            .order_by(table.created_at, table.id)
        )
        with self._db.reading() as connection:
            rows = connection.execute(statement).all()
        return [_review(row) for row in rows]

    def consume(self, review_id: str, *, decision_id: str, at: datetime) -> Review | None:
        """Use an approval: one conditional UPDATE, so only one caller anywhere wins."""
        table = reviews.c
        statement = (
            update(reviews)
            .where(
                table.id == review_id,
                table.status == ReviewStatus.APPROVED.value,
                table.consumed_at.is_(None),
            )
            .values(status=ReviewStatus.CONSUMED.value, consumed_at=at, consumed_by=decision_id)
            .returning(*reviews.c)
        )
        with self._db.writing() as connection:
            row = connection.execute(statement).first()
        return _review(row) if row is not None else None


class SqlResponseState:
    """Principal quarantines and the emergency flag, on SQLite or PostgreSQL."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def quarantine_principal(self, entry: PrincipalQuarantine) -> bool:
        """Add a principal to the quarantine list; False if it was there already."""
        statement = self._db.insert_or_ignore(principal_quarantines).values(
            principal_id=entry.principal_id,
            reason=entry.reason,
            actor=entry.actor,
            created_at=entry.created_at,
        )
        with self._db.writing() as connection:
            row = connection.execute(
                statement.returning(principal_quarantines.c.principal_id)
            ).first()
        return row is not None

    def release_principal(self, principal_id: str) -> bool:
        """Remove a principal from the list; return whether it was there."""
        with self._db.writing() as connection:
            row = connection.execute(
                delete(principal_quarantines)
                .where(principal_quarantines.c.principal_id == principal_id)
                .returning(principal_quarantines.c.principal_id)
            ).first()
        return row is not None

    def quarantined_principals(self) -> dict[str, PrincipalQuarantine]:
        """Return every quarantined principal by id."""
        with self._db.reading() as connection:
            rows = connection.execute(select(principal_quarantines)).all()
        return {
            row.principal_id: PrincipalQuarantine(
                principal_id=row.principal_id,
                reason=row.reason,
                actor=row.actor,
                created_at=row.created_at,
            )
            for row in rows
        }

    def set_emergency(self, state: EmergencyState | None) -> None:
        """Turn emergency mode on (with who and why) or off (None)."""
        with self._db.writing() as connection:
            connection.execute(delete(emergency_mode))
            if state is not None:
                connection.execute(
                    emergency_mode.insert().values(
                        id=_EMERGENCY_ROW, reason=state.reason, actor=state.actor, since=state.since
                    )
                )

    def emergency(self) -> EmergencyState | None:
        """Return the emergency state, or None when it is off."""
        with self._db.reading() as connection:
            row = connection.execute(select(emergency_mode)).first()
        if row is None:
            return None
        return EmergencyState(reason=row.reason, actor=row.actor, since=row.since)


def _review(row: Row[Any]) -> Review:
    try:
        reasons = json.loads(row.reasons)
        return Review(
            review_id=row.id,
            decision_id=row.decision_id,
            agent_id=row.agent_id,
            principal_id=row.principal_id,
            tool=row.tool,
            arguments_digest=row.arguments_digest,
            policy_version=row.policy_version,
            status=ReviewStatus(row.status),
            created_at=row.created_at,
            expires_at=row.expires_at,
            request=review_json(row.request),
            reasons=tuple(Reason.from_json(r) for r in reasons),
            resolved_at=row.resolved_at,
            reviewer=row.reviewer,
            comment=row.comment,
            approved_until=row.approved_until,
            consumed_at=row.consumed_at,
            consumed_by=row.consumed_by,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"stored review {row.id!r} is not valid: {exc}") from exc
