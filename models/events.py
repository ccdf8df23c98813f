"""What a CSM (or an integration) tells a customer's onboarding.

The same events arrive as Temporal updates (validated, the reason of a refusal
returned) and as signals (fire and forget; a refusal is recorded, not raised).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from models import limits
from models.handoff import Contact, Email
from models.text import refuse_control_characters


class MeetingKind(StrEnum):
    POOR_PROGRESS = "poor_progress"
    MOMENTUM = "momentum"
    CUSTOMER_REQUEST = "customer_request"


# Items of a list: a person's name, a line of text.
_Name = Annotated[str, Field(max_length=limits.NAME_CHARS)]
_Line = Annotated[str, Field(max_length=limits.LINE_CHARS)]


class _Event(BaseModel):
    # A field the model does not know is refused, not dropped: it would be lost silently.
    model_config = ConfigDict(extra="forbid")

    # Integrations set it so a redelivered event is applied once.
    event_id: str | None = Field(default=None, max_length=128)
    recorded_by: str | None = Field(default=None, max_length=limits.NAME_CHARS)

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        return refuse_control_characters(data)


class KickoffHeld(_Event):
    kind: Literal["kickoff_held"] = "kickoff_held"
    held_on: date
    attendees: list[_Name] = Field(default_factory=list, max_length=limits.LIST_ITEMS)
    goals: list[_Line] = Field(default_factory=list, max_length=limits.LIST_ITEMS)


class GoalAgreed(_Event):
    kind: Literal["goal_agreed"] = "goal_agreed"
    goal: str = Field(min_length=1, max_length=limits.LINE_CHARS)


class TrainingHeld(_Event):
    kind: Literal["training_held"] = "training_held"
    held_on: date
    attendees: list[_Name] = Field(default_factory=list, max_length=limits.LIST_ITEMS)


class TrainingSkipped(_Event):
    kind: Literal["training_skipped"] = "training_skipped"
    reason: str = Field(min_length=1, max_length=limits.LINE_CHARS)


class MeetingRequested(_Event):
    kind: Literal["meeting_requested"] = "meeting_requested"
    meeting: MeetingKind = MeetingKind.CUSTOMER_REQUEST
    notes: str = Field(default="", max_length=limits.NOTE_CHARS)


class MeetingHeld(_Event):
    kind: Literal["meeting_held"] = "meeting_held"
    meeting: MeetingKind
    held_on: date
    notes: str = Field(default="", max_length=limits.NOTE_CHARS)


class PurposeAdded(_Event):
    kind: Literal["purpose_added"] = "purpose_added"
    purpose: str = Field(max_length=limits.PURPOSE_ID_CHARS)


class ContactAdded(_Event):
    kind: Literal["contact_added"] = "contact_added"
    contact: Contact


class NpsAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    score: int = Field(ge=0, le=10)


class CompletionReviewHeld(_Event):
    kind: Literal["completion_review_held"] = "completion_review_held"
    held_on: date
    success_confirmed: bool
    feedback: str = Field(default="", max_length=limits.NOTE_CHARS)
    feature_requests: list[_Line] = Field(default_factory=list, max_length=limits.LIST_ITEMS)
    nps: list[NpsAnswer] = Field(default_factory=list, max_length=limits.CONTACTS)


class TaskCompleted(_Event):
    kind: Literal["task_completed"] = "task_completed"
    task_id: str = Field(max_length=limits.TASK_ID_CHARS)
    note: str = Field(default="", max_length=limits.NOTE_CHARS)


class Paused(_Event):
    kind: Literal["paused"] = "paused"
    reason: str = Field(min_length=1, max_length=limits.LINE_CHARS)
    # The customer's local day on which the onboarding resumes by itself; without
    # one it stays paused until someone resumes it.
    resume_on: date | None = None


class Resumed(_Event):
    kind: Literal["resumed"] = "resumed"
    note: str = Field(default="", max_length=limits.LINE_CHARS)


class Cancelled(_Event):
    kind: Literal["cancelled"] = "cancelled"
    reason: str = Field(min_length=1, max_length=limits.LINE_CHARS)


OnboardingEvent = Annotated[
    KickoffHeld
    | GoalAgreed
    | TrainingHeld
    | TrainingSkipped
    | MeetingRequested
    | MeetingHeld
    | PurposeAdded
    | ContactAdded
    | CompletionReviewHeld
    | TaskCompleted
    | Paused
    | Resumed
    | Cancelled,
    Field(discriminator="kind"),
]

# Reads any event from its JSON form (a form post, a timeline entry's details).
ONBOARDING_EVENT: TypeAdapter[OnboardingEvent] = TypeAdapter(OnboardingEvent)

# Every kind with its model, in the order of the journey (the union's order). The
# rules of each kind live in workflows/events.py; its words in api/dashboard/i18n.py.
EVENT_MODELS: dict[str, type[_Event]] = {
    model.model_fields["kind"].default: model for model in get_args(get_args(OnboardingEvent)[0])
}


@dataclass(frozen=True)
class UnreadableEvent:
    """An event that could not be read: the kind it named ("unknown" if none) and why."""

    kind: str
    reason: str


# A refusal is one sentence; a field's problem is never worth more than this.
_REASON_CHARS = 300
_KIND_CHARS = 64


# The signal integrations send events by; the workflow's handler is dynamic (it takes
# any signal and records a misuse), so the name is kept here for both sides.
SUBMIT_EVENT = "submit_event"


def read_event(data: bytes | str) -> OnboardingEvent | UnreadableEvent:
    """An event from its JSON as a client sent it, decoded by its `kind`.

    The workflow's update and signal take the raw payload and read it here: Temporal's
    own decoding drops the discriminator (`typing.get_type_hints` strips `Annotated`),
    and a plain union reads `{"garbage": 1}` as a meeting request.
    """
    try:
        return ONBOARDING_EVENT.validate_json(data)
    except ValidationError as err:
        return UnreadableEvent(kind=_named_kind(err), reason=refusal_sentence(err))


def _named_kind(err: ValidationError) -> str:
    first = err.errors()[0]
    if first["type"] == "union_tag_invalid":
        return str(first.get("ctx", {}).get("tag", "unknown"))[:_KIND_CHARS]
    loc = first["loc"]
    if loc and loc[0] in EVENT_MODELS:
        return str(loc[0])
    return "unknown"


def refusal_sentence(err: ValidationError) -> str:
    """The first problem of an event as one sentence naming its field."""
    errors = err.errors()
    first = errors[0]
    kinds = ", ".join(EVENT_MODELS)
    match first["type"]:
        case "json_invalid":
            sentence = "the event is not valid JSON"
        case "model_attributes_type" | "model_type" | "dict_type":
            sentence = "the event must be a JSON object naming its kind"
        case "union_tag_not_found":
            sentence = f"the event must name its kind (one of {kinds})"
        case "union_tag_invalid":
            tag = str(first.get("ctx", {}).get("tag", ""))[:_KIND_CHARS]
            sentence = f"unknown event kind {tag!r}: the kinds are {kinds}"
        case _:
            loc = [str(part) for part in first["loc"]]
            kind, field = (loc[0], ".".join(loc[1:])) if loc else ("event", "")
            message = first["msg"].removeprefix("Value error, ")
            if first["type"] == "extra_forbidden":
                sentence = f"{kind} has no field {field!r}"
            elif first["type"] == "missing":
                sentence = f"{kind} needs the field {field!r}"
            elif field:
                sentence = f"{kind} field {field!r}: {message[:1].lower()}{message[1:]}"
            else:
                sentence = f"{kind}: {message[:1].lower()}{message[1:]}"
    if len(errors) > 1:
        sentence += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    if len(sentence) > _REASON_CHARS:
        sentence = sentence[: _REASON_CHARS - 1] + "…"
    return sentence
