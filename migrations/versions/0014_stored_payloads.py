"""Temporal payloads kept in the database by their SHA-256 instead of in histories.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_payloads",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("stored_at", INSTANT, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stored_payloads")
