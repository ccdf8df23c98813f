"""The playbook: the onboarding "kata" as data that CS operations edits.

A customer's workflow receives the whole validated playbook in its input and
keeps it across continue-as-new, so a later edit of the file never changes a
running journey.
"""

from __future__ import annotations

import difflib
import re
from datetime import time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from models import limits
from models.handoff import Role
from models.text import shorten

_DURATION = re.compile(
    r"^\s*(?:(?P<w>\d+)\s*w)?\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?"
    r"\s*(?:(?P<m>\d+)\s*m)?\s*(?:(?P<s>\d+)\s*s)?\s*$"
)


def parse_duration(value: Any) -> Any:
    """Accept "14d", "2w", "1d12h", "90s" besides what pydantic takes (ISO 8601, seconds)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groupdict().values()):
            parts = {k: int(v) for k, v in match.groupdict().items() if v}
            try:
                return timedelta(
                    weeks=parts.get("w", 0),
                    days=parts.get("d", 0),
                    hours=parts.get("h", 0),
                    minutes=parts.get("m", 0),
                    seconds=parts.get("s", 0),
                )
            except OverflowError:
                # A refusal naming the field, not an error nobody catches.
                raise ValueError(f"duration {value.strip()!r} is too long") from None
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

# The validation context of a playbook file (records/playbooks.py): the checks a file
# must pass and a playbook inside an older workflow history need not.
FROM_FILE = "from_file"


class PlaybookPart(BaseModel):
    """A section of the playbook. Read from a file, a key the section does not know, a
    typo most likely, is refused by name: ignored, `only_if_key_action_below` would send
    the step to everyone. Playbooks inside workflow histories are read without the check,
    so a key removed in a later version of Liftoff never fails an old history."""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any, info: ValidationInfo) -> Any:
        if not (isinstance(data, dict) and info.context and info.context.get(FROM_FILE)):
            return data
        known = set(cls.model_fields) | {
            field.alias for field in cls.model_fields.values() if field.alias
        }
        unknown = [str(key) for key in data if key not in known]
        if unknown:
            raise ValueError("; ".join(_unknown_key(key, known) for key in unknown[:5]))
        return data


def _unknown_key(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {shorten(key, 60)!r}{hint}"


_BUSINESS_DAYS = re.compile(r"^\s*(?P<n>\d+)\s*(?:bd|business\s+days?)\s*$", re.IGNORECASE)


class BusinessDays(PlaybookPart):
    """A wait counted in business days on the customer's clock: weekends and its
    country's public holidays do not count (workflows/clocks.py places it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: int = Field(ge=1, le=limits.BUSINESS_DAYS_MAX)
    business: Literal[True] = True

    def __str__(self) -> str:
        return f"{self.days} business day{'s' if self.days != 1 else ''}"


def parse_clock(value: Any) -> Any:
    """Accept "5 business days" or "5bd" besides every form `parse_duration` takes,
    refusing anything else in one sentence (not pydantic's two, one per union arm)."""
    if isinstance(value, BusinessDays | timedelta):
        return value
    if isinstance(value, dict) and value.get("business") is True:
        return _business_days(value.get("days"), value)
    if isinstance(value, str):
        match = _BUSINESS_DAYS.match(value)
        if match:
            return _business_days(int(match["n"]), value)
        if re.search(r"business|\dbd\b", value, re.IGNORECASE):
            raise ValueError(f'not a business-day count: {value!r}; write e.g. "5 business days"')
    try:
        return _TIMEDELTA.validate_python(parse_duration(value))
    except ValidationError:
        raise ValueError(
            f'not a duration: {value!r}; write e.g. "7d", "36h" or "5 business days"'
        ) from None


def _business_days(days: Any, written: Any) -> BusinessDays:
    if not isinstance(days, int) or not 1 <= days <= limits.BUSINESS_DAYS_MAX:
        raise ValueError(
            f"{written!r}: business days must be a whole number from 1 to "
            f"{limits.BUSINESS_DAYS_MAX}"
        )
    return BusinessDays(days=days)


