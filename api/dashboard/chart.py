"""The weekly measurement as chart geometry: points and threshold lines in SVG coordinates.

Pure arithmetic over the workflow's own verdicts, so the thresholds drawn are the
ones the customer is judged against (its pinned playbook), not today's file.
The template turns the geometry into inline SVG; no chart library, no JS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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
