"""Time to onboard and time in each stage, with customers still in flight censored.

A customer still onboarding has not taken "more than zero days": they have taken at
least as long as they have been at it. Dropping them biases every median down (only
the quick ones are counted); counting them as finished biases it too. Kaplan-Meier
takes each as "still at risk until now" (right-censored). The estimate, its standard
errors and the median's confidence interval come from statsmodels' `SurvfuncRight`;
nothing here estimates on its own.

What counts as the event, and what is censored:
- time to onboard: the event is "onboarded" (started_at to ended_at). A customer still
  in flight is censored at now; a failed or cancelled one at its end: it never
  onboarded, and the curve says how many would still be waiting, not how many failed.
- time in a stage: the event is leaving the stage forward. A stay still running is
  censored at now (stage_since to now); a stay that ended with the onboarding failing
  or being cancelled is censored at its length.

The median is statsmodels' convention: the first time the curve falls below 0.5; a
curve that never does says "not reached" (None). Its 95% interval is
Brookmeyer-Crowley on the log-log scale (`quantile_ci(method="cloglog")`), and the
band drawn around a curve is the same log-log transform of the pointwise Greenwood
errors, so the interval can be read off the chart where the band crosses 0.5.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, Field
from statsmodels.duration.survfunc import SurvfuncRight

from models.onboarding import Stage

# 95% intervals; the normal quantile the pointwise band uses with it.
ALPHA = 0.05
_Z = 1.959963984540054
# The stages whose stay is timed, in path order.
TIMED_STAGES = (Stage.KICKOFF, Stage.TRAINING, Stage.ADOPTION, Stage.COMPLETION_REVIEW)


class TimedStage(StrEnum):
    """A stage whose stay is timed: what a query may name."""

    KICKOFF = Stage.KICKOFF.value
    TRAINING = Stage.TRAINING.value
    ADOPTION = Stage.ADOPTION.value
    COMPLETION_REVIEW = Stage.COMPLETION_REVIEW.value


NO_VALUE = "none"


class GroupBy(StrEnum):
    """What a curve may be split by: a fixed list, so a query names nothing else."""

    ALL = "all"
    START_MONTH = "start_month"
    PURPOSE = "purpose"
    PLAYBOOK_VERSION = "playbook_version"
    SEATS_BAND = "seats_band"
    TRIAL_USED = "trial_used"
    LOCALE = "locale"
    COUNTRY = "country"


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and
# 10,000 of these are built per figure.
@dataclass(slots=True)
class Journey:
    """One customer as the survival figures read it (from the customer projection).
    Instants are Unix seconds: 10,000 customers read as numbers cost a fraction of
    what they cost as datetimes."""

    customer_id: str
    stage: str
    stage_since: float | None
    started_at: float | None
    ended_at: float | None
    outcome: str | None
    # The furthest stage on the path reached (handoff 0 ... onboarded 5).
    furthest: int
    # Seconds of each finished stay, by stage value; None while in it or never there.
    stays: dict[str, float | None]
    purposes: Sequence[str]
    playbook_name: str
    playbook_version: str
    seats_band: str
    trial_used: bool
    locale: str
    country: str | None


def groups_of(journey: Journey, by: GroupBy) -> list[str]:
    """The groups a customer counts in; with several purposes it counts in each."""
    match by:
        case GroupBy.ALL:
            return ["all"]
        case GroupBy.START_MONTH:
            started = journey.started_at
            if started is None:
                return [NO_VALUE]
            return [datetime.fromtimestamp(started, UTC).strftime("%Y-%m")]
        case GroupBy.PURPOSE:
            return list(dict.fromkeys(journey.purposes)) or [NO_VALUE]
        case GroupBy.PLAYBOOK_VERSION:
            return [f"{journey.playbook_name}:{journey.playbook_version}"]
        case GroupBy.SEATS_BAND:
            return [journey.seats_band or NO_VALUE]
        case GroupBy.TRIAL_USED:
            return ["yes" if journey.trial_used else "no"]
        case GroupBy.LOCALE:
            return [journey.locale or NO_VALUE]
        case GroupBy.COUNTRY:
            return [journey.country or NO_VALUE]


@dataclass(slots=True)
class Span:
    """One customer's time at risk: `event` False means censored at `seconds`."""

    journey: Journey
    seconds: float
    event: bool


_ABANDONED = (Stage.FAILED.value, Stage.CANCELLED.value)
_PATH_RANK = {stage.value: rank for rank, stage in enumerate(TIMED_STAGES, start=1)}


def _since(start: float | None, end: float) -> float | None:
    if start is None:
        return None
    return max(0.0, end - start)


def time_to_onboard(journeys: Iterable[Journey], now: datetime) -> list[Span]:
    """Each started customer: onboarded (the event), or censored at its end or at now.
    A customer not started yet (no first transition) has no time at risk."""
    spans = []
    at = now.timestamp()
    for journey in journeys:
        end = journey.ended_at if journey.ended_at is not None else at
        seconds = _since(journey.started_at, end)
        if seconds is not None:
            spans.append(Span(journey, seconds, journey.outcome == Stage.ONBOARDED.value))
    return spans


