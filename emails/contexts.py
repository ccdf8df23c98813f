"""What each email's template is given, in one place: the workflow builds these
contexts when it sends, and the catalogue and the bench build them with sample
values, so a template cannot drift from what it is given.

Pure functions of their arguments: workflows import this module."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import JsonValue

from models.playbook import CampaignStep, Purpose

TASK_ASSIGNED = "task_assigned"
ONBOARDING_FAILED = "onboarding_failed"
STALL_PROPOSAL = "stall_proposal"
# The key of a survey email's context that asks the mail activity for score links
# (emails/survey_links.py): only the activity knows the recipient they are signed for.
SURVEY = "survey"


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


# Campaign steps


def step_context(
    customer_name: str,
    purpose: Purpose,
    step: CampaignStep,
    locale: str,
    key_actions_last_week: int | None,
) -> dict[str, JsonValue]:
    """What a purpose step's template sees (plus `recipient`, added per email)."""
    return {
        "customer_name": customer_name,
        "purpose_id": purpose.id,
        "purpose_title": purpose.title_in(locale),
        "purpose_outcome": purpose.outcome,
        "key_action": purpose.key_action,
        "key_actions_last_week": key_actions_last_week or 0,
        "goal_key_actions": purpose.goal_key_actions,
        "note": step.note.get(locale, ""),
    }


def choose_purpose_context(
    customer_name: str, purposes: Sequence[Purpose], locale: str
) -> dict[str, JsonValue]:
    offered: list[JsonValue] = [{"id": p.id, "title": p.title_in(locale)} for p in purposes]
    return {"customer_name": customer_name, "purposes_offered": offered}


# NPS surveys


def survey_context(
    *, customer_name: str, customer_id: str, touchpoint: str, valid_for: timedelta
) -> dict[str, JsonValue]:
    """What a survey's template sees, plus `score_links` (0 to 10) added per recipient."""
    return {
        "customer_name": customer_name,
        "touchpoint": touchpoint,
        "valid_days": max(1, round(valid_for / timedelta(days=1))),
        SURVEY: {
            "customer_id": customer_id,
            "touchpoint": touchpoint,
            "valid_seconds": int(valid_for.total_seconds()),
        },
    }
