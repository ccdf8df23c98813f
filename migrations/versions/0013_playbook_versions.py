"""Playbook versions as first used, whole, for listing, diffing and migrating.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "playbook_versions",
        sa.Column("content_hash", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("first_used_at", INSTANT, nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
    )
    op.create_index("ix_playbook_versions_version", "playbook_versions", ["version"])


def downgrade() -> None:
    op.drop_index("ix_playbook_versions_version", table_name="playbook_versions")
    op.drop_table("playbook_versions")
