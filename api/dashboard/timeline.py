"""A timeline entry as a sentence in the page's language.

The workflow writes each entry's summary in English and its facts as details. For
the kinds a CSM reads most (their own actions, stage changes, weekly verdicts, setup,
step and proposal emails) the page rebuilds the sentence from the details in its
language; a CSM event's sentence is its `tl_<kind>` words (i18n.EVENT_WORDS) filled
from its fields. Any other kind, or details it cannot read (a newer workflow's), keep
the workflow's own summary (task titles and stall reasons come from the playbook).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel

from api.dashboard.i18n import Translator
from api.dashboard.overrides import in_words
from api.dashboard.render import Formatter
from models.email_categories import EmailCategory
from models.events import ONBOARDING_EVENT
from models.handoff import Role
from models.onboarding import WeeklyMeasurement, WeekVerdict
from models.overrides import OverriddenValue
from models.playbook import Metric
from records.reports import TimelineRow


def _sentence_values(model: BaseModel, t: Translator, prefix: str = "") -> dict[str, Any]:
    """An event's fields as its `tl_<kind>` sentence reads them (see i18n.Words)."""
    values: dict[str, Any] = {}
    for name, value in model:
        key = prefix + name
        if isinstance(value, BaseModel):
            values |= _sentence_values(value, t, f"{key}_")
        elif isinstance(value, bool):
            values[key] = t("yes") if value else t("no")
        elif isinstance(value, Enum):
            values[key] = t.maybe(f"{key}_{value.value}", str(value.value))
        elif isinstance(value, list):
            values[key] = len(value)
        else:
            values[key] = value
    return values


def _transition(details: dict[str, Any], fmt: Formatter) -> str:
    t = fmt.t
    source = details["from"]
    return t(
        "tl_transition",
        source=t(f"stage_{source}") if source else "–",
        target=t(f"stage_{details['to']}"),
        cause=details["cause"],
    )


def _setup_stuck(details: dict[str, Any], fmt: Formatter) -> str:
    return fmt.t("tl_setup_stuck", waited=fmt.duration(float(details["waited_seconds"])))


def _weekly_measurement(details: dict[str, Any], fmt: Formatter) -> str:
    verdict = WeekVerdict.model_validate(details)
    week = verdict.measurement
    outcome = "met" if verdict.criteria_met else "stalled" if verdict.stalled else "ok"
    text = fmt.t(
        "tl_weekly_measurement",
        n=week.week_index,
        ratio=fmt.metric(Metric.ACTIVE_SEAT_RATIO, week.active_seat_ratio),
        actions=sum(week.key_actions.values()),
        outcome=fmt.t(f"outcome_{outcome}"),
    )
    if week.late_events:
        text += fmt.t("tl_late_events", n=week.late_events)
    return text


def _paused_measurement(details: dict[str, Any], fmt: Formatter) -> str:
    week = WeeklyMeasurement.model_validate(details)
    return fmt.t(
        "tl_paused_measurement",
        n=week.week_index,
        ratio=fmt.metric(Metric.ACTIVE_SEAT_RATIO, week.active_seat_ratio),
        actions=sum(week.key_actions.values()),
    )


def _campaign_step_sent(details: dict[str, Any], fmt: Formatter) -> str:
    roles = ", ".join(fmt.t(f"contact_role_{Role(role).value}") for role in details["roles"])
    if not roles:
        return fmt.t("tl_campaign_step_no_contact", ref=str(details["ref"]))
    return fmt.t("tl_campaign_step_sent", ref=str(details["ref"]), roles=roles)


def _stall_proposal(details: dict[str, Any], fmt: Formatter) -> str:
    if "steps" in details:
        return fmt.t("tl_stall_proposals", steps=", ".join(map(str, details["steps"])))
    return fmt.t("tl_stall_proposal")


def _playbook_migrated(details: dict[str, Any], fmt: Formatter) -> str:
    return fmt.t(
        "tl_playbook_migrated",
        source=str(details["from"]),
        target=str(details["to"]),
        by=str(details["by"]),
        reason=str(details["reason"]),
    )


def _overrides_set(details: dict[str, Any], fmt: Formatter) -> str:
    by, reason = str(details["by"]), str(details["reason"])
    said = [in_words(OverriddenValue.model_validate(v), fmt.t) for v in details["values"]]
    values = [f"{v.name} {v.playbook} → {v.customer}" for v in said]
    if not values:
        return fmt.t("tl_overrides_cleared", by=by, reason=reason)
    return fmt.t("tl_overrides_set", by=by, reason=reason, values="; ".join(values))


def _task_overdue(details: dict[str, Any], fmt: Formatter) -> str:
    return fmt.t(
        "tl_task_overdue",
        assignee=str(details["assignee"]),
        due=fmt.when(datetime.fromisoformat(str(details["due_at"]))),
        title=str(details["title"]),
    )


def _email_opted_out(details: dict[str, Any], fmt: Formatter) -> str:
    category = EmailCategory(details["category"])
    return fmt.t(
        "tl_email_opted_out",
        recipients=", ".join(map(str, details["recipients"])),
        category=fmt.t(f"opt_out_short_{category.value}"),
    )


_BY_KIND: dict[str, Callable[[dict[str, Any], Formatter], str]] = {
    "transition": _transition,
    "setup_stuck": _setup_stuck,
    "setup_unstuck": lambda details, fmt: fmt.t("tl_setup_unstuck"),
    "weekly_measurement": _weekly_measurement,
    "paused_measurement": _paused_measurement,
    "campaign_step_sent": _campaign_step_sent,
    "stall_proposal": _stall_proposal,
    "playbook_migrated": _playbook_migrated,
    "overrides_set": _overrides_set,
    "email_opted_out": _email_opted_out,
    "task_overdue": _task_overdue,
}


def sentence(row: TimelineRow, fmt: Formatter) -> str:
    """What happened, in the page's language where the details allow it."""
    try:
        build = _BY_KIND.get(row.kind)
        if build is not None:
            return build(row.details, fmt)
        if row.kind == row.details.get("kind"):
            event = ONBOARDING_EVENT.validate_python(row.details)
            return fmt.t(f"tl_{event.kind}", **_sentence_values(event, fmt.t))
    except (KeyError, TypeError, ValueError):  # pydantic's ValidationError is a ValueError
        pass
    return row.summary
