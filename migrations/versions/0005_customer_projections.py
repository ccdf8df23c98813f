"""The customer projection the lists and the cohort read, and the snapshot each timeline
entry carries so it can be rebuilt.

Existing customers are copied in from their rows (stage, CSM, segment, open tasks);
their flags and next due come with their next timeline entry, or at once with
`liftoff projections rebuild`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out instead of imported from models.tables, as in 0001.
INSTANT = sa.DateTime(timezone=True)

# The backfill: what a customer's row says; the rest waits for the next entry.
BACKFILL = """
INSERT INTO customer_projections (
    customer_id, name, csm, cs_leader, stage, stage_since, furthest, stalled,
    setup_stuck, paused, open_tasks, escalations, playbook_name, playbook_version,
    purposes, seats_contracted, seats_band, trial_used, locale, time_zone, outcome,
    started_at, ended_at, last_seq
)
SELECT
    c.customer_id, c.name, c.csm, c.cs_leader, c.stage, c.stage_since,
    CASE c.stage
        WHEN 'kickoff' THEN 1 WHEN 'training' THEN 2 WHEN 'adoption' THEN 3
        WHEN 'completion_review' THEN 4 WHEN 'onboarded' THEN 5 ELSE 0
    END,
    false, false, false,
    (SELECT count(*) FROM tasks t WHERE t.customer_id = c.customer_id AND t.state = 'open'),
    0, c.playbook_name, c.playbook_version, c.purposes, c.seats_contracted,
    CASE
        WHEN c.seats_contracted <= 10 THEN '1-10'
        WHEN c.seats_contracted <= 50 THEN '11-50'
        WHEN c.seats_contracted <= 200 THEN '51-200'
        WHEN c.seats_contracted <= 1000 THEN '201-1000'
        ELSE '1001+'
    END,
    c.trial_used, c.locale, c.time_zone,
    CASE WHEN c.stage IN ('onboarded', 'failed', 'cancelled') THEN c.stage END,
    c.created_at,
    CASE WHEN c.stage IN ('onboarded', 'failed', 'cancelled') THEN c.stage_since END,
    0
FROM customers c
"""


def upgrade() -> None:
    with op.batch_alter_table("timeline_entries") as table:
        table.add_column(sa.Column("snapshot", sa.JSON(), nullable=True))
    op.create_table(
        "customer_projections",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("csm", sa.String(320), nullable=False),
        sa.Column("cs_leader", sa.String(320), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("stage_since", INSTANT, nullable=True),
        sa.Column("furthest", sa.Integer(), nullable=False),
        sa.Column("stalled", sa.Boolean(), nullable=False),
        sa.Column("setup_stuck", sa.Boolean(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("next_due_kind", sa.String(32), nullable=True),
        sa.Column("next_due_at", INSTANT, nullable=True),
        sa.Column("open_tasks", sa.Integer(), nullable=False),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("playbook_name", sa.String(200), nullable=False),
        sa.Column("playbook_version", sa.String(64), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("seats_contracted", sa.Integer(), nullable=False),
        sa.Column("seats_band", sa.String(16), nullable=False),
        sa.Column("trial_used", sa.Boolean(), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("started_at", INSTANT, nullable=True),
        sa.Column("ended_at", INSTANT, nullable=True),
        sa.Column("kickoff_seconds", sa.Float(), nullable=True),
        sa.Column("training_seconds", sa.Float(), nullable=True),
        sa.Column("adoption_seconds", sa.Float(), nullable=True),
        sa.Column("completion_review_seconds", sa.Float(), nullable=True),
        sa.Column("onboard_seconds", sa.Float(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customer_projections"),
    )
    op.create_index("ix_customer_projections_csm_stage", "customer_projections", ["csm", "stage"])
    op.create_index(
        "ix_customer_projections_stage_since", "customer_projections", ["stage", "stage_since"]
    )
    op.create_index(
        "ix_customer_projections_outcome_ended", "customer_projections", ["outcome", "ended_at"]
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_index("ix_customer_projections_outcome_ended", table_name="customer_projections")
    op.drop_index("ix_customer_projections_stage_since", table_name="customer_projections")
    op.drop_index("ix_customer_projections_csm_stage", table_name="customer_projections")
    op.drop_table("customer_projections")
    with op.batch_alter_table("timeline_entries") as table:
        table.drop_column("snapshot")
