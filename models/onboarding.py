"""The state of one customer's onboarding, as the workflow keeps and reports it."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from models.events import EVENT_MODELS, MeetingKind, NpsAnswer
from models.handoff import Contact, CustomerHandoff
from models.overrides import CustomerOverrides, OverriddenValue
from models.playbook import Metric, Playbook


class Stage(StrEnum):
    HANDOFF = "handoff"
    KICKOFF = "kickoff"
    TRAINING = "training"
    ADOPTION = "adoption"
    COMPLETION_REVIEW = "completion_review"
    ONBOARDED = "onboarded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (Stage.ONBOARDED, Stage.FAILED, Stage.CANCELLED)


# The stages a customer moves through, in order; failed and cancelled leave the path.
STAGE_PATH = (
    Stage.HANDOFF,
    Stage.KICKOFF,
    Stage.TRAINING,
    Stage.ADOPTION,
    Stage.COMPLETION_REVIEW,
    Stage.ONBOARDED,
)


class Transition(BaseModel):
    at: datetime
    stage_from: Stage | None
    stage_to: Stage
    cause: str


class Goal(BaseModel):
    text: str
    agreed_at: datetime


class Meeting(BaseModel):
    kind: MeetingKind
    requested_at: datetime | None = None
    held_on: date | None = None
    notes: str = ""


class CompletionReview(BaseModel):
    held_on: date
    success_confirmed: bool
    feedback: str
    feature_requests: list[str]
    nps: list[NpsAnswer]


class TaskKind(StrEnum):
    SCHEDULE_KICKOFF = "schedule_kickoff"
    SCHEDULE_TRAINING = "schedule_training"
    SCHEDULE_COMPLETION_REVIEW = "schedule_completion_review"
    OVERDUE_REMINDER = "overdue_reminder"
    OVERDUE_ESCALATION = "overdue_escalation"
    STALL_FOLLOW_UP = "stall_follow_up"
    STALL_ESCALATION = "stall_escalation"
    SETUP_STUCK = "setup_stuck"
    SETUP_STUCK_ESCALATION = "setup_stuck_escalation"
    MEETING = "meeting"
    DEADLINE_MISSED = "deadline_missed"
    # A write the database refused for good (workflows/effects.py).
    STORE_FAILED = "store_failed"


class OpenTask(BaseModel):
    task_id: str
    kind: TaskKind
    assignee: str
    title: str
    opened_at: datetime
    due_at: datetime | None = None
    # A task tied to a stage closes when that stage ends.
    stage: Stage | None = None
    # What the task is about within its kind, e.g. the meeting kind.
    ref: str | None = None


class DueKind(StrEnum):
    """Everything the workflow waits for by time, kept as absolute instants."""

    REMIND_CSM = "remind_csm"
    ESCALATE_TO_LEADER = "escalate_to_leader"
    MEASURE = "measure"
    MOMENTUM = "momentum"
    DEADLINE = "deadline"
    CAMPAIGN_STEP = "campaign_step"
    # A pause's scheduled end.
    RESUME = "resume"
    # An open task's due date (`ref` is the task id): its one overdue reminder.
    TASK_OVERDUE = "task_overdue"


class Due(BaseModel):
    kind: DueKind
    at: datetime
    # The stage a service-level timer belongs to; it lapses when the stage ends.
    stage: Stage | None = None
    # Which campaign step ("A:welcome", "choose_purpose"), or which task.
    ref: str | None = None
    # A measurement's window ends here; it runs at `at`, the grace period later.
    window_end: datetime | None = None


class WeeklyMeasurement(BaseModel):
    """Usage facts of one measurement window, computed from stored usage."""

    week_index: int
    window_start: datetime
    window_end: datetime
    active_users: int
    active_seat_ratio: float
    events: int
    key_actions: dict[str, int]
    quota_consumption: float | None
    data_ever_arrived: bool
    # Campaign engagement from the provider's events; defaults keep older
    # histories and stored payloads valid.
    email_opens: int = 0
    email_clicks: int = 0
    # Events of earlier windows that arrived after those windows were judged.
    late_events: int = 0


class CriterionVerdict(BaseModel):
    """One criterion's verdict and the facts behind it, so a CSM can see why."""

    metric: Metric
    purpose: str | None
    observed: float
    threshold: float
    weeks_required: int
    weeks_running: int
    # Whether this week's value alone satisfied the condition.
    observed_held: bool
    met: bool


