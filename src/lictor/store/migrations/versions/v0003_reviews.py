"""Reviews and incident response: pending reviews, principal quarantines, emergency mode.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Written out by hand rather than imported from ``lictor.store.schema``: a revision must
keep creating the same tables after the metadata has moved on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the reviews, principal quarantine and emergency mode tables."""
    op.create_table(
        "reviews",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("decision_id", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Text(), nullable=False),
        sa.Column("principal_id", sa.Text()),
        sa.Column("tool", sa.Text(), nullable=False),
        sa.Column("arguments_digest", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("reviewer", sa.Text()),
        sa.Column("comment", sa.Text()),
        sa.Column("approved_until", sa.DateTime(timezone=True)),
        sa.Column("consumed_at", sa.DateTime(timezone=True)),
        sa.Column("consumed_by", sa.Text()),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
    )
    op.create_index("ix_reviews_status", "reviews", ["status", "expires_at"])
    op.create_index("ix_reviews_binding", "reviews", ["agent_id", "tool", "arguments_digest"])
    op.create_table(
        "principal_quarantines",
        sa.Column("principal_id", sa.Text(), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "emergency_mode",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop everything this revision created."""
    op.drop_table("emergency_mode")
    op.drop_table("principal_quarantines")
    op.drop_table("reviews")
