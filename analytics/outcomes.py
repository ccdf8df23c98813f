"""Does the onboarding verdict predict what happened next? Churn and health 6 and 12
months after the onboarding ended, for onboarded, failed and cancelled customers, and
per completion criterion whether meeting it at completion told renewals from churn.

Pure: it takes the facts (`CustomerFacts`, read by `records/outcomes.py`) and returns
figures with 95% confidence intervals, each with a verdict: conclusive when the
interval excludes "no difference", not conclusive when it does not, and too few when
a group has fewer than `MIN_GROUP` customers to judge. The intervals come from
statsmodels (Wilson for a rate, Newcomb for a difference of rates, the log-adjusted
ratio of rates, Welch's t for a difference of means); the ratio of mean health uses the
delta method on its logarithm with Welch's degrees of freedom (scipy's t quantile).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from models.onboarding import Stage

HORIZONS_MONTHS = (6, 12)
# The headline compares onboarded with failed customers this many months on.
HEADLINE_MONTHS = 12
CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
# Fewer customers than this in either group of a comparison: no conclusion is drawn.
# The sources suggest revisiting the criteria after about 50 customers; 10 a group is
# the least at which a 95% interval of a rate is narrower than the rate's range.
MIN_GROUP = 10
# A health score counts for a horizon when dated within this many days of it.
HEALTH_WINDOW_DAYS = 45
# A score at or above this is "high health" for the per-criterion lift.
HIGH_HEALTH = 70.0
# Onboarding outcomes, in the order they are shown; each later one is compared with the first.
GROUPS = (Stage.ONBOARDED, Stage.FAILED, Stage.CANCELLED)


def horizon_days(months: int) -> int:
    return round(months * 365.25 / 12)


class Verdict(StrEnum):
    CONCLUSIVE = "conclusive"
    NOT_CONCLUSIVE = "not_conclusive"
    TOO_FEW = "too_few"


@dataclass(frozen=True)
class CriterionKey:
    """One completion criterion of the playbook, as its verdicts on the timeline name it."""

    metric: str
    purpose: str | None
    threshold: float
    weeks: int

    @property
    def label(self) -> str:
        purpose = f"[{self.purpose}]" if self.purpose else ""
        weeks = f", {self.weeks} weeks" if self.weeks > 1 else ""
        return f"{self.metric}{purpose} ≥ {self.threshold:g}{weeks}"


@dataclass(frozen=True)
class CustomerFacts:
    """One customer whose onboarding ended, and what happened after."""

    customer_id: str
    outcome: Stage
    ended_on: date
    churned_on: tuple[date, ...] = ()
    health: tuple[tuple[date, float], ...] = ()
    # Each criterion's verdict at the last weekly measurement; empty when never measured.
    criteria_met: Mapping[CriterionKey, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Proportion:
    count: int
    n: int
    rate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Mean:
    n: int
    mean: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Estimate:
    """A difference (no effect at 0) or a ratio (no effect at 1), with its interval."""

    value: float | None
    low: float | None
    high: float | None
    verdict: Verdict
    # The smaller group's size: what "too few" refers to.
    n_smallest: int


@dataclass(frozen=True)
class GroupAtHorizon:
    outcome: Stage
    # Customers whose onboarding ended with this outcome.
    ended: int
    churn: Proportion
    health: Mean
    # Not churned and ended less than the horizon ago: not counted in the churn rate.
    not_yet: int


@dataclass(frozen=True)
class Comparison:
    """A group (failed, cancelled) against the onboarded customers."""

    outcome: Stage
    # The group's churn rate minus the onboarded customers' (positive: they churned more).
    churn_difference: Estimate
    # Onboarded customers' mean health minus the group's, and their ratio.
    health_difference: Estimate
    health_ratio: Estimate
    # How many customers each comparison counted (both groups together).
    churn_n: int
    health_n: int


@dataclass(frozen=True)
class CriterionAtHorizon:
    criterion: CriterionKey
    # The intervals' level: 95% shared among the playbook's criteria (Bonferroni), so
    # that one of several criteria does not look decisive by chance alone.
    confidence: float
    churn_met: Proportion
    churn_not_met: Proportion
    # Not met minus met: positive when missing the criterion went with more churn.
    churn_difference: Estimate
    # Not met over met: how many times more churn missing it went with.
    churn_lift: Estimate
    high_health_met: Proportion
    high_health_not_met: Proportion
    # Met over not met: how many times likelier high health was after meeting it.
    health_lift: Estimate


@dataclass(frozen=True)
class HorizonFigures:
    months: int
    groups: list[GroupAtHorizon]
    comparisons: list[Comparison]
    criteria: list[CriterionAtHorizon]

    def comparison(self, outcome: Stage) -> Comparison | None:
        return next((c for c in self.comparisons if c.outcome is outcome), None)


@dataclass(frozen=True)
class OutcomeAnalysis:
    # None: every playbook version together.
    playbook_version: str | None
    as_of: date
    customers: int
    horizons: list[HorizonFigures]

    def horizon(self, months: int) -> HorizonFigures:
        return next(h for h in self.horizons if h.months == months)

    @property
    def headline(self) -> Comparison | None:
        """Failed against onboarded customers a year on: Sansan's question."""
        return self.horizon(HEADLINE_MONTHS).comparison(Stage.FAILED)


