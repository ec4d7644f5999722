"""Risk state: per-agent baselines, shared session state, sliding-window counters.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Written out by hand rather than imported from ``lictor.store.schema``: a revision must
keep creating the same tables after the metadata has moved on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the baseline, session and window event tables."""
    op.create_table(
        "risk_baselines",
        sa.Column("agent_id", sa.Text(), primary_key=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "risk_sessions",
        sa.Column("session_id", sa.Text(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_risk_sessions_updated_at", "risk_sessions", ["updated_at"])
    op.create_table(
        "risk_window_events",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("series", sa.Text(), nullable=False),
        sa.Column("scope_key", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_risk_window_events_series", "risk_window_events", ["series", "scope_key", "at"]
    )


def downgrade() -> None:
    """Drop the risk tables."""
    op.drop_table("risk_window_events")
    op.drop_table("risk_sessions")
    op.drop_table("risk_baselines")
