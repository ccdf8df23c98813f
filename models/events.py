"""What a CSM (or an integration) tells a customer's onboarding.

The same events arrive as Temporal updates (validated, the reason of a refusal
returned) and as signals (fire and forget; a refusal is recorded, not raised).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field, TypeAdapter, model_validator

from models.handoff import Contact, Email
from models.text import refuse_control_characters


class MeetingKind(StrEnum):
    POOR_PROGRESS = "poor_progress"
    MOMENTUM = "momentum"
    CUSTOMER_REQUEST = "customer_request"


class _Event(BaseModel):
    # Integrations set it so a redelivered event is applied once.
    event_id: str | None = Field(default=None, max_length=128)
    recorded_by: str | None = Field(default=None, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        return refuse_control_characters(data)


class KickoffHeld(_Event):
    kind: Literal["kickoff_held"] = "kickoff_held"
    held_on: date
    attendees: list[str] = Field(default_factory=list)
    goals: list[str] = Field(default_factory=list)


class GoalAgreed(_Event):
    kind: Literal["goal_agreed"] = "goal_agreed"
    goal: str = Field(min_length=1, max_length=500)


class TrainingHeld(_Event):
    kind: Literal["training_held"] = "training_held"
    held_on: date
    attendees: list[str] = Field(default_factory=list)


class TrainingSkipped(_Event):
    kind: Literal["training_skipped"] = "training_skipped"
    reason: str = Field(min_length=1, max_length=500)


class MeetingRequested(_Event):
    kind: Literal["meeting_requested"] = "meeting_requested"
    meeting: MeetingKind = MeetingKind.CUSTOMER_REQUEST
    notes: str = ""


class MeetingHeld(_Event):
    kind: Literal["meeting_held"] = "meeting_held"
    meeting: MeetingKind
    held_on: date
    notes: str = ""


class PurposeAdded(_Event):
    kind: Literal["purpose_added"] = "purpose_added"
    purpose: str


class ContactAdded(_Event):
    kind: Literal["contact_added"] = "contact_added"
    contact: Contact


class NpsAnswer(BaseModel):
    email: Email
    score: int = Field(ge=0, le=10)


class CompletionReviewHeld(_Event):
    kind: Literal["completion_review_held"] = "completion_review_held"
    held_on: date
    success_confirmed: bool
    feedback: str = ""
    feature_requests: list[str] = Field(default_factory=list)
    nps: list[NpsAnswer] = Field(default_factory=list)


class TaskCompleted(_Event):
    kind: Literal["task_completed"] = "task_completed"
    task_id: str
    note: str = ""


class Cancelled(_Event):
    kind: Literal["cancelled"] = "cancelled"
    reason: str = Field(min_length=1, max_length=500)


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
