"""The application's tables. Only activities import this module; workflows never do.

Every instant is stored as UTC and read back as an aware UTC datetime, on
SQLite as on PostgreSQL. Uniqueness constraints double as idempotency keys:
activities insert with ON CONFLICT DO NOTHING, so a retried activity changes
nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out.

    SQLite has no zone-aware type: the value is stored as UTC text and comes back
    naive, so the zone is restored here. Naive input is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: store aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _instant(*, nullable: bool = False, index: bool = False) -> Any:
    # A fresh Column per field: SQLAlchemy columns cannot be shared between tables.
    return Field(sa_column=Column(UtcDateTime(), nullable=nullable, index=index))


def _json(*, nullable: bool = False) -> Any:
    return Field(sa_column=Column(JSON, nullable=nullable))


def _text() -> Any:
    return Field(default="", sa_column=Column(Text, nullable=False, default=""))


def _attempt_order() -> Any:
    # The workflow task attempt that wrote the row (workflows/effects.py attempt_stamp):
    # a later attempt's write replaces an earlier one's. None: written before it existed.
    return Field(default=None, sa_column=Column(BigInteger, nullable=True))


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    customer_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    csm: str = Field(max_length=320)
    cs_leader: str = Field(max_length=320)
    seats_contracted: int
    quota_contracted: float | None = None
    time_zone: str = Field(default="UTC", max_length=64)
    locale: str = Field(default="en", max_length=8)
    purposes: list[str] = _json()
    trial_used: bool = False
    already_using: bool = False
    handoff_notes: str = _text()
    playbook_name: str = Field(max_length=200)
    playbook_version: str = Field(max_length=64)
    workflow_id: str = Field(max_length=200)
    stage: str = Field(default="handoff", max_length=32, index=True)
    stage_since: datetime | None = _instant(nullable=True)
    created_at: datetime = _instant()


class CustomerContact(SQLModel, table=True):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("customer_id", "email", name="uq_contacts_customer_email"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64)
    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    role: str = Field(max_length=32)
    unsubscribed: bool = False
    # Set by the provider's events (bounce, unsubscribe, spam report); the first one stands.
    suppressed_reason: str | None = Field(default=None, max_length=32)
    suppressed_at: datetime | None = _instant(nullable=True)


class UsageEvent(SQLModel, table=True):
    """One product usage event; event_key, when given, makes a re-import harmless."""

    __tablename__ = "usage_events"
    # The weekly measurement scans one customer's events by time.
    __table_args__ = (Index("ix_usage_events_customer_occurred", "customer_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64)
    user_id: str = Field(max_length=200)
    event: str = Field(max_length=200)
    occurred_at: datetime = _instant(index=True)
    quantity: float = 1.0
    event_key: str | None = Field(default=None, max_length=200, unique=True)
    received_at: datetime = _instant()


class WeeklyMeasurementRecord(SQLModel, table=True):
    __tablename__ = "weekly_measurements"

    customer_id: str = Field(primary_key=True, max_length=64)
    week_index: int = Field(primary_key=True)
    window_start: datetime = _instant()
    window_end: datetime = _instant()
    active_users: int
    active_seat_ratio: float
    events: int
    key_actions: dict[str, int] = _json()
    quota_consumption: float | None = None
    data_ever_arrived: bool
    email_opens: int = 0
    email_clicks: int = 0
    # Events of earlier windows received after the previous measurement (migration 0006).
    late_events: int = 0
    measured_at: datetime = _instant()


class TimelineEntry(SQLModel, table=True):
    __tablename__ = "timeline_entries"

    customer_id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)
    at: datetime = _instant()
    kind: str = Field(max_length=64)
    stage: str = Field(max_length=32)
    summary: str = _text()
    details: dict[str, Any] = _json()
    # The workflow's models.projection.ProjectionSnapshot when it wrote the entry
    # (None before it sent one): what a rebuild of the customer projection reads.
    snapshot: dict[str, Any] | None = _json(nullable=True)
    attempt_order: int | None = _attempt_order()
    attempt_at: datetime | None = _instant(nullable=True)


class CustomerProjection(SQLModel, table=True):
    """One customer as the lists and the cohort read it: written with each timeline
    entry in the same transaction (records/projections.py), rebuildable from them.

    It outlives the workflow: Temporal forgets a closed workflow after its retention,
    this row stays.
    """

    __tablename__ = "customer_projections"
    __table_args__ = (
        Index("ix_customer_projections_csm_stage", "csm", "stage"),
        Index("ix_customer_projections_stage_since", "stage", "stage_since"),
        Index("ix_customer_projections_outcome_ended", "outcome", "ended_at"),
    )

    customer_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    csm: str = Field(max_length=320)
    cs_leader: str = Field(max_length=320)
    stage: str = Field(max_length=32)
    stage_since: datetime | None = _instant(nullable=True)
    # The furthest stage on the path (handoff 0 ... onboarded 5) the customer reached.
    furthest: int = 0
    stalled: bool = False
    setup_stuck: bool = False
    # Paused since when and why (migration 0010).
    paused: bool = False
    paused_since: datetime | None = _instant(nullable=True)
    pause_reason: str | None = Field(default=None, max_length=500)  # limits.LINE_CHARS
    next_due_kind: str | None = Field(default=None, max_length=32)
    next_due_at: datetime | None = _instant(nullable=True)
    open_tasks: int = 0
    escalations: int = 0
    playbook_name: str = Field(default="", max_length=200)
    playbook_version: str = Field(default="", max_length=64)
    purposes: list[str] = _json()
    seats_contracted: int = 0
    seats_band: str = Field(default="", max_length=16)
    trial_used: bool = False
    locale: str = Field(default="en", max_length=8)
    time_zone: str = Field(default="UTC", max_length=64)
    country: str | None = Field(default=None, max_length=2)
    # "onboarded", "failed" or "cancelled" once the onboarding ended.
    outcome: str | None = Field(default=None, max_length=16)
    started_at: datetime | None = _instant(nullable=True)
    ended_at: datetime | None = _instant(nullable=True)
    # Seconds in each finished stay (None while in it or never there) and to onboard.
    kickoff_seconds: float | None = None
    training_seconds: float | None = None
    adoption_seconds: float | None = None
    completion_review_seconds: float | None = None
    onboard_seconds: float | None = None
    # The newest timeline entry applied: an older or repeated one changes nothing.
    last_seq: int = 0


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_assignee_state", "assignee", "state"),)

    task_id: str = Field(primary_key=True, max_length=100)
    customer_id: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=64)
    assignee: str = Field(max_length=320)
    title: str = Field(max_length=500)
    detail: str = _text()
    state: str = Field(default="open", max_length=16)  # "open" or "done"
    opened_at: datetime = _instant()
    due_at: datetime | None = _instant(nullable=True)
    closed_at: datetime | None = _instant(nullable=True)
    resolution: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempt_order: int | None = _attempt_order()
    attempt_at: datetime | None = _instant(nullable=True)


class EmailLedgerEntry(SQLModel, table=True):
    """One email to one recipient, so a retried send does not send it twice.

    The key includes the customer: the workflow's ledger keys (e.g. "stall:1:proposal")
    are unique per customer only, and one person may be a contact of two customers.
    """

    __tablename__ = "email_ledger"

    customer_id: str = Field(primary_key=True, max_length=64)
    ledger_key: str = Field(primary_key=True, max_length=200)
    recipient: str = Field(primary_key=True, max_length=320)
    template: str = Field(max_length=100)
    # "sending", "sent", "failed", or "opted_out" (the recipient left the email's category).
    status: str = Field(default="sending", max_length=16)
    message_id: str | None = Field(default=None, max_length=500)
    created_at: datetime = _instant()
    sent_at: datetime | None = _instant(nullable=True)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # What the provider last reported for this message ("delivered", "open", "bounce", ...).
    last_event: str | None = Field(default=None, max_length=32)
    last_event_at: datetime | None = _instant(nullable=True)
    # With scheduled sends on: the batch the latest attempt went under and when it is
    # due out, so a retry after a crash can cancel it before sending again.
    batch_id: str | None = Field(default=None, max_length=100)
    send_at: datetime | None = _instant(nullable=True)


class WithdrawnBatch(SQLModel, table=True):
    """A scheduled batch cancelled because its attempt may have crashed after handing it
    over. SendGrid holds at most 10 cancellations at once: each is forgotten (deleted
    there) once its send time has passed and its messages are discarded."""

    __tablename__ = "withdrawn_batches"

    batch_id: str = Field(primary_key=True, max_length=100)
    customer_id: str = Field(max_length=64)
    ledger_key: str = Field(max_length=200)
    recipient: str = Field(max_length=320)
    send_at: datetime = _instant()
    withdrawn_at: datetime = _instant()
    forgotten_at: datetime | None = _instant(nullable=True)


class EmailEvent(SQLModel, table=True):
    """One event from the provider's webhook, stored once: sg_event_id is the dedupe key.

    customer_id and ledger_key come from the message's custom_args; they are None
    when the event carried none (unmatched events are kept for whoever investigates).
    """

    __tablename__ = "email_events"
    # Engagement in the weekly measurement scans one customer's events by time.
    __table_args__ = (Index("ix_email_events_customer_occurred", "customer_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    sg_event_id: str = Field(max_length=200, unique=True)
    customer_id: str | None = Field(default=None, max_length=64)
    ledger_key: str | None = Field(default=None, max_length=200)
    recipient: str = Field(max_length=320)
    event: str = Field(max_length=32)
    occurred_at: datetime = _instant()
    # Opens fetched by a mail client's privacy proxy (sg_machine_open), not by a person.
    machine_open: bool = False
    url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    raw: dict[str, Any] = _json()
    received_at: datetime = _instant()


class ApiToken(SQLModel, table=True):
    """An HTTP API token. Only its SHA-256 is stored; the token is shown once, at creation.

    Tokens are 256 random bits, so a fast hash is enough: there is nothing to guess.
    """

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=16)  # "csm", "lead", "ops" or "ingest"
    # A CSM token acts for this CSM: their customers only.
    csm: str | None = Field(default=None, max_length=320)
    token_hash: str = Field(max_length=64, unique=True)
    # The token's first characters, so a person can tell tokens apart in a list.
    prefix: str = Field(max_length=16)
    created_at: datetime = _instant()
    revoked_at: datetime | None = _instant(nullable=True)
    last_used_at: datetime | None = _instant(nullable=True)


class DashboardSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random id; only its SHA-256 is stored.
    Signing out ends it; revoking its token ends it too."""

    __tablename__ = "dashboard_sessions"

    id_hash: str = Field(primary_key=True, max_length=64)
    token_id: int = Field(foreign_key="api_tokens.id", index=True)
    created_at: datetime = _instant()
    expires_at: datetime = _instant()
    ended_at: datetime | None = _instant(nullable=True)


