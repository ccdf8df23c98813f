"""Unmatched usage keeps its event key, so a call resent by its client is kept once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot add a constraint to an existing table in place.
    with op.batch_alter_table("unmatched_usage") as table:
        table.add_column(sa.Column("event_key", sa.String(200), nullable=True))
        table.create_unique_constraint("uq_unmatched_usage_event_key", ["event_key"])


def downgrade() -> None:
    with op.batch_alter_table("unmatched_usage") as table:
        table.drop_constraint("uq_unmatched_usage_event_key", type_="unique")
        table.drop_column("event_key")