# The figures of one customer at one horizon


def churned_by(customer: CustomerFacts, until: date) -> bool:
    return any(day <= until for day in customer.churned_on)


def churn_observed(customer: CustomerFacts, months: int, as_of: date) -> bool | None:
    """Churned within `months` of the end (True), stayed (False), or not known yet (None)."""
    until = customer.ended_on + timedelta(days=horizon_days(months))
    if churned_by(customer, until):
        return True
    return False if as_of >= until else None


def health_at(customer: CustomerFacts, months: int) -> float | None:
    """The score nearest the horizon within `HEALTH_WINDOW_DAYS` (several sources on that
    day averaged), or None."""
    target = customer.ended_on + timedelta(days=horizon_days(months))
    near = [
        (abs((day - target).days), day, score)
        for day, score in customer.health
        if abs((day - target).days) <= HEALTH_WINDOW_DAYS
    ]
    if not near:
        return None
    closest = min(distance for distance, _, _ in near)
    # The earlier of two days equally near, then every source's score of that day.
    day = min(day for distance, day, _ in near if distance == closest)
    scores = [score for _, on, score in near if on == day]
    return sum(scores) / len(scores)


# Statistics


def proportion(count: int, n: int) -> Proportion:
    if n == 0:
        return Proportion(count, n, None, None, None)
    low, high = proportion_confint(count, n, alpha=ALPHA, method="wilson")
    return Proportion(count, n, count / n, float(low), float(high))


def mean(values: Sequence[float]) -> Mean:
    if not values:
        return Mean(0, None, None, None)
    described = DescrStatsW(list(values))
    if len(values) < 2:
        return Mean(1, float(described.mean), None, None)
    low, high = described.tconfint_mean(alpha=ALPHA)
    return Mean(len(values), float(described.mean), float(low), float(high))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _estimate(
    value: float | None, low: float | None, high: float | None, null: float, smallest: int
) -> Estimate:
    """The estimate with its verdict: too few below MIN_GROUP or without an interval,
    conclusive when the interval leaves out `null` (0 for a difference, 1 for a ratio)."""
    value, low, high = _finite(value), _finite(low), _finite(high)
    if smallest < MIN_GROUP or low is None or high is None:
        verdict = Verdict.TOO_FEW
    elif low > null or high < null:
        verdict = Verdict.CONCLUSIVE
    else:
        verdict = Verdict.NOT_CONCLUSIVE
    return Estimate(value, low, high, verdict, smallest)


def _too_few(smallest: int) -> Estimate:
    return Estimate(None, None, None, Verdict.TOO_FEW, smallest)


def rate_difference(first: Proportion, second: Proportion, *, alpha: float = ALPHA) -> Estimate:
    """first's rate minus second's, Newcomb's hybrid score interval."""
    smallest = min(first.n, second.n)
    if first.rate is None or second.rate is None:
        return _too_few(smallest)
    low, high = confint_proportions_2indep(
        first.count,
        first.n,
        second.count,
        second.n,
        method="newcomb",
        compare="diff",
        alpha=alpha,
    )
    return _estimate(first.rate - second.rate, float(low), float(high), 0, smallest)


def rate_ratio(first: Proportion, second: Proportion, *, alpha: float = ALPHA) -> Estimate:
    """first's rate over second's, log interval with 0.5 added to empty cells."""
    smallest = min(first.n, second.n)
    if first.rate is None or second.rate is None:
        return _too_few(smallest)
    low, high = confint_proportions_2indep(
        first.count,
        first.n,
        second.count,
        second.n,
        method="log-adjusted",
        compare="ratio",
        alpha=alpha,
    )
    value = first.rate / second.rate if second.rate > 0 else None
    return _estimate(value, float(low), float(high), 1, smallest)


