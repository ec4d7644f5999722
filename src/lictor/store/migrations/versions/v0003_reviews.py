"""Reviews, alerts and incident response: pending reviews, alert deliveries, emergency mode.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Written out by hand rather than imported from ``lictor.store.schema``: a revision must
keep creating the same tables after the metadata has moved on.
"""

from __future__ import annotations

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
