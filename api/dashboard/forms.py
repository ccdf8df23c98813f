"""The CSM action forms: which exist, which fit a stage, and how a submitted form
becomes an `OnboardingEvent` (or the field errors to show next to it).

The event models stay the one definition of what is valid; this module only turns
form strings into their input and their errors into words for the form.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from pydantic import BaseModel, ValidationError

from models.events import EVENT_MODELS, ONBOARDING_EVENT, MeetingKind, OnboardingEvent
from models.handoff import Role
from models.onboarding import Stage
from workflows.events import OPEN_STAGES, accepted_kinds, awaited_kinds

EVENT_TYPES: dict[str, type[BaseModel]] = dict(EVENT_MODELS)
# The forms in the actions panel, in the order of the journey (task_completed sits
# with each open task instead).
PANEL_ACTIONS = [kind for kind in EVENT_TYPES if kind != "task_completed"]
# The forms each stage offers: the others would only be refused (a second kickoff, a
# training before the kickoff). The workflow stays the judge of every event.
OFFERED: dict[Stage, tuple[str, ...]] = {stage: accepted_kinds(stage) for stage in OPEN_STAGES}
# The actions a stage is waiting for; they are shown open, the rest folded.
NEXT_STEP: dict[Stage, tuple[str, ...]] = {stage: awaited_kinds(stage) for stage in OPEN_STAGES}


def offered(stage: Stage, *, paused: bool) -> tuple[str, ...]:
    """The forms a customer's page offers: a paused customer can be resumed, not paused."""
    hidden = "paused" if paused else "resumed"
    return tuple(kind for kind in OFFERED.get(stage, ()) if kind != hidden)


# Fields entered one item per line.
_LINES = ("attendees", "goals", "feature_requests")
_CHECKBOXES = ("success_confirmed", "confirm")
_ERROR_KEYS = {
    "missing": "err_required",
    "string_too_short": "err_required",
    "date_parsing": "err_date",
    "date_from_datetime_parsing": "err_date",
    "date_from_datetime_inexact": "err_date",
    "date_type": "err_date",
    "string_too_long": "err_too_long",
    "enum": "err_choice",
    "literal_error": "err_choice",
}


@dataclass(frozen=True)
class FieldError:
    field: str
    # A catalogue key with its values, or None with the validator's own words.
    key: str | None
    values: dict[str, Any] = dataclass_field(default_factory=dict)
    text: str = ""


def new_event_id() -> str:
    """Each rendered form carries one, so a double submit is applied once."""
    return f"dashboard-{uuid.uuid4().hex}"


def is_checked(value: str | None) -> bool:
    return value is not None and value.lower() in ("on", "true", "yes", "1")


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def _nps(value: str) -> list[dict[str, Any]] | None:
    """`email score` per line; None if a line does not read that way."""
    answers = []
    for line in _lines(value):
        parts = line.replace(",", " ").replace("\t", " ").split()
        if len(parts) != 2 or not parts[1].isdigit():
            return None
        answers.append({"email": parts[0], "score": int(parts[1])})
    return answers


def build_event(
    kind: str, form: Mapping[str, str], recorded_by: str
) -> OnboardingEvent | list[FieldError]:
    """The event a submitted form stands for, or what is wrong with the form."""
    model = EVENT_TYPES[kind]
    data: dict[str, Any] = {"kind": kind, "recorded_by": recorded_by[:200]}
    if form.get("event_id"):
        data["event_id"] = form["event_id"]
    errors: list[FieldError] = []
    contact: dict[str, str] = {}
    for name in model.model_fields:
        if name in ("kind", "recorded_by", "event_id"):
            continue
        if name == "contact":
            contact = {
                part: form.get(f"contact_{part}", "").strip() for part in ("email", "name", "role")
            }
            data["contact"] = {part: value for part, value in contact.items() if value}
        elif name in _CHECKBOXES:
            data[name] = is_checked(form.get(name))
        elif name in _LINES:
            data[name] = _lines(form.get(name, ""))
        elif name == "nps":
            answers = _nps(form.get("nps", ""))
            if answers is None:
                errors.append(FieldError("nps", "err_nps"))
            else:
                data["nps"] = answers
        else:
            # Browsers send textarea line breaks as CRLF; store them as typed lines.
            value = form.get(name, "").replace("\r\n", "\n").strip()
            if value:
                data[name] = value
    for spec in FORM_FIELDS[kind]:
        if spec.widget == "checkbox" and spec.required and not is_checked(form.get(spec.name)):
            # E.g. cancelling ends the journey for good: ask for a deliberate tick.
            errors.append(FieldError(spec.name, "err_confirm"))
    try:
        event = ONBOARDING_EVENT.validate_python(data)
    except ValidationError as err:
        return errors + [_field_error(kind, error) for error in err.errors()]
    return errors or event


