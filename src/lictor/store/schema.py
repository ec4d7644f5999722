"""The tables, as SQLAlchemy Core metadata: what the stores query and the migrations build.

The migrations in ``migrations/versions`` create exactly these tables; a contract test
compares a migrated database with this metadata, so the two cannot drift apart.

``audit_records.payload`` is the record: the canonical JSON that the chain hash covers.
The other columns of that table (kind, agent_id, ..., at) are an index extracted from the
payload for queries. Verification recomputes every hash from ``payload`` alone and never
reads them, and query results are re-checked against the payload, so editing an
extracted column can hide a record from a query but cannot forge one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)

__all__ = [
    "UtcDateTime",
    "agents",
    "alert_deliveries",
    "audit_checkpoints",
    "audit_records",
    "credentials",
    "emergency_mode",
    "metadata",
    "policy_active",
    "policy_versions",
    "principal_quarantines",
    "reviews",
    "risk_baselines",
    "risk_sessions",
    "risk_window_events",
]

# On SQLite, a column declared exactly INTEGER PRIMARY KEY is the rowid: the table is
# stored in seq order, so range scans by seq read consecutive pages.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")
_HASH = String(64)
_DECISION_ONLY = text("kind = 'decision'")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both dialects.

    PostgreSQL stores ``timestamptz``; SQLite has no time zone support, so we store naive
    UTC text there and attach UTC on the way out. Naive datetimes are refused: Lictor
    timestamps are aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC (naive UTC for SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Lictor timestamps are aware UTC")
        utc = value.astimezone(UTC)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=False),
    Column("record_hash", _HASH, nullable=False),
    Column("prev_hash", _HASH, nullable=False),
    Column("payload", Text, nullable=False),
    # Extracted from the payload for queries; NULL when the payload field is missing or
    # not a string. Never used to verify anything.
    Column("kind", Text),
    Column("decision_id", Text),
    Column("agent_id", Text),
    Column("principal_id", Text),
    Column("tool", Text),
    Column("outcome", Text),
    Column("session_id", Text),
    # RFC 3339 UTC with microseconds and a 4-digit year, so text order is time order.
    Column("at", String(32)),
    # (column, seq): a filtered page is an index range scan already in seq order.
    Index("ix_audit_records_kind", "kind", "seq"),
    Index("ix_audit_records_decision_id", "decision_id", "seq"),
    Index("ix_audit_records_agent_id", "agent_id", "seq"),
    Index("ix_audit_records_principal_id", "principal_id", "seq"),
    Index("ix_audit_records_tool", "tool", "seq"),
    Index("ix_audit_records_outcome", "outcome", "seq"),
    Index("ix_audit_records_session_id", "session_id", "seq"),
    Index("ix_audit_records_at", "at"),
    # One decision record per decision id; result records share the id, so the index
    # is partial.
    Index(
        "ux_audit_records_decision",
        "decision_id",
        unique=True,
        sqlite_where=_DECISION_ONLY,
        postgresql_where=_DECISION_ONLY,
    ),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", _HASH, nullable=False),
    Column("head_hash", _HASH, nullable=False),
    Column("issued_at", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("signature", Text, nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("id", Text, primary_key=True),
    Column("record", Text, nullable=False),  # JSON: Agent.to_json()
    Column("updated_at", UtcDateTime, nullable=False),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("subject", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Column("description", Text, nullable=False),
    # Added by revision 0002: the end of a rotation overlap, and batched last use.
    Column("expires_at", UtcDateTime),
    Column("last_used_at", UtcDateTime),
    Index("ix_credentials_subject", "subject"),
)

# --- reviews and incident response (migration 0003) ---------------------------------------

reviews = Table(
    "reviews",
    metadata,
    Column("id", Text, primary_key=True),
    Column("decision_id", Text, nullable=False),
    Column("agent_id", Text, nullable=False),
    Column("principal_id", Text),
    Column("tool", Text, nullable=False),
    Column("arguments_digest", Text, nullable=False),
    Column("policy_version", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime),
    Column("reviewer", Text),
    Column("comment", Text),
    Column("approved_until", UtcDateTime),
    Column("consumed_at", UtcDateTime),
    Column("consumed_by", Text),
    Column("request", Text, nullable=False),  # JSON: the request, as the audit entry has it
    Column("reasons", Text, nullable=False),  # JSON: the reasons of the review decision
    Index("ix_reviews_status", "status", "expires_at"),
    Index("ix_reviews_binding", "agent_id", "tool", "arguments_digest"),
)

principal_quarantines = Table(
    "principal_quarantines",
    metadata,
    Column("principal_id", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# At most one row (id 1): present means every agent request is denied.
emergency_mode = Table(
    "emergency_mode",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("reason", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("since", UtcDateTime, nullable=False),
)

# One row per (alert, sink): the delivery log behind `lictor alerts deliveries`.
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Text, primary_key=True),
    Column("alert_id", Text, nullable=False),
    Column("sink", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("alert", Text, nullable=False),  # JSON: the alert as sinks receive it
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_alert_deliveries_status", "status", "created_at"),
)

# Every policy bundle ever loaded, by content digest, with its files so any version can
# be re-materialised (replicas load the active one from here).
policy_versions = Table(
    "policy_versions",
    metadata,
    Column("digest", Text, primary_key=True),  # sha256:<hex>, the bundle's version
    Column("author", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("loaded_at", UtcDateTime, nullable=False),
    Column("rule_count", Integer, nullable=False),
    Column("files", Text, nullable=False),  # JSON: {relative path: YAML text}
    Index("ix_policy_versions_loaded_at", "loaded_at"),
)

# At most one row (id 1): the version every replica should run.
policy_active = Table(
    "policy_active",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("digest", Text, nullable=False),
    Column("activated_at", UtcDateTime, nullable=False),
    Column("activated_by", Text, nullable=False),
)

# --- risk state (migration 0005, docs/risk.md) ----------------------------------------------

# One row per agent: Baseline.to_json(), bounded by BaselineConfig's capacities.
risk_baselines = Table(
    "risk_baselines",
    metadata,
    Column("agent_id", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# One row per session: SessionState.to_json(); ``version`` lets replicas skip re-reading it.
risk_sessions = Table(
    "risk_sessions",
    metadata,
    Column("session_id", Text, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_risk_sessions_updated_at", "updated_at"),
)

# One row per allowed call per window series it adds to; pruned past the longest window.
risk_window_events = Table(
    "risk_window_events",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("series", Text, nullable=False),
    Column("scope_key", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("amount", Float, nullable=False),
    Index("ix_risk_window_events_series", "series", "scope_key", "at"),
)
