"""Which workflow task attempt wrote a timeline entry or opened a task.

A local activity writes inside its workflow task. When that task dies (its worker
killed) after the write, the retried task may give the same timeline seq and task id
to other content (a CSM update arrived in between); the later attempt's write now
replaces the dead one's (activities/store.py): ordered by the attempt's run and
history length, then, for the attempts after a failed one (the server numbers them
alike), by the instant each began. Rows written before stay NULL: the earliest.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("timeline_entries", "tasks")
# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("attempt_order", sa.BigInteger, nullable=True))
        op.add_column(table, sa.Column("attempt_at", INSTANT, nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("attempt_at")
            batch.drop_column("attempt_order")