def mean_difference(first: Sequence[float], second: Sequence[float]) -> Estimate:
    """first's mean minus second's, Welch's t interval (unequal variances)."""
    smallest = min(len(first), len(second))
    if smallest < 2:
        return _too_few(smallest)
    compared = CompareMeans(DescrStatsW(list(first)), DescrStatsW(list(second)))
    value = _mean(first) - _mean(second)
    if _variance(first) == 0 and _variance(second) == 0:
        return _estimate(value, value, value, 0, smallest)  # no spread: t is undefined
    low, high = compared.tconfint_diff(alpha=ALPHA, usevar="unequal")
    return _estimate(value, float(low), float(high), 0, smallest)


def mean_ratio(first: Sequence[float], second: Sequence[float]) -> Estimate:
    """first's mean over second's; the interval of its logarithm by the delta method,
    with Welch-Satterthwaite degrees of freedom."""
    smallest = min(len(first), len(second))
    if smallest < 2 or _mean(first) <= 0 or _mean(second) <= 0:
        return _too_few(smallest)
    m1, m2 = _mean(first), _mean(second)
    v1 = _variance(first) / (len(first) * m1 * m1)
    v2 = _variance(second) / (len(second) * m2 * m2)
    ratio = m1 / m2
    spread = math.sqrt(v1 + v2)
    if spread == 0:
        return _estimate(ratio, ratio, ratio, 1, smallest)
    freedom = (v1 + v2) ** 2 / (v1 * v1 / (len(first) - 1) + v2 * v2 / (len(second) - 1))
    quantile = float(stats.t.ppf(1 - ALPHA / 2, freedom))
    low, high = ratio * math.exp(-quantile * spread), ratio * math.exp(quantile * spread)
    return _estimate(ratio, low, high, 1, smallest)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _variance(values: Sequence[float]) -> float:
    centre = _mean(values)
    return sum((v - centre) ** 2 for v in values) / (len(values) - 1)


# The analysis


def _churn(customers: Sequence[CustomerFacts], months: int, as_of: date) -> Proportion:
    seen = [churn_observed(c, months, as_of) for c in customers]
    known = [churned for churned in seen if churned is not None]
    return proportion(sum(known), len(known))


def _healths(customers: Sequence[CustomerFacts], months: int) -> list[float]:
    return [score for c in customers if (score := health_at(c, months)) is not None]


def _group(
    outcome: Stage, customers: Sequence[CustomerFacts], months: int, as_of: date
) -> GroupAtHorizon:
    churn = _churn(customers, months, as_of)
    return GroupAtHorizon(
        outcome=outcome,
        ended=len(customers),
        churn=churn,
        health=mean(_healths(customers, months)),
        not_yet=len(customers) - churn.n,
    )


def _compare(
    outcome: Stage,
    onboarded: Sequence[CustomerFacts],
    other: Sequence[CustomerFacts],
    months: int,
    as_of: date,
) -> Comparison:
    churn_onboarded, churn_other = _churn(onboarded, months, as_of), _churn(other, months, as_of)
    health_onboarded, health_other = _healths(onboarded, months), _healths(other, months)
    return Comparison(
        outcome=outcome,
        churn_difference=rate_difference(churn_other, churn_onboarded),
        health_difference=mean_difference(health_onboarded, health_other),
        health_ratio=mean_ratio(health_onboarded, health_other),
        churn_n=churn_onboarded.n + churn_other.n,
        health_n=len(health_onboarded) + len(health_other),
    )


def _high_health(customers: Sequence[CustomerFacts], months: int) -> Proportion:
    scores = _healths(customers, months)
    return proportion(sum(score >= HIGH_HEALTH for score in scores), len(scores))


def _criterion(
    key: CriterionKey,
    customers: Sequence[CustomerFacts],
    months: int,
    as_of: date,
    *,
    alpha: float,
) -> CriterionAtHorizon:
    met = [c for c in customers if c.criteria_met.get(key) is True]
    not_met = [c for c in customers if c.criteria_met.get(key) is False]
    churn_met, churn_not_met = _churn(met, months, as_of), _churn(not_met, months, as_of)
    high_met, high_not_met = _high_health(met, months), _high_health(not_met, months)
    return CriterionAtHorizon(
        criterion=key,
        confidence=1 - alpha,
        churn_met=churn_met,
        churn_not_met=churn_not_met,
        churn_difference=rate_difference(churn_not_met, churn_met, alpha=alpha),
        churn_lift=rate_ratio(churn_not_met, churn_met, alpha=alpha),
        high_health_met=high_met,
        high_health_not_met=high_not_met,
        health_lift=rate_ratio(high_met, high_not_met, alpha=alpha),
    )