class UsageUser(SQLModel, table=True):
    """Which customer a product user belongs to, learnt from Segment identify and group calls."""

    __tablename__ = "usage_users"

    user_id: str = Field(primary_key=True, max_length=200)
    customer_id: str = Field(max_length=64, index=True)
    # Of identify calls (email, role, name...), merged and bounded (records/usage/store.py).
    traits: dict[str, Any] = _json()
    # Of the group calls that tied the user to the customer (migration 0006).
    group_traits: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    updated_at: datetime = _instant()


class UnmatchedUsage(SQLModel, table=True):
    """Intake that named no known customer: counted and reported, kept for a later replay."""

    __tablename__ = "unmatched_usage"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = _instant(index=True)
    kind: str = Field(max_length=16)  # "track", "identify", "group", "page", "csv"
    # Indexed: an identify call waits here for the call tying its user (migration 0006).
    user_id: str | None = Field(default=None, max_length=200, index=True)
    group_id: str | None = Field(default=None, max_length=200)
    reason: str = _text()
    raw: dict[str, Any] = _json()
    # The key the event would be stored under (messageId, CSV event_key): a resent call
    # is kept once.
    event_key: str | None = Field(default=None, max_length=200, unique=True)


class RejectedUsage(SQLModel, table=True):
    """Intake a client sent that could not be taken, for an operator to see (Segment
    clients discard the HTTP reply). One row per reason per request, so the table's
    growth is bounded by requests, not calls; records/usage/rejected.py prunes it."""

    __tablename__ = "rejected_usage"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = _instant(index=True)
    # The door it came through: "/v1/batch", "/v1/track", "/api/usage/csv"...
    endpoint: str = Field(max_length=32)
    reason: str = Field(max_length=300)
    # Calls (or CSV rows) of the request refused for this reason.
    calls: int = 1
    # The first one's position: call index from 0, or CSV line.
    first_index: int | None = None
    # The first one as JSON text, cut short; the write key is never kept.
    excerpt: str = _text()


