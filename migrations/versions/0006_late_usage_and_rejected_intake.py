"""Late usage: each weekly measurement counts the events of earlier weeks that
arrived after those weeks were judged. Rejected intake is kept for operators.
A group call's traits are kept with the user it ties.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Weeks measured before this revision reported no late events: zero, not unknown.
    with op.batch_alter_table("weekly_measurements") as batch:
        batch.add_column(
            sa.Column("late_events", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("usage_users") as batch:
        batch.add_column(
            sa.Column("group_traits", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    # Identify calls waiting for the call that ties their user are looked up by user.
    op.create_index("ix_unmatched_usage_user_id", "unmatched_usage", ["user_id"])
    op.create_table(
        "rejected_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("first_index", sa.Integer(), nullable=True),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejected_usage"),
    )
    op.create_index("ix_rejected_usage_received_at", "rejected_usage", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_rejected_usage_received_at", table_name="rejected_usage")
    op.drop_table("rejected_usage")
    op.drop_index("ix_unmatched_usage_user_id", table_name="unmatched_usage")
    with op.batch_alter_table("usage_users") as batch:
        batch.drop_column("group_traits")
    with op.batch_alter_table("weekly_measurements") as batch:
        batch.drop_column("late_events")