_TIMEDELTA = TypeAdapter(timedelta)


# A playbook wait that may count business days ("5 business days") or elapsed time
# ("7d", "36h"). Stored as {"days": 5, "business": true} or as before (ISO 8601), so
# playbooks pinned in running workflows still load.
Clock = Annotated[BusinessDays | timedelta, BeforeValidator(parse_clock)]


def shortest(clock: BusinessDays | timedelta) -> timedelta:
    """The least time a clock can take: N business days take at least N days."""
    return timedelta(days=clock.days) if isinstance(clock, BusinessDays) else clock


class StageTimer(PlaybookPart):
    """Service level of a wait: remind the CSM, then escalate to the CS leader."""

    remind_csm_after: Clock
    escalate_to_leader_after: Clock

    @model_validator(mode="after")
    def _escalation_after_reminder(self) -> StageTimer:
        remind, escalate = self.remind_csm_after, self.escalate_to_leader_after
        if isinstance(remind, BusinessDays) != isinstance(escalate, BusinessDays):
            # Which comes first would depend on the weekday and the holidays.
            raise ValueError(
                "remind_csm_after and escalate_to_leader_after must both count business "
                "days or both count time"
            )
        if shortest(escalate) <= shortest(remind):
            raise ValueError("escalate_to_leader_after must be later than remind_csm_after")
        return self


class StageTimers(PlaybookPart):
    kickoff: StageTimer
    training: StageTimer
    completion_review: StageTimer


class TaskPolicy(PlaybookPart):
    """When a task the workflow opens falls due, counted from when it opens; a task
    still open then gets one overdue reminder. A stage's scheduling task is due when
    the stage's reminder fires instead."""

    due_after: Clock = BusinessDays(days=3)
    # An on-demand meeting request (poor progress, momentum, the customer asked).
    meeting_due_after: Clock = BusinessDays(days=5)


class TrainingPolicy(PlaybookPart):
    skip_if_trial_used: bool = True
    skip_if_already_using: bool = True


DEFAULT_GRACE_PER_WEEK = timedelta(hours=6)


class MeasurementPolicy(PlaybookPart):
    """When the weekly measurement runs, in the customer's own time zone."""

    every: Duration = timedelta(days=7)
    # Measure on this weekday (0 = Monday) at this local hour; without alignment
    # the first measurement comes `every` after adoption starts (compressed demos).
    align_to_weekday: bool = True
    weekday: int = Field(default=0, ge=0, le=6)
    local_hour: int = Field(default=9, ge=0, le=23)
    # Usage that occurred in the week and arrives up to this late (clients batch and
    # retry, phones come back online) still counts in the week's verdict: the week
    # is judged this long after it ends. What arrives later is reported as late.
    # Unset (as in playbooks pinned before it existed): see `grace_period`.
    grace: Duration | None = None

    @model_validator(mode="after")
    def _grace_within_the_week(self) -> MeasurementPolicy:
        if self.grace is not None and not timedelta(0) <= self.grace < self.every:
            raise ValueError("measurement.grace must be at least 0 and shorter than every")
        return self

    @property
    def grace_period(self) -> timedelta:
        """The grace, or by default 6 hours a week: the same share of any other period."""
        if self.grace is not None:
            return self.grace
        return self.every * (DEFAULT_GRACE_PER_WEEK / timedelta(weeks=1))


class Metric(StrEnum):
    ACTIVE_SEAT_RATIO = "active_seat_ratio"
    ACTIVE_USERS = "active_users"
    KEY_ACTIONS = "key_actions"
    EVENTS = "events"
    QUOTA_CONSUMPTION = "quota_consumption"
    GOALS_AGREED = "goals_agreed"
    EMAIL_OPENS = "email_opens"
    EMAIL_CLICKS = "email_clicks"


