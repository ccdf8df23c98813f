"""One customer's adjustments of its playbook: the kata "applied to every customer,
adjusted per customer".

A CSM or lead sets them with a reason; the workflow keeps them in its state (so they
cross continue-as-new) and follows `effective(pinned, overrides)`: the pinned playbook
with each override applied and validated by the playbook's own schema. An override
naming a criterion, stage or step the playbook lacks is refused with a sentence
naming it, and so is one the playbook's rules refuse (an escalation before its
reminder, a deadline before the momentum meeting).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models import limits
from models.handoff import CustomerHandoff
from models.playbook import (
    RATIO_METRICS,
    BusinessDays,
    Clock,
    Condition,
    Criterion,
    Playbook,
    StageTimer,
    shortest,
)
from models.text import ReasonedRequest

# The stages with a service-level timer, as the playbook's `[timers.<stage>]` names them.
TIMED_STAGES = ("kickoff", "training", "completion_review")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_LONGEST_TIMER = timedelta(days=limits.OVERRIDE_TIMER_DAYS)
_NAME = Annotated[str, Field(min_length=1, max_length=limits.NAME_CHARS)]
# "<purpose>:<step>", as the timeline names a step email ("A:welcome").
_STEP_REF = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9_-]{1,40}$")]


class OverridesError(ValueError):
    """Overrides this playbook cannot take, said in one sentence."""


class StageTimerOverride(BaseModel):
    """A stage's reminder and escalation for this customer; one left out follows the
    playbook (an escalation left out keeps the playbook's gap after the reminder)."""

    model_config = ConfigDict(extra="forbid")

    remind_csm_after: Clock | None = None
    escalate_to_leader_after: Clock | None = None

    @model_validator(mode="after")
    def _sensible(self) -> StageTimerOverride:
        given = [d for d in (self.remind_csm_after, self.escalate_to_leader_after) if d is not None]
        if not given:
            raise ValueError("a stage timer override sets the reminder, the escalation or both")
        # Business days are bounded by their own type (1 to BUSINESS_DAYS_MAX).
        if any(isinstance(d, timedelta) and not timedelta(0) < d <= _LONGEST_TIMER for d in given):
            raise ValueError(
                f"a stage timer must be longer than 0 and at most {limits.OVERRIDE_TIMER_DAYS} days"
            )
        return self


class CustomerOverrides(BaseModel):
    """What differs from the pinned playbook for one customer; all optional."""

    model_config = ConfigDict(extra="forbid")

    # Completion criterion name (`metric` or `metric[purpose]`) -> its `at_least`.
    thresholds: dict[_NAME, float] = Field(default_factory=dict, max_length=limits.PLAYBOOK_ITEMS)
    # Stage (kickoff, training, completion_review) -> its reminder and escalation.
    timers: dict[_NAME, StageTimerOverride] = Field(
        default_factory=dict, max_length=len(TIMED_STAGES)
    )
    # The weekly measurement's weekday (0 = Monday) and local hour.
    measurement_weekday: int | None = Field(default=None, ge=0, le=6)
    measurement_hour: int | None = Field(default=None, ge=0, le=23)
    # The customer's local day by the end of which it must be onboarded.
    deadline: date | None = Field(default=None, ge=date(2000, 1, 1), le=date(2999, 12, 31))
    # Step emails never sent to this customer, as "<purpose>:<step>".
    skip_steps: list[_STEP_REF] = Field(default_factory=list, max_length=limits.LIST_ITEMS)

    @field_validator("thresholds")
    @classmethod
    def _bounded(cls, value: dict[str, float]) -> dict[str, float]:
        for name, threshold in value.items():
            if not 0 <= threshold <= limits.OVERRIDE_THRESHOLD_MAX:
                raise ValueError(
                    f"threshold {name} must be between 0 and {limits.OVERRIDE_THRESHOLD_MAX:g}"
                )
        return value

    @field_validator("skip_steps")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @property
    def empty(self) -> bool:
        return self == CustomerOverrides()


class OverridesRequest(ReasonedRequest):
    """The update that sets a customer's overrides: the whole set (empty clears them),
    who asks and why."""

    overrides: CustomerOverrides


class OverrideSetting(StrEnum):
    """What an overridden value sets, so a page can name it in its own language."""

    THRESHOLD = "threshold"  # of the criterion in `subject`
    REMIND_CSM_AFTER = "remind_csm_after"  # of the stage in `subject`
    ESCALATE_TO_LEADER_AFTER = "escalate_to_leader_after"  # of the stage in `subject`
    MEASUREMENT_WEEKDAY = "measurement_weekday"
    MEASUREMENT_HOUR = "measurement_hour"
    DEADLINE = "deadline"
    SKIP_STEP = "skip_step"  # the step in `subject`, "<purpose>:<step>"


class OverriddenValue(BaseModel):
    """One overridden value beside the playbook's, in words, for pages and the CLI."""

    # In English, as the CLI and the timeline's summary say it.
    name: str
    playbook: str
    customer: str
    # What `name` says, for a page in another language; None in values from before.
    setting: OverrideSetting | None = None
    subject: str | None = None


# What people type (the CLI's flags, the dashboard's form): each parser raises
# ValueError with a sentence naming the problem.


def parse_threshold(spec: str) -> tuple[str, float]:
    """`NAME=VALUE`, e.g. `active_seat_ratio=0.4`."""
    name, value = _pair(spec, "NAME=VALUE")
    try:
        return name, float(value)
    except ValueError:
        raise ValueError(f"threshold {name}: not a number: {value!r}") from None


def parse_timer(spec: str) -> tuple[str, dict[str, str]]:
    """`STAGE=REMIND[/ESCALATE]`, e.g. `kickoff=5d` or `kickoff=5d/10d`."""
    stage, value = _pair(spec, "STAGE=REMIND[/ESCALATE]")
    remind, _, escalate = value.partition("/")
    timer = {"remind_csm_after": remind.strip()} if remind.strip() else {}
    if escalate.strip():
        timer["escalate_to_leader_after"] = escalate.strip()
    return stage, timer


def parse_weekday(text: str) -> int:
    """`Monday`, `mon` or 0 to 6 (0 = Monday)."""
    value = text.strip().lower()
    if value.isdigit() and int(value) <= 6:
        return int(value)
    for number, name in enumerate(WEEKDAYS):
        if value in (name.lower(), name[:3].lower()):
            return number
    raise ValueError(f"not a weekday: {text!r} (Monday to Sunday, or 0 to 6)")


def _pair(spec: str, form: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"expected {form}, got {spec!r}")
    return name.strip(), value.strip()


def merged(current: CustomerOverrides | None, changes: dict[str, Any]) -> dict[str, Any]:
    """The customer's overrides with `changes` on top: thresholds and timers by name,
    skipped steps added to those already skipped."""
    result = current.model_dump(exclude_defaults=True) if current is not None else {}
    for field, value in changes.items():
        if field in ("thresholds", "timers"):
            result[field] = {**result.get(field, {}), **value}
        elif field == "skip_steps":
            result[field] = list(dict.fromkeys([*result.get(field, []), *value]))
        else:
            result[field] = value
    return result


def unreachable_threshold(thresholds: dict[str, float]) -> str | None:
    """A threshold no measurement can reach, said in a sentence; None if all can be.

    Checked when a CSM asks (the update's validator), never on a replay: an adjustment
    accepted before this check existed keeps being followed."""
    for name, value in thresholds.items():
        if name.partition("[")[0] in RATIO_METRICS and value > 1:
            return f"threshold {name} {value:g} can never be reached: the ratio is at most 1"
    return None


def criterion_name(condition: Condition) -> str:
    return condition.metric.value + (f"[{condition.purpose}]" if condition.purpose else "")


def deadline_at(day: date, time_zone: str) -> datetime:
    """The end of the customer's local `day`: the instant the deadline passes."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(time_zone))


def local_day(now: datetime, time_zone: str) -> date:
    """The customer's date at `now`."""
    return now.astimezone(ZoneInfo(time_zone)).date()


def measured_handoff(
    handoff: CustomerHandoff, overrides: CustomerOverrides | None
) -> CustomerHandoff:
    """The handoff with the overridden measurement weekday, which the handoff's own
    per-customer weekday would otherwise win over."""
    if overrides is None or overrides.measurement_weekday is None:
        return handoff
    return handoff.model_copy(update={"measurement_weekday": overrides.measurement_weekday})


def effective(
    playbook: Playbook,
    overrides: CustomerOverrides | None,
    *,
    started_at: datetime | None = None,
    time_zone: str = "UTC",
) -> Playbook:
    """The playbook with the overrides applied; `OverridesError` names what does not fit.

    A deadline date becomes the duration from `started_at` to the end of that local day.
    """
    if overrides is None or overrides.empty:
        return playbook
    update: dict[str, object] = {}
    if overrides.thresholds:
        update["completion_criteria"] = _thresholds(playbook, overrides.thresholds)
    if overrides.timers:
        update["timers"] = _timers(playbook, overrides.timers)
    if overrides.measurement_weekday is not None or overrides.measurement_hour is not None:
        update["measurement"] = _measurement(playbook, overrides)
    if overrides.deadline is not None:
        if started_at is None:
            raise OverridesError("a deadline date needs the onboarding's start")
        update["deadline"] = _deadline(playbook, overrides.deadline, started_at, time_zone)
    if overrides.skip_steps:
        update["purposes"] = _without_steps(playbook, overrides.skip_steps)
    adjusted = playbook.model_copy(update=update)
    try:
        # The playbook's own schema: every bound and rule a playbook file must meet.
        return Playbook.model_validate(adjusted.model_dump())
    except ValidationError as err:
        first = err.errors()[0]
        raise OverridesError(
            f"playbook {playbook.version} cannot take these overrides: {first['msg']}"
        ) from None


def _thresholds(playbook: Playbook, thresholds: dict[str, float]) -> list[Criterion]:
    names = [criterion_name(c) for c in playbook.completion_criteria]
    for name in thresholds:
        if name not in names:
            raise OverridesError(
                f"playbook {playbook.version} has no completion criterion {name} "
                f"(it has {', '.join(names)})"
            )
        if names.count(name) > 1:
            raise OverridesError(
                f"playbook {playbook.version} has {names.count(name)} criteria named {name}; "
                "adjust the playbook instead"
            )
    return [
        c.model_copy(update={"at_least": thresholds[criterion_name(c)]})
        if criterion_name(c) in thresholds
        else c
        for c in playbook.completion_criteria
    ]


def _timers(playbook: Playbook, timers: dict[str, StageTimerOverride]) -> object:
    changed: dict[str, StageTimer] = {}
    for stage, override in timers.items():
        if stage not in TIMED_STAGES:
            raise OverridesError(
                f"the playbook has no stage timer {stage} (it has {', '.join(TIMED_STAGES)})"
            )
        timer: StageTimer = getattr(playbook.timers, stage)
        remind = override.remind_csm_after
        if remind is None:
            remind = timer.remind_csm_after
        escalate = override.escalate_to_leader_after
        if escalate is None:
            escalate = _keeping_gap(stage, timer, remind)
        if isinstance(remind, BusinessDays) != isinstance(escalate, BusinessDays):
            raise OverridesError(
                f"the {stage} reminder ({duration_text(remind)}) and escalation "
                f"({duration_text(escalate)}) must both count business days or both count time"
            )
        if shortest(escalate) <= shortest(remind):
            raise OverridesError(
                f"the {stage} escalation ({duration_text(escalate)}) must come after its "
                f"reminder ({duration_text(remind)})"
            )
        changed[stage] = StageTimer(remind_csm_after=remind, escalate_to_leader_after=escalate)
    return playbook.timers.model_copy(update=changed)


def _keeping_gap(
    stage: str, timer: StageTimer, remind: BusinessDays | timedelta
) -> BusinessDays | timedelta:
    """The escalation left out: the playbook's gap after the reminder, in its units."""
    old_remind, old_escalate = timer.remind_csm_after, timer.escalate_to_leader_after
    if isinstance(remind, BusinessDays) and isinstance(old_remind, BusinessDays):
        assert isinstance(old_escalate, BusinessDays)  # StageTimer keeps them alike
        return BusinessDays(days=remind.days + old_escalate.days - old_remind.days)
    if isinstance(remind, timedelta) and isinstance(old_remind, timedelta):
        assert isinstance(old_escalate, timedelta)
        return remind + (old_escalate - old_remind)
    counts = "business days" if isinstance(old_remind, BusinessDays) else "time"
    raise OverridesError(
        f"the playbook's {stage} timers count {counts}: give the escalation too when the "
        f"reminder ({duration_text(remind)}) counts otherwise"
    )


def _measurement(playbook: Playbook, overrides: CustomerOverrides) -> object:
    policy = playbook.measurement
    if not policy.align_to_weekday:
        raise OverridesError(
            f"playbook {playbook.version} measures every {duration_text(policy.every)} from "
            "adoption, not on a weekday and hour"
        )
    update: dict[str, int] = {}
    if overrides.measurement_weekday is not None:
        update["weekday"] = overrides.measurement_weekday
    if overrides.measurement_hour is not None:
        update["local_hour"] = overrides.measurement_hour
    return policy.model_copy(update=update)


def _deadline(playbook: Playbook, day: date, started_at: datetime, time_zone: str) -> timedelta:
    deadline = deadline_at(day, time_zone) - started_at
    if deadline > timedelta(days=limits.OVERRIDE_DEADLINE_DAYS):
        raise OverridesError(
            f"the deadline {day} is more than {limits.OVERRIDE_DEADLINE_DAYS} days after the start"
        )
    if deadline <= playbook.momentum_after:
        momentum = (started_at + playbook.momentum_after).astimezone(ZoneInfo(time_zone)).date()
        raise OverridesError(
            f"the deadline {day} must come after the momentum meeting ({momentum}, "
            f"{duration_text(playbook.momentum_after)} after the start)"
        )
    return deadline


def _without_steps(playbook: Playbook, refs: list[str]) -> object:
    known = {f"{p.id}:{s.id}" for p in playbook.purposes for s in p.steps}
    for ref in refs:
        if ref not in known:
            raise OverridesError(f"playbook {playbook.version} has no step {ref}")
    return [
        p.model_copy(update={"steps": [s for s in p.steps if f"{p.id}:{s.id}" not in refs]})
        for p in playbook.purposes
    ]


def compare(
    playbook: Playbook,
    overrides: CustomerOverrides | None,
    *,
    handoff: CustomerHandoff,
    started_at: datetime | None,
) -> list[OverriddenValue]:
    """Each overridden value beside the pinned playbook's, in words."""
    if overrides is None:
        return []
    rows: list[OverriddenValue] = []
    criteria = {criterion_name(c): c.at_least for c in playbook.completion_criteria}
    for name, threshold in overrides.thresholds.items():
        before = criteria.get(name)
        rows.append(
            OverriddenValue(
                name=f"threshold {name}",
                playbook="-" if before is None else f"{before:g}",
                customer=f"{threshold:g}",
                setting=OverrideSetting.THRESHOLD,
                subject=name,
            )
        )
    for stage, override in overrides.timers.items():
        timer = getattr(playbook.timers, stage, None)
        for field in ("remind_csm_after", "escalate_to_leader_after"):
            value = getattr(override, field)
            if value is not None:
                rows.append(
                    OverriddenValue(
                        name=f"{stage} {field}",
                        playbook="-" if timer is None else duration_text(getattr(timer, field)),
                        customer=duration_text(value),
                        setting=OverrideSetting(field),
                        subject=stage,
                    )
                )
    weekday = (
        playbook.measurement.weekday
        if handoff.measurement_weekday is None
        else handoff.measurement_weekday
    )
    if overrides.measurement_weekday is not None:
        rows.append(
            OverriddenValue(
                name="measurement weekday",
                playbook=WEEKDAYS[weekday],
                customer=WEEKDAYS[overrides.measurement_weekday],
                setting=OverrideSetting.MEASUREMENT_WEEKDAY,
            )
        )
    if overrides.measurement_hour is not None:
        rows.append(
            OverriddenValue(
                name="measurement hour",
                playbook=f"{playbook.measurement.local_hour:02d}:00",
                customer=f"{overrides.measurement_hour:02d}:00",
                setting=OverrideSetting.MEASUREMENT_HOUR,
            )
        )
    if overrides.deadline is not None:
        if started_at is None:
            default = duration_text(playbook.deadline) + " after the start"
        else:
            end = started_at + playbook.deadline - timedelta(microseconds=1)
            default = str(end.astimezone(ZoneInfo(handoff.time_zone)).date())
        rows.append(
            OverriddenValue(
                name="deadline",
                playbook=default,
                customer=str(overrides.deadline),
                setting=OverrideSetting.DEADLINE,
            )
        )
    for ref in overrides.skip_steps:
        rows.append(
            OverriddenValue(
                name=f"step {ref}",
                playbook="sent",
                customer="skipped",
                setting=OverrideSetting.SKIP_STEP,
                subject=ref,
            )
        )
    return rows


def duration_text(span: timedelta | BusinessDays) -> str:
    """A wait as a playbook writes it: "14d", "1d12h", "90s", "5 business days"."""
    if isinstance(span, BusinessDays):
        return str(span)
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def describe(overrides: CustomerOverrides) -> str:
    """The overrides in one line, for the timeline."""
    if overrides.empty:
        return "none: the playbook as it is"
    parts = [f"{name} >= {value:g}" for name, value in overrides.thresholds.items()]
    for stage, timer in overrides.timers.items():
        values = [
            f"{label} {duration_text(value)}"
            for label, value in (
                ("remind", timer.remind_csm_after),
                ("escalate", timer.escalate_to_leader_after),
            )
            if value is not None
        ]
        parts.append(f"{stage} {' / '.join(values)}")
    if overrides.measurement_weekday is not None:
        parts.append(f"measured on {WEEKDAYS[overrides.measurement_weekday]}")
    if overrides.measurement_hour is not None:
        parts.append(f"measured at {overrides.measurement_hour:02d}:00")
    if overrides.deadline is not None:
        parts.append(f"deadline {overrides.deadline}")
    if overrides.skip_steps:
        parts.append(f"skip {', '.join(overrides.skip_steps)}")
    return "; ".join(parts)