class WeekVerdict(BaseModel):
    measurement: WeeklyMeasurement
    criteria: list[CriterionVerdict]
    criteria_met: bool
    stall_checks: list[CriterionVerdict]
    stalled: bool


class StallState(BaseModel):
    stalled: bool = False
    episode: int = 0
    since: datetime | None = None
    weeks: int = 0
    steps_done: list[int] = Field(default_factory=list)


class SetupState(BaseModel):
    data_arrived: bool = False
    stuck: bool = False
    stuck_since: datetime | None = None
    escalated: bool = False


class HeldDue(BaseModel):
    """An agenda item a pause holds, and since when: on resume it moves by the time
    it was held (workflows/pausing.py)."""

    due: Due
    held_at: datetime


class PauseState(BaseModel):
    since: datetime
    reason: str
    # When a scheduled pause resumes by itself (the agenda's `resume` item).
    resume_at: datetime | None = None
    # The timers and steps that do not fire while paused.
    held: list[HeldDue] = Field(default_factory=list)
    # Tasks opened while paused whose email to the assignee waits for the resume.
    unannounced: list[str] = Field(default_factory=list)
    # Events passing a survey touchpoint while paused: their survey waits for the resume.
    surveys_held: list[str] = Field(default_factory=list)


class RejectedEvent(BaseModel):
    at: datetime
    kind: str
    reason: str


class OnboardingState(BaseModel):
    """Everything the workflow carries across continue-as-new."""

    stage: Stage = Stage.HANDOFF
    stage_since: datetime | None = None
    started_at: datetime | None = None
    transitions: list[Transition] = Field(default_factory=list)
    goals: list[Goal] = Field(default_factory=list)
    purposes: list[str] = Field(default_factory=list)
    added_contacts: list[Contact] = Field(default_factory=list)
    kickoff_held_on: date | None = None
    training_held_on: date | None = None
    training_skipped_reason: str | None = None
    meetings: list[Meeting] = Field(default_factory=list)
    review: CompletionReview | None = None
    adoption_started_at: datetime | None = None
    week_index: int = 0
    last_measured_at: datetime | None = None
    recent_weeks: list[WeekVerdict] = Field(default_factory=list)
    stall: StallState = StallState()
    setup: SetupState = SetupState()
    momentum_requested: bool = False
    # What differs from the pinned playbook for this customer (models/overrides.py).
    overrides: CustomerOverrides | None = None
    # Set while the onboarding is paused (a `paused` event until `resumed`).
    pause: PauseState | None = None
    # Time spent paused, in all and since adoption began (the setup watch's clock).
    paused_seconds: float = 0
    adoption_paused_seconds: float = 0
    # Purposes whose step emails are on the agenda ("choose_purpose" for that step).
    campaign_planned: list[str] = Field(default_factory=list)
    # Campaign steps sent or skipped for good, and shared steps already sent.
    campaign_done: list[str] = Field(default_factory=list)
    shared_steps_sent: list[str] = Field(default_factory=list)
    # Campaign emails per role on the customer's current local day (the daily cap).
    campaign_day: date | None = None
    campaign_sends_today: dict[str, int] = Field(default_factory=dict)
    # The customer's public holidays for `holiday_years`, as fetched when first needed.
    holiday_years: list[int] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)
    open_tasks: list[OpenTask] = Field(default_factory=list)
    agenda: list[Due] = Field(default_factory=list)
    seen_event_ids: list[str] = Field(default_factory=list)
    rejected: list[RejectedEvent] = Field(default_factory=list)
    # Side effects that failed for good (e.g. an email the provider refused).
    failures: list[str] = Field(default_factory=list)
    # Sequence of timeline entries written, the idempotency key of each write.
    timeline_seq: int = 0
    task_seq: int = 0
    runs: int = 1