class OutcomeEventRecord(SQLModel, table=True):
    """A renewal, churn, expansion or contraction another system reported
    (models/outcomes.py); (customer, kind, day) is its natural key."""

    __tablename__ = "outcome_events"
    __table_args__ = (
        UniqueConstraint("customer_id", "kind", "occurred_on", name="uq_outcome_events_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=16)
    occurred_on: date
    arr: float | None = None
    currency: str | None = Field(default=None, max_length=3)
    source: str = Field(default="", max_length=64)
    note: str = _text()
    recorded_at: datetime = _instant()


class HealthScoreRecord(SQLModel, table=True):
    """One health score from a feed; (customer, day, source) is its natural key."""

    __tablename__ = "health_scores"

    customer_id: str = Field(primary_key=True, max_length=64)
    scored_on: date = Field(primary_key=True)
    source: str = Field(primary_key=True, max_length=64)
    score: float
    recorded_at: datetime = _instant()


class SurveyAnswer(SQLModel, table=True):
    """One person's NPS answer at one touchpoint (records/surveys.py): from a survey
    email's score link or recorded by the CSM at the completion review. The first
    answer per (customer, touchpoint, email) stands: a link is usable once."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        UniqueConstraint("customer_id", "touchpoint", "email", name="uq_survey_answers_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64, index=True)
    touchpoint: str = Field(max_length=32)
    email: str = Field(max_length=320)
    # The contact's role; "" when the address is no contact of the customer.
    role: str = Field(default="", max_length=32)
    score: int
    comment: str = _text()
    answered_at: datetime = _instant()
    commented_at: datetime | None = _instant(nullable=True)
    # "link" (a survey email) or "completion_review" (what the CSM recorded).
    source: str = Field(max_length=24)


class PlaybookVersionRecord(SQLModel, table=True):
    """A playbook as first used to start or migrate a customer, kept whole so versions
    can be listed, diffed and migrated to (records/playbook_versions.py). The content's
    hash is the key: the same file started again records nothing new. A version names
    one content: another content under it is refused (migration 0015)."""

    __tablename__ = "playbook_versions"

    content_hash: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    version: str = Field(max_length=64, index=True, unique=True)
    # Where it came from: the file's name, or "api" for the API server's playbook.
    source: str = Field(max_length=255)
    first_used_at: datetime = _instant()
    content: dict[str, Any] = _json()


class EmailOptOut(SQLModel, table=True):
    """Whether one contact left one category of a customer's emails (records/email_opt_outs.py).

    A resubscribe keeps the row with `opted_out` false, so the CSM sees when it
    happened, and a change older than the row's `changed_at` (a provider's event that
    arrives late) does not undo a newer one."""

    __tablename__ = "email_opt_outs"

    customer_id: str = Field(primary_key=True, max_length=64)
    email: str = Field(primary_key=True, max_length=320)
    # models.email_categories.EmailCategory, never "operational".
    category: str = Field(primary_key=True, max_length=16)
    opted_out: bool
    changed_at: datetime = _instant()
    # Who made the change: records.email_opt_outs.Source.
    source: str = Field(max_length=24)


class StoredPayload(SQLModel, table=True):
    """A Temporal payload kept here instead of in workflow histories, under the SHA-256 of
    its bytes (client/payload_storage.py): a playbook many customers follow is one row.
    Rows are never changed, and kept as long as any history may name them."""

    __tablename__ = "stored_payloads"

    sha256: str = Field(primary_key=True, max_length=64)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    stored_at: datetime = _instant()


ALL_TABLES = (
    Customer,
    CustomerContact,
    UsageEvent,
    WeeklyMeasurementRecord,
    TimelineEntry,
    CustomerProjection,
    Task,
    EmailLedgerEntry,
    EmailEvent,
    ApiToken,
    DashboardSession,
    UsageUser,
    UnmatchedUsage,
    RejectedUsage,
    OutcomeEventRecord,
    HealthScoreRecord,
    SurveyAnswer,
    PlaybookVersionRecord,
    EmailOptOut,
    StoredPayload,
)