# Measured as a share, capped at 1 (activities/measure.py): a threshold above is never met.
RATIO_METRICS = frozenset({Metric.ACTIVE_SEAT_RATIO})


class Condition(PlaybookPart):
    """A metric compared with a threshold, that must hold `weeks` weeks running."""

    metric: Metric
    weeks: int = Field(default=1, ge=1, le=12)
    # For key_actions: one purpose's key action; None sums the customer's purposes.
    purpose: str | None = Field(default=None, max_length=limits.PURPOSE_ID_CHARS)

    @property
    def threshold(self) -> float:
        raise NotImplementedError

    def holds(self, observed: float) -> bool:
        raise NotImplementedError


class Criterion(Condition):
    """One quantitative condition of "onboarded", e.g. active seats >= 60% for 2 weeks."""

    at_least: float = Field(ge=0)

    @model_validator(mode="after")
    def _reachable(self, info: ValidationInfo) -> Criterion:
        if info.context and info.context.get(FROM_FILE):
            if self.metric in RATIO_METRICS and self.at_least > 1:
                raise ValueError(
                    f"{self.metric.value} is at most 1; at_least {self.at_least:g} is never met"
                )
        return self

    @property
    def threshold(self) -> float:
        return self.at_least

    def holds(self, observed: float) -> bool:
        return observed >= self.at_least


class StallRule(Condition):
    """Usage counts as stalled while the metric stays below the threshold."""

    below: float = Field(gt=0)

    @property
    def threshold(self) -> float:
        return self.below

    def holds(self, observed: float) -> bool:
        return observed < self.below


class LadderStep(PlaybookPart):
    action: Literal["proposal_email", "csm_task", "leader_task"]
    # Weeks the stall has lasted before this step fires (0: the week it starts).
    after_weeks: int = Field(default=0, ge=0)


class StallPolicy(PlaybookPart):
    rules: list[StallRule] = Field(min_length=1, max_length=limits.PLAYBOOK_ITEMS)
    ladder: list[LadderStep] = Field(min_length=1, max_length=limits.PLAYBOOK_ITEMS)
    open_meeting_request: bool = True

    @model_validator(mode="after")
    def _ladder_in_order(self) -> StallPolicy:
        weeks = [step.after_weeks for step in self.ladder]
        if weeks != sorted(weeks):
            raise ValueError("ladder steps must be ordered by after_weeks")
        return self


class SetupPolicy(PlaybookPart):
    """A customer whose usage data never arrives is stuck in setup, not merely slow."""

    no_data_after: Duration
    escalate_to_leader_after: Duration

    @model_validator(mode="after")
    def _escalation_after_flag(self) -> SetupPolicy:
        if self.escalate_to_leader_after <= self.no_data_after:
            raise ValueError("setup.escalate_to_leader_after must be later than no_data_after")
        return self


_STEP_ID = r"^[A-Za-z0-9_-]{1,40}$"
_TEMPLATE = r"^[a-z0-9_]{1,60}$"


class CampaignStep(PlaybookPart):
    """One step email of a purpose's sequence, to the contacts holding some roles."""

    id: str = Field(pattern=_STEP_ID)
    # templates/email/<template>[.<role>].<locale>.{txt,html}
    template: str = Field(pattern=_TEMPLATE)
    roles: list[Role] = Field(min_length=1, max_length=len(Role))
    # "purpose": sent `after_business_days` after the purpose was adopted (or
    # adoption began, if later). "stall": the proposal the stall ladder's
    # proposal_email rung sends while this purpose's key action is stuck.
    trigger: Literal["purpose", "stall"] = "purpose"
    # The stage whose start the offset counts from (or the day the purpose was
    # added, if later). A kickoff or training step lapses when its stage ends.
    starts_at: Literal["kickoff", "training", "adoption"] = "adoption"
    after_business_days: int = Field(default=0, ge=0, le=120)
    # Text written for this purpose and step, per locale, given to the template as `note`.
    note: dict[
        Annotated[str, Field(max_length=limits.ZONE_CHARS)],
        Annotated[str, Field(max_length=limits.NOTE_CHARS)],
    ] = Field(default_factory=dict, max_length=limits.PLAYBOOK_ITEMS)
    # Only sent while last week's key actions of the purpose stay below this.
    only_if_key_actions_below: int | None = Field(default=None, ge=1)
    # A step common to several purposes goes out once per customer, not per purpose.
    shared: bool = False

    @model_validator(mode="after")
    def _stall_steps_start_with_the_stall(self) -> CampaignStep:
        if self.trigger == "stall" and self.starts_at != "adoption":
            raise ValueError(f"step {self.id}: a stall step is sent by the stall, not at a stage")
        return self


