"""What the workflow tells the read model with each timeline entry it writes.

The customer projection (`records/projections.py`) is the lists' and the cohort's
source: a snapshot travels with every timeline write and is stored in its row, so the
projection is exact live and a rebuild from the timeline gives the same result.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from models.onboarding import DueKind, Stage, TaskKind

# Open tasks that escalate to the CS leader: the cohort counts them.
ESCALATION_TASKS = frozenset(
    {
        TaskKind.OVERDUE_ESCALATION,
        TaskKind.STALL_ESCALATION,
        TaskKind.SETUP_STUCK_ESCALATION,
        TaskKind.DEADLINE_MISSED,
    }
)


class ProjectionSnapshot(BaseModel):
    """One customer as the lists and the cohort need it, when the entry was written."""

    name: str
    csm: str
    cs_leader: str
    stage: Stage
    stage_since: datetime | None = None
    # When the customer entered each stage of its journey, first time.
    stage_entered: dict[Stage, datetime] = Field(default_factory=dict)
    started_at: datetime | None = None
    stalled: bool = False
    setup_stuck: bool = False
    # Paused since when and why (a `paused` event until `resumed`).
    paused: bool = False
    paused_since: datetime | None = None
    pause_reason: str | None = None
    next_due_kind: DueKind | None = None
    next_due_at: datetime | None = None
    open_tasks: int = 0
    # Open tasks that escalate to the CS leader (ESCALATION_TASKS).
    escalations: int = 0
    playbook_name: str
    playbook_version: str
    purposes: list[str] = Field(default_factory=list)
    seats_contracted: int
    trial_used: bool = False
    locale: str = "en"
    time_zone: str = "UTC"
    # The country whose holidays the campaign keeps, when the playbook names one.
    country: str | None = None
    # The playbook's review threshold (finished customers of this version); not stored
    # in the row, read by the trigger that opens the leader's review task.
    review_after: int = 50
