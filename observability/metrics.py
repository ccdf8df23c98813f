"""Liftoff's own metrics, recorded through Temporal's metric meter.

The SDK's runtime serves them with its own (`LIFTOFF_METRICS_ADDRESS`, Prometheus
text format), so one scrape of a process returns the SDK's worker and client
metrics and these side by side, with no second metrics library or port. Counters
only: rates and ratios are the alerting rules' business (docs/operations.md).

Every count is taken where the fact becomes durable, so a retried activity does
not count twice: a timeline entry when its row is inserted, an email per
recipient when the ledger says so, an intake call when its answer is decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

TIMELINE_ENTRIES = "liftoff_timeline_entries"
VERDICTS = "liftoff_weekly_verdicts"
EMAILS = "liftoff_emails"
INTAKE_EVENTS = "liftoff_intake_events"
ACTIVITY_FAILURES = "liftoff_activity_failures"

_DESCRIPTIONS = {
    TIMELINE_ENTRIES: "Timeline entries recorded, by kind (stage changes, stalls, tasks, ...)",
    VERDICTS: "Weekly measurements judged, by verdict: criteria_met, stalled or ok",
    EMAILS: "Emails per recipient, by provider and result",
    INTAKE_EVENTS: "Usage intake events, by result: accepted, rejected or unmatched",
    ACTIVITY_FAILURES: "Activity attempts that raised, by activity and error type",
}


def count(meter: MetricMeter, name: str, attributes: Mapping[str, str], value: int = 1) -> None:
    """Add `value` to the counter `name` with these labels; nothing for a zero."""
    if value <= 0:
        return
    counter = meter.create_counter(name, _DESCRIPTIONS[name])
    counter.add(value, dict(attributes))


def activity_meter() -> MetricMeter:
    """The running activity's meter; a no-op one outside an activity (direct calls)."""
    try:
        return activity.metric_meter()
    except RuntimeError:
        return MetricMeter.noop


def verdict_of(details: Mapping[str, Any]) -> str:
    """A weekly measurement entry's verdict, as the workflow's summary words it."""
    if details.get("criteria_met"):
        return "criteria_met"
    return "stalled" if details.get("stalled") else "ok"


class ActivityFailureMetrics(Interceptor):
    """Counts every failed activity attempt by activity name and error type."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountFailures(next)


class _CountFailures(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except BaseException as err:
            if isinstance(err, Exception):
                error_type = err.type if isinstance(err, ApplicationError) and err.type else None
                # The activity's meter already labels it with activity_type.
                count(
                    activity_meter(),
                    ACTIVITY_FAILURES,
                    {"error_type": error_type or type(err).__name__},
                )
            raise
