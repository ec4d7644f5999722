"""Inventory and identity: agent history, shadow agents, credentials, token revocations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Written out by hand rather than imported from ``lictor.store.schema``: a revision must
keep creating the same tables after the metadata has moved on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Credentials get an expiry (rotation overlap) and a last-used time.

    Agent history, shadow sightings and token cut-offs live in the agent record's JSON,
    so the agents table is unchanged.
    """
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    """Drop the two credential columns."""
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
