"""Charts as geometry in SVG coordinates: the weekly measurement (points and threshold
lines) and the cohort's Kaplan-Meier curves (steps and their confidence band).

Pure arithmetic over the workflow's own verdicts, so the thresholds drawn are the
ones the customer is judged against (its pinned playbook), not today's file.
The template turns the geometry into inline SVG; no chart library, no JS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from analytics.survival import GroupEstimate
from models.onboarding import CriterionVerdict, WeekVerdict
from models.playbook import Metric
from workflows import rules

WIDTH = 560
HEIGHT = 190
LEFT = 48
RIGHT = 16
TOP = 14
BOTTOM = 30


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # the value as shown, e.g. "45%"
    week: int
    held: bool | None  # whether the week met the completion criterion on this metric


@dataclass(frozen=True)
class Line:
    y: float
    label: str
    kind: str  # "criterion" or "stall"


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Panel:
    metric: Metric
    width: int
    height: int
    points: list[Point]
    lines: list[Line]
    ticks: list[Tick]
    x_labels: list[tuple[float, str]]
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM
    polyline: str = field(default="")


def _nice_ceiling(value: float) -> float:
    """A round axis maximum at or above `value`: 1, 2, 2.5, 5 or 10 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if step * power >= value:
            return step * power
    return 10.0 * power


def _thresholds(verdicts: Sequence[CriterionVerdict], metric: Metric) -> list[CriterionVerdict]:
    # Per-purpose key-action criteria judge another series than the sum drawn here.
    return [v for v in verdicts if v.metric is metric and v.purpose is None]


def _panel(
    weeks: Sequence[WeekVerdict],
    metric: Metric,
    value_of: Callable[[WeekVerdict], float],
    show: Callable[[float], str],
    floor_max: float,
    headroom: float,
) -> Panel:
    latest = weeks[-1]
    criteria = _thresholds(latest.criteria, metric)
    stalls = _thresholds(latest.stall_checks, metric)
    values = [value_of(week) for week in weeks]
    highest = max([*values, *(c.threshold for c in criteria), *(s.threshold for s in stalls)])
    top_value = max(floor_max, _nice_ceiling(highest * headroom))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    def y_of(value: float) -> float:
        return round(TOP + plot_h * (1 - min(value, top_value) / top_value), 1)

    def x_of(index: int) -> float:
        if len(weeks) == 1:
            return LEFT + plot_w / 2
        return round(LEFT + plot_w * index / (len(weeks) - 1), 1)

    points = []
    for index, (week, value) in enumerate(zip(weeks, values, strict=True)):
        judged = _thresholds(week.criteria, metric)
        held = all(c.observed_held for c in judged) if judged else None
        points.append(
            Point(
                x=x_of(index),
                y=y_of(value),
                label=show(value),
                week=week.measurement.week_index,
                held=held,
            )
        )
    lines = [
        Line(y=y_of(c.threshold), label="≥ " + show(c.threshold), kind="criterion")
        for c in criteria
    ] + [Line(y=y_of(s.threshold), label="< " + show(s.threshold), kind="stall") for s in stalls]
    ticks = [Tick(y=y_of(top_value * f), label=show(top_value * f)) for f in (0, 0.5, 1)]
    x_labels = [(p.x, f"W{p.week}") for p in points]
    return Panel(
        metric=metric,
        width=WIDTH,
        height=HEIGHT,
        points=points,
        lines=lines,
        ticks=ticks,
        x_labels=x_labels,
        polyline=" ".join(f"{p.x},{p.y}" for p in points),
    )


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _count(value: float) -> str:
    return f"{value:g}" if value < 1000 else f"{value:,.0f}"


def measurement_panels(weeks: Sequence[WeekVerdict], purposes: Sequence[str]) -> list[Panel]:
    """Active-seat ratio and key actions per week, each against its thresholds; [] before
    the first measurement."""
    if not weeks:
        return []

    def key_actions(week: WeekVerdict) -> float:
        # The same sum the workflow judges: the customer's purposes (all, if none yet).
        return rules.observe(
            Metric.KEY_ACTIONS, None, week.measurement, goals_agreed=0, purposes=purposes
        )

    return [
        _panel(
            weeks,
            Metric.ACTIVE_SEAT_RATIO,
            lambda week: week.measurement.active_seat_ratio,
            _percent,
            floor_max=1.0,
            headroom=1.0,
        ),
        _panel(weeks, Metric.KEY_ACTIONS, key_actions, _count, floor_max=5.0, headroom=1.15),
    ]


# Kaplan-Meier curves for the cohort analytics: one step line per group, its 95% band
# shaded. The estimate comes from analytics/survival.py; here it only becomes geometry.

