"""Scheduled sends: the email ledger keeps each attempt's SendGrid batch and send time,
and the batches withdrawn after a crash are kept until their send time has passed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("email_ledger") as table:
        table.add_column(sa.Column("batch_id", sa.String(100), nullable=True))
        table.add_column(sa.Column("send_at", INSTANT, nullable=True))
    op.create_table(
        "withdrawn_batches",
        sa.Column("batch_id", sa.String(100), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("ledger_key", sa.String(200), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("send_at", INSTANT, nullable=False),
        sa.Column("withdrawn_at", INSTANT, nullable=False),
        sa.Column("forgotten_at", INSTANT, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("withdrawn_batches")
    with op.batch_alter_table("email_ledger") as table:
        table.drop_column("send_at")
        table.drop_column("batch_id")