def time_in_stage(journeys: Iterable[Journey], stage: Stage, now: datetime) -> list[Span]:
    """Each customer who entered `stage`: its finished stay, or the one running now."""
    if stage not in TIMED_STAGES:
        raise ValueError(f"{stage.value} is not a timed stage")
    spans = []
    at = now.timestamp()
    for journey in journeys:
        finished = journey.stays.get(stage.value)
        if finished is not None:
            # The stay ended with the onboarding when nothing further was reached.
            abandoned = journey.outcome in _ABANDONED and journey.furthest <= _PATH_RANK[stage]
            spans.append(Span(journey, max(0.0, finished), not abandoned))
        elif journey.stage == stage.value:
            running = _since(journey.stage_since, at)
            if running is not None:
                spans.append(Span(journey, running, False))
    return spans


class CurvePoint(BaseModel):
    """The estimate just after `seconds`, where at least one customer had the event."""

    seconds: float
    survival: float = Field(description="share still waiting (not yet onboarded / still in it)")
    ci_low: float | None = Field(description="95% pointwise band, log-log; None where undefined")
    ci_high: float | None
    at_risk: int
    events: int


class GroupEstimate(BaseModel):
    group: str
    customers: int
    events: int = Field(description="customers who had the event (onboarded, left the stage)")
    censored: int = Field(description="customers still in flight, or who ended otherwise")
    longest_seconds: float = Field(description="the longest time followed, event or not")
    median_seconds: float | None = Field(
        description="first time the curve falls below 0.5; None: not reached"
    )
    median_ci_low_seconds: float | None = Field(description="95% interval; None: undefined")
    median_ci_high_seconds: float | None = Field(description="None: not reached")
    curve: list[CurvePoint]

    @property
    def median_reached(self) -> bool:
        return self.median_seconds is not None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _rounded(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None


def _band(survival: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pointwise 95% band on the log-log scale (as quantile_ci's "cloglog")."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.log(survival)
        spread = _Z * se / (survival * np.abs(log_s))
        low = np.exp(-np.exp(np.log(-log_s) + spread))
        high = np.exp(-np.exp(np.log(-log_s) - spread))
    return low, high


def estimate(group: str, spans: Sequence[Span]) -> GroupEstimate:
    """The Kaplan-Meier curve of one group, its median and the median's 95% interval."""
    events = sum(span.event for span in spans)
    empty = GroupEstimate(
        group=group,
        customers=len(spans),
        events=events,
        censored=len(spans) - events,
        longest_seconds=max((span.seconds for span in spans), default=0.0),
        median_seconds=None,
        median_ci_low_seconds=None,
        median_ci_high_seconds=None,
        curve=[],
    )
    if not events:
        return empty  # nothing ever happened: the curve stays at 1, the median unreached
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = SurvfuncRight(
            np.array([span.seconds for span in spans], dtype=float),
            np.array([span.event for span in spans], dtype=float),
        )
        median = float(fit.quantile(0.5))
        low, high = fit.quantile_ci(0.5, alpha=ALPHA, method="cloglog")
    band_low, band_high = _band(fit.surv_prob, fit.surv_prob_se)
    # Milliseconds and six decimals: finer than any instant stored or share drawn, and
    # a curve of 10,000 customers a third shorter as JSON.
    # Built without validation: every value is a float or int computed just above.
    curve = [
        CurvePoint.model_construct(
            seconds=round(float(t), 3),
            survival=round(float(s), 6),
            ci_low=_rounded(lo),
            ci_high=_rounded(hi),
            at_risk=int(n),
            events=int(d),
        )
        for t, s, lo, hi, n, d in zip(
            fit.surv_times,
            fit.surv_prob,
            band_low,
            band_high,
            fit.n_risk,
            fit.n_events,
            strict=True,
        )
    ]
    return empty.model_copy(
        update={
            "median_seconds": _finite(median),
            "median_ci_low_seconds": _finite(float(low)),
            "median_ci_high_seconds": _finite(float(high)),
            "curve": curve,
        }
    )


def _natural(label: str) -> tuple[str | int, ...]:
    """Numbers inside a label compare as numbers: seats "11-50" before "201-1000"."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", label))


def estimate_by(spans: Iterable[Span], by: GroupBy) -> list[GroupEstimate]:
    """One estimate per group, groups in label order (numbers as numbers)."""
    grouped: defaultdict[str, list[Span]] = defaultdict(list)
    for span in spans:
        for group in groups_of(span.journey, by):
            grouped[group].append(span)
    return [estimate(group, grouped[group]) for group in sorted(grouped, key=_natural)]


class SurvivalFigure(BaseModel):
    """One figure: a Kaplan-Meier curve per group."""

    figure: str = Field(description='"time_to_onboard" or "time_in_stage"')
    stage: Stage | None = Field(description="the stage timed, for time_in_stage")
    by: GroupBy
    now: datetime = Field(description="customers still in flight are censored here")
    groups: list[GroupEstimate]


def time_to_onboard_figure(
    journeys: Iterable[Journey], by: GroupBy, now: datetime
) -> SurvivalFigure:
    spans = time_to_onboard(journeys, now)
    return SurvivalFigure(
        figure="time_to_onboard", stage=None, by=by, now=now, groups=estimate_by(spans, by)
    )


def time_in_stage_figure(
    journeys: Iterable[Journey], stage: Stage, by: GroupBy, now: datetime
) -> SurvivalFigure:
    spans = time_in_stage(journeys, stage, now)
    return SurvivalFigure(
        figure="time_in_stage", stage=stage, by=by, now=now, groups=estimate_by(spans, by)
    )