def analyse(
    customers: Sequence[CustomerFacts],
    *,
    as_of: date,
    playbook_version: str | None = None,
    horizons: Sequence[int] = HORIZONS_MONTHS,
) -> OutcomeAnalysis:
    """The figures for customers whose onboarding ended (one playbook version's, or all)."""
    by_outcome = {outcome: [c for c in customers if c.outcome is outcome] for outcome in GROUPS}
    criteria = sorted(
        {key for c in customers for key in c.criteria_met},
        key=lambda k: (k.metric, k.purpose or "", k.threshold, k.weeks),
    )
    figures = []
    for months in horizons:
        figures.append(
            HorizonFigures(
                months=months,
                groups=[_group(o, by_outcome[o], months, as_of) for o in GROUPS],
                comparisons=[
                    _compare(o, by_outcome[Stage.ONBOARDED], by_outcome[o], months, as_of)
                    for o in GROUPS[1:]
                ],
                criteria=[
                    _criterion(key, customers, months, as_of, alpha=ALPHA / len(criteria))
                    for key in criteria
                ],
            )
        )
    return OutcomeAnalysis(
        playbook_version=playbook_version,
        as_of=as_of,
        customers=sum(len(group) for group in by_outcome.values()),
        horizons=figures,
    )


# Rows for the CSV export: one figure per row, flat, so a spreadsheet can pivot them.
CSV_HEADER = (
    "playbook_version",
    "months",
    "subject",
    "measure",
    "n",
    "count",
    "value",
    "ci_low",
    "ci_high",
    "ci_level",
    "verdict",
)

CsvRow = tuple[str | int | float, ...]


def csv_rows(analysis: OutcomeAnalysis) -> list[CsvRow]:
    version = analysis.playbook_version or ""
    rows: list[CsvRow] = []

    def blank(value: float | None) -> float | str:
        return "" if value is None else round(value, 6)

    def add(
        months: int,
        subject: str,
        measure: str,
        n: int,
        count: int | str,
        figures: tuple[float | None, float | None, float | None],
        level: float = CONFIDENCE,
        verdict: str = "",
    ) -> None:
        value, low, high = (blank(figure) for figure in figures)
        rows.append(
            (
                version,
                months,
                subject,
                measure,
                n,
                count,
                value,
                low,
                high,
                round(level, 4),
                verdict,
            )
        )

    def share(months: int, subject: str, measure: str, p: Proportion, level: float) -> None:
        add(months, subject, measure, p.n, p.count, (p.rate, p.low, p.high), level)

    def estimate(
        months: int, subject: str, measure: str, e: Estimate, n: int, level: float = CONFIDENCE
    ) -> None:
        add(months, subject, measure, n, "", (e.value, e.low, e.high), level, e.verdict.value)

    for h in analysis.horizons:
        for g in h.groups:
            share(h.months, g.outcome.value, "churn_rate", g.churn, CONFIDENCE)
            add(h.months, g.outcome.value, "health_mean", g.health.n, "",
                (g.health.mean, g.health.low, g.health.high))  # fmt: skip
        for c in h.comparisons:
            subject = f"{c.outcome.value}_vs_onboarded"
            estimate(h.months, subject, "churn_difference", c.churn_difference, c.churn_n)
            estimate(h.months, subject, "health_difference", c.health_difference, c.health_n)
            estimate(h.months, subject, "health_ratio", c.health_ratio, c.health_n)
        for k in h.criteria:
            subject, level = k.criterion.label, k.confidence
            share(h.months, subject, "churn_rate_met", k.churn_met, level)
            share(h.months, subject, "churn_rate_not_met", k.churn_not_met, level)
            n_churn = k.churn_met.n + k.churn_not_met.n
            estimate(h.months, subject, "churn_difference", k.churn_difference, n_churn, level)
            estimate(h.months, subject, "churn_lift", k.churn_lift, n_churn, level)
            share(h.months, subject, "high_health_met", k.high_health_met, level)
            share(h.months, subject, "high_health_not_met", k.high_health_not_met, level)
            n_health = k.high_health_met.n + k.high_health_not_met.n
            estimate(h.months, subject, "high_health_lift", k.health_lift, n_health, level)
    return rows
