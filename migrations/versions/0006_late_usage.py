"""Late usage: each weekly measurement counts the events of earlier weeks that
arrived after those weeks were judged.

Revision ID: 0006
Revises: 0004 (0005 is added in parallel; the chain is set when both land)
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Weeks measured before this revision reported no late events: zero, not unknown.
    with op.batch_alter_table("weekly_measurements") as batch:
        batch.add_column(
            sa.Column("late_events", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("weekly_measurements") as batch:
        batch.drop_column("late_events")
