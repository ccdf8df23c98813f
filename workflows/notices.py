"""What the workflow's own emails (tasks, failure, generic stall proposal) tell their
templates, in one place: the workflow sends them, and validation and the bench
render them with sample values, so a template cannot drift from what it is given."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import JsonValue

TASK_ASSIGNED = "task_assigned"
ONBOARDING_FAILED = "onboarding_failed"
STALL_PROPOSAL = "stall_proposal"


def task_assigned(
    *,
    customer_name: str,
    customer_id: str,
    task_id: str,
    kind: str,
    title: str,
    due_at: datetime | None,
    assignee: str,
) -> dict[str, JsonValue]:
    return {
        "customer_name": customer_name,
        "customer_id": customer_id,
        "title": title,
        "detail": f"Task {task_id} ({kind})",
        "due_at": due_at.isoformat() if due_at else None,
        "assignee": assignee,
    }


def onboarding_failed(
    *, customer_name: str, customer_id: str, deadline_days: int, stage: str
) -> dict[str, JsonValue]:
    return {
        "customer_name": customer_name,
        "customer_id": customer_id,
        "detail": (
            f"Deadline of {deadline_days} days passed in stage {stage} "
            "without meeting the completion criteria."
        ),
    }


def stall_proposal(*, customer_name: str, purpose_titles: Sequence[str]) -> dict[str, JsonValue]:
    return {"customer_name": customer_name, "purposes": ", ".join(purpose_titles), "detail": ""}
