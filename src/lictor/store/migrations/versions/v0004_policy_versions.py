"""Policy lifecycle: stored policy bundle versions and the active version pointer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Written out by hand rather than imported from ``lictor.store.schema``: a revision must
keep creating the same tables after the metadata has moved on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``policy_versions`` and ``policy_active``."""
    op.create_table(
        "policy_versions",
        sa.Column("digest", sa.Text(), primary_key=True),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule_count", sa.Integer(), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
    )
    op.create_index("ix_policy_versions_loaded_at", "policy_versions", ["loaded_at"])
    op.create_table(
        "policy_active",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_by", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("policy_active")
    op.drop_table("policy_versions")
