"""The customer page's "adjusted for this customer" form: the customer's overrides as
text fields (one `NAME=VALUE` per line, as `liftoff adjust` takes them), and the
submitted form back into `CustomerOverrides` or the sentences saying what is wrong.
Each adjustment beside the playbook's value, for the page and its timeline, in the
page's language (`in_words`).

The form holds the whole set: it opens with the customer's overrides filled in, and
what it sends replaces them (an emptied field follows the playbook again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from api.dashboard.i18n import Translator
from models import limits
from models.overrides import (
    WEEKDAYS,
    CustomerOverrides,
    OverriddenValue,
    OverrideSetting,
    OverridesRequest,
    duration_text,
    parse_threshold,
    parse_timer,
    parse_weekday,
)

FIELDS = ("thresholds", "timers", "measure_on", "measure_at", "deadline", "skip_steps", "reason")
# What one field of the form may hold: the lines of its items, each a short line.
_FIELD_CHARS = limits.PLAYBOOK_ITEMS * 100


@dataclass(frozen=True)
class OverridesForm:
    values: dict[str, str]
    errors: list[str] = field(default_factory=list)
    refusal: str | None = None


def form_values(overrides: CustomerOverrides | None) -> dict[str, str]:
    """The form's fields holding the customer's overrides."""
    o = overrides or CustomerOverrides()
    timers = []
    for stage, timer in o.timers.items():
        remind = duration_text(timer.remind_csm_after) if timer.remind_csm_after else ""
        escalate = (
            duration_text(timer.escalate_to_leader_after) if timer.escalate_to_leader_after else ""
        )
        timers.append(f"{stage}={remind}/{escalate}" if escalate else f"{stage}={remind}")
    return {
        "thresholds": "\n".join(f"{name}={value:g}" for name, value in o.thresholds.items()),
        "timers": "\n".join(timers),
        "measure_on": "" if o.measurement_weekday is None else WEEKDAYS[o.measurement_weekday],
        "measure_at": "" if o.measurement_hour is None else str(o.measurement_hour),
        "deadline": "" if o.deadline is None else o.deadline.isoformat(),
        "skip_steps": "\n".join(o.skip_steps),
        "reason": "",
    }


def build_request(form: Mapping[str, str], requested_by: str) -> OverridesRequest | list[str]:
    """The update a submitted form stands for, or the sentences saying what is wrong."""
    errors: list[str] = []
    data: dict[str, Any] = {}
    for name in FIELDS:
        if len(form.get(name, "")) > _FIELD_CHARS:
            errors.append(f"{name}: at most {_FIELD_CHARS} characters")
    if errors:
        return errors
    try:
        data["thresholds"] = dict(parse_threshold(line) for line in _lines(form, "thresholds"))
        data["timers"] = dict(parse_timer(line) for line in _lines(form, "timers"))
        if form.get("measure_on", "").strip():
            data["measurement_weekday"] = parse_weekday(form["measure_on"])
    except ValueError as err:
        errors.append(str(err))
    if form.get("measure_at", "").strip():
        data["measurement_hour"] = form["measure_at"].strip()
    if form.get("deadline", "").strip():
        data["deadline"] = form["deadline"].strip()
    data["skip_steps"] = _lines(form, "skip_steps")
    try:
        request = OverridesRequest(
            overrides=CustomerOverrides.model_validate(data),
            reason=form.get("reason", "").strip(),
            requested_by=requested_by[: limits.NAME_CHARS],
        )
    except ValidationError as err:
        return errors + [_sentence(error) for error in err.errors()]
    return errors or request


def _lines(form: Mapping[str, str], name: str) -> list[str]:
    return [line.strip() for line in form.get(name, "").splitlines() if line.strip()]


def _sentence(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "overrides")
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def in_words(value: OverriddenValue, t: Translator) -> OverriddenValue:
    """The adjustment named in the page's language; one from before `setting` existed
    as the workflow wrote it, in English."""
    setting = value.setting
    if setting is None:
        return value
    subject = value.subject or ""
    playbook, customer = value.playbook, value.customer
    if setting is OverrideSetting.MEASUREMENT_WEEKDAY:
        playbook, customer = _weekday(playbook, t), _weekday(customer, t)
    elif setting is OverrideSetting.SKIP_STEP:
        playbook, customer = t("override_step_sent"), t("override_step_skipped")
    name = t(
        f"override_{setting.value}", subject=subject, stage=t.maybe(f"stage_{subject}", subject)
    )
    return value.model_copy(update={"name": name, "playbook": playbook, "customer": customer})


def _weekday(english: str, t: Translator) -> str:
    return t(f"weekday_long_{WEEKDAYS.index(english)}") if english in WEEKDAYS else english
