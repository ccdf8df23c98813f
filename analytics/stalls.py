"""Where customers stall: which completion criterion failed and stalled customers
were missing, and for how long; and the escalations each CSM has open.

The weekly measurement's verdict is on the timeline (kind "weekly_measurement", the
workflow's `WeekVerdict` as JSON): each criterion with whether it was met. A customer's
latest verdict says what it was still missing; the weeks before it say since when.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from models.onboarding import Stage

DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class Week:
    """One weekly verdict as stored: its window and its criteria (JSON, as written)."""

    window_start: datetime | None
    window_end: datetime | None
    criteria: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Troubled:
    """A failed customer, or one stalled now, with its latest verdicts, oldest first."""

    customer_id: str
    outcome: str | None
    weeks: Sequence[Week]


def criterion_name(criterion: Mapping[str, Any]) -> str | None:
    """ "active_seat_ratio", or "key_actions[A]" for a purpose's own criterion."""
    metric = criterion.get("metric")
    if not isinstance(metric, str):
        return None
    purpose = criterion.get("purpose")
    return f"{metric}[{purpose}]" if isinstance(purpose, str) and purpose else metric


def _missing(week: Week) -> dict[str, Mapping[str, Any]]:
    return {
        name: criterion
        for criterion in week.criteria
        if (name := criterion_name(criterion)) is not None and criterion.get("met") is False
    }


class MissingCriterion(BaseModel):
    criterion: str = Field(description='metric, with the purpose for its own: "key_actions[A]"')
    metric: str
    purpose: str | None
    customers: int = Field(description="customers whose latest verdict had it unmet")
    failed: int
    stalled: int
    share: float = Field(description="of the failed and stalled customers with a verdict")
    median_weeks_missing: float = Field(description="weeks in a row unmet, up to the latest")
    longest_weeks_missing: int
    median_days_missing: float = Field(description="from the first of those weeks to the latest")


class StallAnalysis(BaseModel):
    failed: int
    stalled: int
    without_verdict: int = Field(description="failed or stalled before any weekly verdict")
    criteria: list[MissingCriterion]


@dataclass
class _Tally:
    metric: str
    purpose: str | None
    failed: int = 0
    stalled: int = 0
    weeks: list[int] = field(default_factory=list)
    days: list[float] = field(default_factory=list)


def missing_criteria(customers: Iterable[Troubled]) -> StallAnalysis:
    """The criteria most often missing at the latest verdict, most missed first."""
    tallies: dict[str, _Tally] = {}
    failed = stalled = without = 0
    for customer in customers:
        is_failed = customer.outcome == Stage.FAILED.value
        failed += is_failed
        stalled += not is_failed
        if not customer.weeks:
            without += 1
            continue
        latest = customer.weeks[-1]
        for name, criterion in _missing(latest).items():
            run = 0
            first = latest
            for week in reversed(customer.weeks):
                if name not in _missing(week):
                    break
                run += 1
                first = week
            tally = tallies.setdefault(
                name,
                _Tally(str(criterion["metric"]), criterion.get("purpose") or None),
            )
            tally.failed += is_failed
            tally.stalled += not is_failed
            tally.weeks.append(run)
            start, end = first.window_start, latest.window_end
            tally.days.append((end - start).total_seconds() / DAY_SECONDS if start and end else 0.0)
    judged = failed + stalled - without
    criteria = [
        MissingCriterion(
            criterion=name,
            metric=tally.metric,
            purpose=tally.purpose,
            customers=tally.failed + tally.stalled,
            failed=tally.failed,
            stalled=tally.stalled,
            share=(tally.failed + tally.stalled) / judged if judged else 0.0,
            median_weeks_missing=float(statistics.median(tally.weeks)),
            longest_weeks_missing=max(tally.weeks),
            median_days_missing=round(statistics.median(tally.days), 2),
        )
        for name, tally in tallies.items()
    ]
    criteria.sort(key=lambda row: (-row.customers, row.criterion))
    return StallAnalysis(failed=failed, stalled=stalled, without_verdict=without, criteria=criteria)


class CsmEscalations(BaseModel):
    csm: str
    customers: int
    active: int = Field(description="customers still onboarding")
    stalled: int = Field(description="stalled now")
    failed: int
    escalations: int = Field(description="open tasks that escalated to the CS leader")
