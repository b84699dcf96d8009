"""Suspend/resume: a datastore pair remembers a suspended session.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

``resume_mode`` is the alert code of a session that was suspended or cut off
while items were being exchanged, ``resume_anchor`` the client's ``Next``
anchor of that session, which names it; both are empty when there is nothing
to resume.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    """Add the two resume columns (empty for existing pairs: nothing to resume)."""
    # Plain ALTER TABLE, not a batch (copy-and-move) operation: dropping the
    # old datastore_pairs table would cascade to every item mapping.
    op.add_column("datastore_pairs", sa.Column("resume_mode", sa.Integer(), nullable=True))
    op.add_column("datastore_pairs", sa.Column("resume_anchor", sa.String(), nullable=True))


def downgrade() -> None:
    """Drop the resume columns (ALTER TABLE DROP COLUMN: SQLite 3.35 or newer)."""
    op.drop_column("datastore_pairs", "resume_anchor")
    op.drop_column("datastore_pairs", "resume_mode")