class TimelineRecord(BaseModel):
    """One timeline entry as the workflow writes it; `seq` is its idempotency key."""

    seq: int
    at: datetime
    kind: str
    stage: Stage
    summary: str
    details: dict[str, Any]


class OnboardingInput(BaseModel):
    handoff: CustomerHandoff
    # None when the playbook travels as the workflow's second argument, a payload of its
    # own that can be stored by reference (client/payload_storage.py).
    playbook: Playbook | None = None
    state: OnboardingState | None = None
    # Continue-as-new once history reaches this many events, besides when
    # Temporal suggests it; small values prove the boundary in tests.
    max_history_events: int | None = Field(default=None, ge=100)


class OnboardingStatus(BaseModel):
    customer_id: str
    customer_name: str
    csm: str
    cs_leader: str
    # The customer's IANA zone, from the handoff: its people's clock.
    time_zone: str = "UTC"
    # Purpose id -> title in the playbook version the customer is pinned to.
    purpose_catalogue: dict[str, str] = Field(default_factory=dict)
    playbook_name: str
    playbook_version: str
    state: OnboardingState
    # Each of the customer's overrides beside the pinned playbook's value.
    overridden: list[OverriddenValue] = Field(default_factory=list)
    next_due: Due | None
    # Activities queued or running (timeline, tasks, email): 0 once all is written.
    pending_side_effects: int = 0
    # Timeline entries queued and not yet stored: a page merges them with the stored
    # rows by seq, so it shows a change the moment the workflow has made it.
    unwritten_timeline: list[TimelineRecord] = Field(default_factory=list)


class OnboardingResult(BaseModel):
    """What a finished onboarding returns: how and when it ended. The whole status of an
    ended customer stays readable: the status query answers while Temporal keeps the
    history, and the records (timeline, projection) keep it after."""

    customer_id: str
    stage: Stage
    ended_at: datetime
    playbook_name: str
    playbook_version: str
    # Its runs, this one included: more than one when it continued as new.
    runs: int = 1


class EventResult(BaseModel):
    """What an accepted CSM command changed, returned to the caller."""

    kind: str
    stage: Stage
    duplicate: bool = False
    detail: str = ""


TimelineDetails = dict[str, Any]


class TimelineKind(StrEnum):
    """What a timeline entry records besides a CSM event (whose kind is its own)."""

    TRANSITION = "transition"
    WEEKLY_MEASUREMENT = "weekly_measurement"
    TASK_OPENED = "task_opened"
    EVENT_REJECTED = "event_rejected"
    EMAIL_FAILED = "email_failed"
    # Recipients left out of an email because they opted out of its category.
    EMAIL_OPTED_OUT = "email_opted_out"
    CAMPAIGN_STEP_SENT = "campaign_step_sent"
    CAMPAIGN_STEP_SKIPPED = "campaign_step_skipped"
    STALL_STARTED = "stall_started"
    STALL_PROPOSAL = "stall_proposal"
    STALL_CLEARED = "stall_cleared"
    SETUP_STUCK = "setup_stuck"
    SETUP_UNSTUCK = "setup_unstuck"
    # A week measured while paused: its facts, no verdict acted on.
    PAUSED_MEASUREMENT = "paused_measurement"
    STORE_FAILED = "store_failed"
    # The customer moved to another playbook version (workflows/migration.py).
    PLAYBOOK_MIGRATED = "playbook_migrated"
    # A CSM or lead adjusted the customer's playbook values (models/overrides.py).
    OVERRIDES_SET = "overrides_set"
    # A task the workflow opened is past its due date and still open.
    TASK_OVERDUE = "task_overdue"


# Every kind an entry can have, so a filter refuses a misspelt kind instead of
# answering "nothing recorded".
TIMELINE_KINDS: tuple[str, ...] = (*TimelineKind, *EVENT_MODELS)
