"""Pause and resume: the customer projection shows since when and why a customer is
paused (`paused` itself has been there since 0005).

Rows fill in with each customer's next timeline entry, or at once with
`liftoff projections rebuild`; until then a row reads "not paused", as it did.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)

revision: str = "0010"
# After main's 0009 (outcomes); re-chain it if another migration lands first.
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_projections") as table:
        table.add_column(sa.Column("paused_since", INSTANT, nullable=True))
        # models.limits.LINE_CHARS: a pause's reason is one line a CSM writes.
        table.add_column(sa.Column("pause_reason", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_projections") as table:
        table.drop_column("pause_reason")
        table.drop_column("paused_since")
