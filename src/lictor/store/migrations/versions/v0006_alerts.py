"""Alerts: the delivery log of alert sinks (pending, delivered, dead-lettered).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

Written out by hand rather than imported from ``lictor.store.schema``: a revision must
keep creating the same tables after the metadata has moved on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the delivery log and its status index."""
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("sink", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("alert", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_alert_deliveries_status", "alert_deliveries", ["status", "created_at"])


def downgrade() -> None:
    """Drop the delivery log."""
    op.drop_table("alert_deliveries")
