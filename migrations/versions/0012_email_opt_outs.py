"""Opt-outs per contact and email category (one-click unsubscribe, preference page,
SendGrid group events).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_opt_outs",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("category", sa.String(16), primary_key=True),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("changed_at", INSTANT, nullable=False),
        sa.Column("source", sa.String(24), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("email_opt_outs")
