"""Initial schema: customers, contacts, usage, measurements, timeline, tasks, email ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out instead of imported from models.tables, so this revision keeps
# describing the schema it created however the models change later.
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("csm", sa.String(320), nullable=False),
        sa.Column("cs_leader", sa.String(320), nullable=False),
        sa.Column("seats_contracted", sa.Integer(), nullable=False),
        sa.Column("quota_contracted", sa.Float(), nullable=True),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("trial_used", sa.Boolean(), nullable=False),
        sa.Column("already_using", sa.Boolean(), nullable=False),
        sa.Column("handoff_notes", sa.Text(), nullable=False),
        sa.Column("playbook_name", sa.String(200), nullable=False),
        sa.Column("playbook_version", sa.String(64), nullable=False),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("stage_since", INSTANT, nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customers"),
    )
    op.create_index("ix_customers_stage", "customers", ["stage"])

    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("unsubscribed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
        sa.UniqueConstraint("customer_id", "email", name="uq_contacts_customer_email"),
    )

    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("event", sa.String(200), nullable=False),
        sa.Column("occurred_at", INSTANT, nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False, server_default=sa.text("1")),
        sa.Column("event_key", sa.String(200), nullable=True),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_events"),
        sa.UniqueConstraint("event_key", name="uq_usage_events_event_key"),
    )
    op.create_index(
        "ix_usage_events_customer_occurred", "usage_events", ["customer_id", "occurred_at"]
    )
    op.create_index("ix_usage_events_occurred_at", "usage_events", ["occurred_at"])

    op.create_table(
        "weekly_measurements",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("week_index", sa.Integer(), nullable=False),
        sa.Column("window_start", INSTANT, nullable=False),
        sa.Column("window_end", INSTANT, nullable=False),
        sa.Column("active_users", sa.Integer(), nullable=False),
        sa.Column("active_seat_ratio", sa.Float(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("key_actions", sa.JSON(), nullable=False),
        sa.Column("quota_consumption", sa.Float(), nullable=True),
        sa.Column("data_ever_arrived", sa.Boolean(), nullable=False),
        sa.Column("measured_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "week_index", name="pk_weekly_measurements"),
    )

    op.create_table(
        "timeline_entries",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "seq", name="pk_timeline_entries"),
    )

    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(100), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("assignee", sa.String(320), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", INSTANT, nullable=False),
        sa.Column("due_at", INSTANT, nullable=True),
        sa.Column("closed_at", INSTANT, nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("task_id", name="pk_tasks"),
    )
    op.create_index("ix_tasks_customer_id", "tasks", ["customer_id"])
    op.create_index("ix_tasks_assignee_state", "tasks", ["assignee", "state"])

    op.create_table(
        "email_ledger",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("ledger_key", sa.String(200), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("template", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(500), nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("sent_at", INSTANT, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "ledger_key", "recipient", name="pk_email_ledger"),
    )


def downgrade() -> None:
    op.drop_table("email_ledger")
    op.drop_index("ix_tasks_assignee_state", table_name="tasks")
    op.drop_index("ix_tasks_customer_id", table_name="tasks")
    op.drop_table("tasks")
    op.drop_table("timeline_entries")
    op.drop_table("weekly_measurements")
    op.drop_index("ix_usage_events_occurred_at", table_name="usage_events")
    op.drop_index("ix_usage_events_customer_occurred", table_name="usage_events")
    op.drop_table("usage_events")
    op.drop_table("contacts")
    op.drop_index("ix_customers_stage", table_name="customers")
    op.drop_table("customers")
