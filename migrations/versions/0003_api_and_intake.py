"""HTTP API tokens, and the usage intake's user-to-customer map and unmatched events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("csm", sa.String(320), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("revoked_at", INSTANT, nullable=True),
        sa.Column("last_used_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "usage_users",
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("traits", sa.JSON(), nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_usage_users"),
    )
    op.create_index("ix_usage_users_customer_id", "usage_users", ["customer_id"])
    op.create_table(
        "unmatched_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=True),
        sa.Column("group_id", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_unmatched_usage"),
    )
    op.create_index("ix_unmatched_usage_received_at", "unmatched_usage", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_unmatched_usage_received_at", table_name="unmatched_usage")
    op.drop_table("unmatched_usage")
    op.drop_index("ix_usage_users_customer_id", table_name="usage_users")
    op.drop_table("usage_users")
    op.drop_table("api_tokens")
