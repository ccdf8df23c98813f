"""Outcomes from outside: renewal and churn events, and health scores, per customer.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outcome_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("occurred_on", sa.Date, nullable=False),
        sa.Column("arr", sa.Float, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("recorded_at", INSTANT, nullable=False),
        sa.UniqueConstraint("customer_id", "kind", "occurred_on", name="uq_outcome_events_key"),
    )
    op.create_index("ix_outcome_events_customer_id", "outcome_events", ["customer_id"])
    op.create_table(
        "health_scores",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("scored_on", sa.Date, primary_key=True),
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("recorded_at", INSTANT, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("health_scores")
    op.drop_index("ix_outcome_events_customer_id", table_name="outcome_events")
    op.drop_table("outcome_events")
