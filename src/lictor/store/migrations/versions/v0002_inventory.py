"""Inventory and identity: agent history, shadow agents, credentials, token revocations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Written out by hand rather than imported from ``lictor.store.schema``: a revision must
keep creating the same tables after the metadata has moved on.
"""

from __future__ import annotations

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
