"""Email events from the provider's webhook: the events, delivery fate, suppression, engagement.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "email_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sg_event_id", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("ledger_key", sa.String(200), nullable=True),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("occurred_at", INSTANT, nullable=False),
        sa.Column("machine_open", sa.Boolean(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_email_events"),
        sa.UniqueConstraint("sg_event_id", name="uq_email_events_sg_event_id"),
    )
    op.create_index(
        "ix_email_events_customer_occurred", "email_events", ["customer_id", "occurred_at"]
    )

    # Batch mode: SQLite cannot add columns with every option in place; PostgreSQL
    # runs the same statements as plain ALTER TABLE.
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("suppressed_reason", sa.String(32), nullable=True))
        batch.add_column(sa.Column("suppressed_at", INSTANT, nullable=True))

    with op.batch_alter_table("email_ledger") as batch:
        batch.add_column(sa.Column("last_event", sa.String(32), nullable=True))
        batch.add_column(sa.Column("last_event_at", INSTANT, nullable=True))

    # Weeks measured before this revision had no engagement data: zero, not unknown.
    with op.batch_alter_table("weekly_measurements") as batch:
        batch.add_column(
            sa.Column("email_opens", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(
            sa.Column("email_clicks", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("weekly_measurements") as batch:
        batch.drop_column("email_clicks")
        batch.drop_column("email_opens")
    with op.batch_alter_table("email_ledger") as batch:
        batch.drop_column("last_event_at")
        batch.drop_column("last_event")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("suppressed_at")
        batch.drop_column("suppressed_reason")
    op.drop_index("ix_email_events_customer_occurred", table_name="email_events")
    op.drop_table("email_events")