class Purpose(PlaybookPart):
    """Why a customer adopts the product; each has its key action and outcome."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    title: str = Field(max_length=limits.NAME_CHARS)
    # The title in the customer's language where it is not `title`'s: `titles.ja = "..."`.
    titles: dict[
        Annotated[str, Field(max_length=limits.ZONE_CHARS)],
        Annotated[str, Field(max_length=limits.NAME_CHARS)],
    ] = Field(default_factory=dict, max_length=limits.PLAYBOOK_ITEMS)
    key_action: str = Field(min_length=1, max_length=limits.EVENT_NAME_CHARS)
    outcome: str = Field(default="", max_length=limits.LINE_CHARS)
    # Weekly key actions at which the purpose's goal is reached: the rest of its
    # sequence is skipped.
    goal_key_actions: int | None = Field(default=None, ge=1)
    steps: list[CampaignStep] = Field(default_factory=list, max_length=limits.PLAYBOOK_ITEMS)

    def title_in(self, locale: str) -> str:
        """The title a customer speaking `locale` reads."""
        return self.titles.get(locale, self.title)

    @model_validator(mode="after")
    def _unique_steps(self) -> Purpose:
        ids = [step.id for step in self.steps]
        if len(ids) != len(set(ids)):
            raise ValueError(f"purpose {self.id}: step ids must be unique")
        return self


class ChoosePurposeStep(PlaybookPart):
    """Asks a customer that holds no purpose yet to choose one."""

    template: str = Field(default="choose_purpose", pattern=_TEMPLATE)
    roles: list[Role] = Field(
        default=[Role.DECISION_MAKER, Role.ADMINISTRATOR], min_length=1, max_length=len(Role)
    )
    after_business_days: int = Field(default=1, ge=0, le=120)


class CampaignPolicy(PlaybookPart):
    """When purpose step emails may reach a customer's people."""

    send_window_opens: time = time(9, 0)
    send_window_closes: time = time(18, 0)
    # Locale -> country (ISO 3166) whose public holidays are not business days.
    holiday_calendars: dict[
        Annotated[str, Field(max_length=limits.ZONE_CHARS)],
        Annotated[str, Field(pattern=r"^[A-Z]{2}$")],
    ] = Field(default_factory=lambda: {"ja": "JP"}, max_length=limits.PLAYBOOK_ITEMS)
    # Weekdays that are not business days (Monday is 0).
    weekend: list[Annotated[int, Field(ge=0, le=6)]] = Field(default=[5, 6], max_length=6)
    # Campaign emails a contact receives per local day, at most; escalations are apart.
    daily_cap: int = Field(default=1, ge=1, le=10)
    choose_purpose: ChoosePurposeStep | None = ChoosePurposeStep()

    @model_validator(mode="after")
    def _window_in_order(self) -> CampaignPolicy:
        if self.send_window_opens >= self.send_window_closes:
            raise ValueError("send_window_opens must be earlier than send_window_closes")
        return self


class Touchpoint(StrEnum):
    """Where in the journey the customer's people are asked how likely they are to
    recommend the product (NPS): right after the event the CSM records."""

    AFTER_KICKOFF = "after_kickoff"
    AFTER_TRAINING = "after_training"
    AT_COMPLETION_REVIEW = "at_completion_review"


