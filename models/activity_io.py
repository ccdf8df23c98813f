"""One typed input per activity, so fields can be added compatibly later."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, JsonValue

from models.email_categories import EmailCategory
from models.handoff import Contact, CustomerHandoff, Locale, Role
from models.onboarding import Stage, TaskKind, TimelineDetails
from models.projection import ProjectionSnapshot


class UpsertCustomerInput(BaseModel):
    handoff: CustomerHandoff
    playbook_name: str
    playbook_version: str
    workflow_id: str


class AddContactInput(BaseModel):
    customer_id: str
    contact: Contact


class RecordTimelineInput(BaseModel):
    """One entry of a customer's timeline; (customer_id, seq) makes a retry harmless."""

    customer_id: str
    seq: int
    at: datetime
    kind: str
    stage: Stage
    summary: str
    details: TimelineDetails = Field(default_factory=dict)
    # The customer as the lists need it; None in writes queued before it existed.
    snapshot: ProjectionSnapshot | None = None
    # The workflow task attempt that wrote it (workflows/effects.py attempt_stamp).
    attempt_order: int | None = None
    attempt_at: datetime | None = None


class OpenTaskInput(BaseModel):
    task_id: str
    customer_id: str
    kind: TaskKind
    assignee: str
    title: str
    detail: str = ""
    opened_at: datetime
    due_at: datetime | None = None
    # The workflow task attempt that wrote it (workflows/effects.py attempt_stamp).
    attempt_order: int | None = None
    attempt_at: datetime | None = None


class CloseTasksInput(BaseModel):
    customer_id: str
    task_ids: list[str]
    closed_at: datetime
    resolution: str


class MoveTaskDueInput(BaseModel):
    """An open task's new due date (a stage's scheduling task follows its reminder)."""

    customer_id: str
    task_id: str
    due_at: datetime


class StoreWrite(BaseModel):
    """One write of a batch: exactly one of these is set."""

    upsert_customer: UpsertCustomerInput | None = None
    add_contact: AddContactInput | None = None
    record_timeline: RecordTimelineInput | None = None
    open_task: OpenTaskInput | None = None
    close_tasks: CloseTasksInput | None = None
    move_task_due: MoveTaskDueInput | None = None


class StoreBatchInput(BaseModel):
    """The store writes one workflow task queued, in queue order (one transaction)."""

    customer_id: str
    writes: list[StoreWrite]
    # The customer as the lists need it, once for the batch: each timeline write
    # without a snapshot of its own is stored with this one.
    snapshot: ProjectionSnapshot | None = None


class MeasureWeeklyUsageInput(BaseModel):
    customer_id: str
    week_index: int
    window_start: datetime
    window_end: datetime
    seats_contracted: int
    quota_contracted: float | None = None
    quota_event: str | None = None
    # purpose id -> the usage event that counts as that purpose's key action
    key_actions: dict[str, str] = Field(default_factory=dict)


class SendEmailInput(BaseModel):
    """An email to send once: the ledger key names the step and the recipient group."""

    ledger_key: str
    customer_id: str
    template: str
    locale: Locale = "en"
    # Either explicit addresses (CSM, leader) or every contact holding a role.
    to: list[str] = Field(default_factory=list)
    to_role: Role | None = None
    context: dict[str, JsonValue] = Field(default_factory=dict)
    # Set where the email is built; None only in sends queued before categories existed,
    # which go out as they would have then (no opt-out check, no unsubscribe link).
    category: EmailCategory | None = None


class SendEmailResult(BaseModel):
    sent: list[str] = Field(default_factory=list)
    already_sent: list[str] = Field(default_factory=list)
    skipped_reason: str | None = None
    # Recipients not sent to because they left the email's category.
    opted_out: list[str] = Field(default_factory=list)


class PublicHolidaysInput(BaseModel):
    # ISO 3166 alpha-2, e.g. "JP".
    country: str = Field(pattern=r"^[A-Z]{2}$")
    years: list[int] = Field(min_length=1)
