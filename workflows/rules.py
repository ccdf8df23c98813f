"""The playbook's judgements as pure functions: deterministic, no I/O, unit-testable.

The workflow feeds them facts (a week's measurement, the goals agreed, earlier
verdicts) and acts on what they return.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from models.onboarding import CriterionVerdict, WeeklyMeasurement, WeekVerdict
from models.playbook import Condition, MeasurementPolicy, Metric, Playbook


def observe(
    metric: Metric,
    purpose: str | None,
    measurement: WeeklyMeasurement,
    *,
    goals_agreed: int,
    purposes: Sequence[str],
) -> float:
    """The value of one metric in one week."""
    if metric is Metric.ACTIVE_SEAT_RATIO:
        return measurement.active_seat_ratio
    if metric is Metric.ACTIVE_USERS:
        return float(measurement.active_users)
    if metric is Metric.EVENTS:
        return float(measurement.events)
    if metric is Metric.QUOTA_CONSUMPTION:
        return measurement.quota_consumption or 0.0
    if metric is Metric.GOALS_AGREED:
        return float(goals_agreed)
    if metric is Metric.EMAIL_OPENS:
        return float(measurement.email_opens)
    if metric is Metric.EMAIL_CLICKS:
        return float(measurement.email_clicks)
    if purpose is not None:
        return float(measurement.key_actions.get(purpose, 0))
    # Without a named purpose, the key actions of every purpose the customer holds
    # count; a customer with none yet is judged on all of them.
    held = purposes or list(measurement.key_actions)
    return float(sum(measurement.key_actions.get(p, 0) for p in held))


def _streak(held_now: bool, earlier: Sequence[bool]) -> int:
    """Weeks running, this one included, that a condition has held."""
    if not held_now:
        return 0
    weeks = 1
    for held in reversed(earlier):
        if not held:
            break
        weeks += 1
    return weeks


def _verdicts(
    conditions: Sequence[Condition],
    earlier: Sequence[list[CriterionVerdict]],
    measurement: WeeklyMeasurement,
    goals_agreed: int,
    purposes: Sequence[str],
) -> list[CriterionVerdict]:
    verdicts = []
    for index, condition in enumerate(conditions):
        observed = observe(
            condition.metric,
            condition.purpose,
            measurement,
            goals_agreed=goals_agreed,
            purposes=purposes,
        )
        held_now = condition.holds(observed)
        history = [week[index].observed_held for week in earlier if index < len(week)]
        running = _streak(held_now, history)
        verdicts.append(
            CriterionVerdict(
                metric=condition.metric,
                purpose=condition.purpose,
                observed=round(observed, 4),
                threshold=condition.threshold,
                weeks_required=condition.weeks,
                weeks_running=running,
                observed_held=held_now,
                met=running >= condition.weeks,
            )
        )
    return verdicts


def evaluate_week(
    playbook: Playbook,
    measurement: WeeklyMeasurement,
    *,
    goals_agreed: int,
    purposes: Sequence[str],
    earlier: Sequence[WeekVerdict],
) -> WeekVerdict:
    """Judge one week against the completion criteria and the stall rules."""
    criteria = _verdicts(
        playbook.completion_criteria,
        [week.criteria for week in earlier],
        measurement,
        goals_agreed,
        purposes,
    )
    stall_checks = _verdicts(
        playbook.stall.rules,
        [week.stall_checks for week in earlier],
        measurement,
        goals_agreed,
        purposes,
    )
    # Without any data the customer is stuck in setup, which has its own rule.
    stalled = measurement.data_ever_arrived and any(check.met for check in stall_checks)
    return WeekVerdict(
        measurement=measurement,
        criteria=criteria,
        criteria_met=all(verdict.met for verdict in criteria),
        stall_checks=stall_checks,
        stalled=stalled,
    )


def next_measurement_at(
    policy: MeasurementPolicy,
    *,
    after: datetime,
    time_zone: str,
    weekday: int | None = None,
) -> datetime:
    """The next measurement instant strictly after `after`, on the customer's local clock."""
    if not policy.align_to_weekday:
        return after + policy.every
    zone = ZoneInfo(time_zone)
    local = after.astimezone(zone)
    target_weekday = policy.weekday if weekday is None else weekday
    days_ahead = (target_weekday - local.weekday()) % 7
    candidate = (local + timedelta(days=days_ahead)).replace(
        hour=policy.local_hour, minute=0, second=0, microsecond=0
    )
    if candidate <= local:
        candidate += timedelta(days=7)
    # Re-attach the zone after date arithmetic so a DST change keeps the local hour.
    candidate = candidate.replace(tzinfo=zone)
    return candidate.astimezone(after.tzinfo)