DEFAULT_SURVEY_VALIDITY = timedelta(days=14)


class SurveyPolicy(PlaybookPart):
    """Short NPS survey emails: which roles each touchpoint asks, with one-click score
    links (0 to 10) that stay valid `valid_for` and count once per person."""

    # templates/email/<template>[.<role>].<locale>.{txt,html}
    template: str = Field(default="nps_survey", pattern=_TEMPLATE)
    valid_for: Duration = DEFAULT_SURVEY_VALIDITY
    touchpoints: dict[Touchpoint, list[Role]] = Field(min_length=1, max_length=len(Touchpoint))

    @model_validator(mode="after")
    def _sensible(self) -> SurveyPolicy:
        longest = timedelta(days=limits.SURVEY_LINK_DAYS_MAX)
        if not timedelta(minutes=1) <= self.valid_for <= longest:
            raise ValueError(
                f"surveys.valid_for must be between 1 minute and {limits.SURVEY_LINK_DAYS_MAX} days"
            )
        for touchpoint, roles in self.touchpoints.items():
            if not roles or len(roles) != len(set(roles)):
                raise ValueError(
                    f"surveys.touchpoints.{touchpoint.value} must name each role once, at least one"
                )
        return self


class ReviewPolicy(PlaybookPart):
    """When the CS leader is asked to review this version: after this many of its
    customers finished (onboarded, failed or cancelled)."""

    after_finished: int = Field(
        default=limits.REVIEW_AFTER_DEFAULT, ge=1, le=limits.REVIEW_AFTER_MAX
    )


class Playbook(PlaybookPart):
    name: str = Field(min_length=1, max_length=limits.NAME_CHARS)
    version: str = Field(min_length=1, max_length=limits.VERSION_CHARS)
    onboarded_definition: str = Field(min_length=1, max_length=limits.NOTE_CHARS)
    timers: StageTimers
    tasks: TaskPolicy = TaskPolicy()
    training: TrainingPolicy = TrainingPolicy()
    measurement: MeasurementPolicy = MeasurementPolicy()
    completion_criteria: list[Criterion] = Field(min_length=1, max_length=limits.PLAYBOOK_ITEMS)
    stall: StallPolicy
    setup: SetupPolicy
    # Onboarding longer than this gets a momentum meeting request.
    momentum_after: Duration
    # Not onboarded by then: failed.
    deadline: Duration
    # Usage event whose quantity counts toward the contracted quota, if any.
    quota_event: str | None = Field(default=None, max_length=limits.EVENT_NAME_CHARS)
    purposes: list[Purpose] = Field(min_length=1, max_length=limits.PLAYBOOK_ITEMS)
    # Purpose step emails; without it a playbook sends only tasks and escalations.
    campaign: CampaignPolicy | None = None
    # NPS survey emails at touchpoints; without it no survey is sent.
    surveys: SurveyPolicy | None = None
    # The playbook review: a task for the CS leader with the review report.
    review: ReviewPolicy = ReviewPolicy()

    @model_validator(mode="after")
    def _consistent(self) -> Playbook:
        ids = [purpose.id for purpose in self.purposes]
        if len(ids) != len(set(ids)):
            raise ValueError("purpose ids must be unique")
        referenced = [c.purpose for c in self.completion_criteria] + [
            r.purpose for r in self.stall.rules
        ]
        unknown = sorted({p for p in referenced if p is not None and p not in ids})
        if unknown:
            raise ValueError(f"criteria name unknown purposes: {', '.join(unknown)}")
        if self.momentum_after >= self.deadline:
            raise ValueError("momentum_after must be earlier than deadline")
        return self

    def purpose(self, purpose_id: str) -> Purpose | None:
        return next((p for p in self.purposes if p.id == purpose_id), None)


class PlaybookError(ValueError):
    """A playbook file that cannot be used, with every problem in one message."""