def _field_error(kind: str, error: Mapping[str, Any]) -> FieldError:
    # The union reports the discriminator first: ("kickoff_held", "held_on").
    loc = [str(part) for part in error.get("loc", ())]
    if loc and loc[0] == kind:
        loc = loc[1:]
    name = loc[0] if loc else "form"
    if name == "contact" and len(loc) > 1:
        name = f"contact_{loc[1]}"
    if name == "nps":
        return FieldError("nps", "err_nps")
    error_type = str(error.get("type", ""))
    message = str(error.get("msg", ""))
    if error_type == "value_error" and "email" in message:
        return FieldError(name, "err_email")
    key = _ERROR_KEYS.get(error_type)
    if key == "err_too_long":
        return FieldError(name, key, {"n": error.get("ctx", {}).get("max_length", "?")})
    if key is not None:
        return FieldError(name, key)
    return FieldError(name, None, text=message.removeprefix("Value error, "))


@dataclass(frozen=True)
class Field:
    """One input of an action form, as the template draws it."""

    name: str
    # "date", "text", "email", "textarea", "select" or "checkbox"
    widget: str
    required: bool = False
    # (value, catalogue key) for a select; the key is shown in the page's language.
    options: tuple[tuple[str, str], ...] = ()
    max_length: int | None = None


_MEETINGS = tuple((kind.value, f"meeting_{kind.value}") for kind in MeetingKind)
_ROLES = tuple((role.value, f"contact_role_{role.value}") for role in Role)
_HELD_ON = Field("held_on", "date", required=True)

# Every kind in models.events.EVENT_MODELS; a test checks none is missing.
FORM_FIELDS: dict[str, tuple[Field, ...]] = {
    "kickoff_held": (_HELD_ON, Field("goals", "textarea"), Field("attendees", "textarea")),
    "goal_agreed": (Field("goal", "text", required=True, max_length=500),),
    "training_held": (_HELD_ON, Field("attendees", "textarea")),
    "training_skipped": (Field("reason", "text", required=True, max_length=500),),
    "meeting_requested": (
        Field("meeting", "select", required=True, options=_MEETINGS),
        Field("notes", "textarea"),
    ),
    "meeting_held": (
        Field("meeting", "select", required=True, options=_MEETINGS),
        _HELD_ON,
        Field("notes", "textarea"),
    ),
    # Its options come from the playbook, filled in per page.
    "purpose_added": (Field("purpose", "select", required=True),),
    "contact_added": (
        Field("contact_name", "text", required=True, max_length=200),
        Field("contact_email", "email", required=True),
        Field("contact_role", "select", required=True, options=_ROLES),
    ),
    "completion_review_held": (
        _HELD_ON,
        Field("success_confirmed", "checkbox"),
        Field("feedback", "textarea"),
        Field("feature_requests", "textarea"),
        Field("nps", "textarea"),
    ),
    "paused": (
        Field("reason", "text", required=True, max_length=500),
        Field("resume_on", "date"),
    ),
    "resumed": (),
    "cancelled": (
        Field("reason", "text", required=True, max_length=500),
        Field("confirm", "checkbox", required=True),
    ),
    "task_completed": (Field("note", "text"),),
}
