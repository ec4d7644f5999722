"""Initial schema: audit records and checkpoints, agents, credentials.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Written out by hand rather than imported from ``lictor.store.schema``: a revision must
keep creating the same tables after the metadata has moved on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the four tables and the audit query indexes."""
    op.create_table(
        "audit_records",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text()),
        sa.Column("decision_id", sa.Text()),
        sa.Column("agent_id", sa.Text()),
        sa.Column("principal_id", sa.Text()),
        sa.Column("tool", sa.Text()),
        sa.Column("outcome", sa.Text()),
        sa.Column("session_id", sa.Text()),
        sa.Column("at", sa.String(32)),
    )
    for column in (
        "kind",
        "decision_id",
        "agent_id",
        "principal_id",
        "tool",
        "outcome",
        "session_id",
    ):
        op.create_index(f"ix_audit_records_{column}", "audit_records", [column, "seq"])
    op.create_index("ix_audit_records_at", "audit_records", ["at"])
    decision_only = sa.text("kind = 'decision'")
    op.create_index(
        "ux_audit_records_decision",
        "audit_records",
        ["decision_id"],
        unique=True,
        sqlite_where=decision_only,
        postgresql_where=decision_only,
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "credentials",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("description", sa.Text(), nullable=False),
    )
    op.create_index("ix_credentials_subject", "credentials", ["subject"])


def downgrade() -> None:
    """Drop everything this revision created."""
    op.drop_table("credentials")
    op.drop_table("agents")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_records")