KM_WIDTH = 560
KM_HEIGHT = 230
# The largest groups drawn; the table lists every group.
KM_MAX_SERIES = 6
# Units the time axis may use, largest first: (unit, seconds, switch to it from).
_TIME_UNITS = (("days", 86_400.0, 2 * 86_400.0), ("hours", 3_600.0, 2 * 3_600.0),
               ("minutes", 60.0, 120.0), ("seconds", 1.0, 0.0))  # fmt: skip


@dataclass(frozen=True)
class SurvivalSeries:
    group: str
    # Which of the KM_MAX_SERIES colours (CSS class km-<n>).
    index: int
    # SVG path data: the step curve, and the band as a closed area.
    line: str
    band: str


@dataclass(frozen=True)
class SurvivalChart:
    width: int
    height: int
    series: list[SurvivalSeries]
    # Where the curve crosses one half is the median: a guide line there.
    half_y: float
    y_ticks: list[Tick]
    x_ticks: list[tuple[float, str]]
    # "days", "hours", "minutes" or "seconds": the axis title's words.
    x_unit: str
    # Groups left out of the drawing (smaller ones); the table has them.
    hidden: int
    plot_left: int = LEFT
    plot_right: int = KM_WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = KM_HEIGHT - BOTTOM


def _last_per_column(xs: Sequence[float]) -> list[int]:
    """Indices of the last point in each pixel column (xs ascending): a step curve of
    10,000 customers drawn with one change per column, at the value the column ends on."""
    last = len(xs) - 1
    return [i for i, x in enumerate(xs) if i == last or xs[i + 1] != x]


def _path(corners: Sequence[tuple[float, float]], x0: float, y0: float) -> str:
    parts = [f"M{x0},{y0}"]
    for x, y in corners:
        parts.append(f"H{x}V{y}")
    return "".join(parts)


def survival_chart(groups: Sequence[GroupEstimate]) -> SurvivalChart | None:
    """The curves of the largest groups with an estimate; None when none has one."""
    drawn = sorted((g for g in groups if g.customers), key=lambda g: (-g.customers, g.group))[
        :KM_MAX_SERIES
    ]
    if not drawn:
        return None
    longest = max(g.longest_seconds for g in drawn)
    unit, per, _ = next(u for u in _TIME_UNITS if longest >= u[2])
    top_value = _nice_ceiling(longest / per) if longest > 0 else 1.0
    plot_w = KM_WIDTH - LEFT - RIGHT
    plot_h = KM_HEIGHT - TOP - BOTTOM

    def x_of(seconds: float) -> float:
        return round(LEFT + plot_w * min(seconds / per, top_value) / top_value, 1)

    def y_of(share: float) -> float:
        return round(TOP + plot_h * (1 - share), 1)

    series = []
    # In the table's order.
    chosen = {g.group for g in drawn}
    for index, group in enumerate(g for g in groups if g.group in chosen):
        x_end = x_of(group.longest_seconds)
        xs = [x_of(p.seconds) for p in group.curve]
        kept = [(xs[i], group.curve[i]) for i in _last_per_column(xs)]
        line = [(x, y_of(p.survival)) for x, p in kept]
        high = [(x, y_of(p.survival if p.ci_high is None else p.ci_high)) for x, p in kept]
        low = [(x, y_of(p.survival if p.ci_low is None else p.ci_low)) for x, p in kept]
        for corners in (line, high, low):
            if corners:
                corners.append((x_end, corners[-1][1]))
        start = y_of(1.0)
        band = ""
        if high:
            # Along the upper edge, then back along the lower one.
            # Backwards, each corner of the lower edge returns to the value before it.
            before = [start, *(y for _, y in low[:-2])]
            back = [f"H{x}V{y}" for (x, _), y in reversed(list(zip(low[:-1], before, strict=True)))]
            band = _path(high, LEFT, start) + f"V{low[-1][1]}" + "".join(back) + f"H{LEFT}Z"
        series.append(
            SurvivalSeries(
                group=group.group,
                index=index,
                line=_path(line or [(x_end, start)], LEFT, start),
                band=band,
            )
        )
    return SurvivalChart(
        width=KM_WIDTH,
        height=KM_HEIGHT,
        series=series,
        half_y=y_of(0.5),
        y_ticks=[Tick(y=y_of(f), label=f"{f * 100:.0f}%") for f in (0, 0.5, 1)],
        x_ticks=[
            (x_of(top_value * f * per), f"{top_value * f:g}") for f in (0, 0.2, 0.4, 0.6, 0.8, 1)
        ],
        x_unit=unit,
        hidden=len([g for g in groups if g.customers]) - len(drawn),
    )
