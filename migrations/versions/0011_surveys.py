"""NPS survey answers per customer, touchpoint and person (links and completion reviews).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "survey_answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("touchpoint", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("answered_at", INSTANT, nullable=False),
        sa.Column("commented_at", INSTANT, nullable=True),
        sa.Column("source", sa.String(24), nullable=False),
        sa.UniqueConstraint(
            "customer_id", "touchpoint", "email", name="uq_survey_answers_key"
        ),
    )
    op.create_index("ix_survey_answers_customer_id", "survey_answers", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_survey_answers_customer_id", table_name="survey_answers")
    op.drop_table("survey_answers")
