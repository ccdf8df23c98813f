"""What happened to a cohort's customers after their onboarding ended, planted by
construction: each customer's chance to churn within a year and its health a year on
follow from how its onboarding ended and the usage its last weekly measurement saw,
as a `Planted` relationship says. So a test (and a demo) knows what the outcome
analysis (analytics/outcomes.py) must find, and where it must find nothing.

`simulated_endings` reads each customer's ending from a simulation's database, as the
real workflow left it: the outcome and end instant of its projection, its last weekly
measurement. `draw_outcomes` turns a customer's fate into dated renewal or churn events
and health scores 6 and 12 months on, from a seeded `random.Random`; `churners` picks
who churns so that each fate's rate holds exactly in a demo cohort.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import col, select

from models.onboarding import Stage
from models.outcomes import HealthScoreIn, OutcomeEventIn, OutcomeKind
from models.tables import CustomerProjection, WeeklyMeasurementRecord
from records.database import Database

HEALTH_SOURCE = "gainsight"
OUTCOME_SOURCE = "crm"
HEALTH_SPREAD = 12.0
HEALTH_MONTHS = (6, 12)
# A renewal's yearly contract value, in the currency below.
RENEWAL_ARR = 1_200_000
RENEWAL_CURRENCY = "JPY"
# Key actions a week at the last measurement below which `KEY_ACTIONS_DRIVE_OUTCOMES`
# plants the higher churn: the default playbook's key-action criterion.
KEY_ACTIONS_LEVEL = 20


@dataclass(frozen=True)
class Usage:
    """The usage of a customer's last weekly measurement."""

    seat_ratio: float
    key_actions: int
    quota: float


@dataclass(frozen=True)
class Fate:
    churn: float  # chance to churn within a year of the onboarding's end
    health: float  # mean health score a year on


@dataclass(frozen=True)
class Planted:
    """What happens after the onboarding, given how it ended and the usage behind it
    (None: never measured)."""

    fate: Callable[[Stage, Usage | None], Fate]


# Failed customers churn about 3x as often as onboarded ones, and are about half as
# healthy, because both follow the seats criterion (active seats >= 60% for 2 weeks).
SEATS_DRIVE_OUTCOMES = Planted(
    lambda stage, usage: (
        Fate(0.5, 45.0)
        if usage is None
        else Fate(0.1, 75.0)
        if usage.seat_ratio >= 0.6
        else Fate(0.4, 40.0)
    )
)
# Customers whose key actions stayed below KEY_ACTIONS_LEVEL a week (or were never
# measured) churn 3x as often and are less healthy, however their onboarding ended.
KEY_ACTIONS_DRIVE_OUTCOMES = Planted(
    lambda stage, usage: (
        Fate(0.45, 40.0)
        if usage is None or usage.key_actions < KEY_ACTIONS_LEVEL
        else Fate(0.15, 72.0)
    )
)
# Nothing planted: every customer the same, however it ended.
NO_RELATIONSHIP = Planted(lambda stage, usage: Fate(0.2, 60.0))


class Relationship(StrEnum):
    """The relationships a demo cohort can be given, by the name the CLI takes."""

    KEY_ACTIONS = "key-actions"
    NONE = "none"

    @property
    def planted(self) -> Planted:
        match self:
            case Relationship.KEY_ACTIONS:
                return KEY_ACTIONS_DRIVE_OUTCOMES
            case Relationship.NONE:
                return NO_RELATIONSHIP

    @property
    def description(self) -> str:
        match self:
            case Relationship.KEY_ACTIONS:
                return (
                    f"fewer than {KEY_ACTIONS_LEVEL} key actions a week at the last "
                    "measurement: 45% churn within a year and health 40, against 15% and 72"
                )
            case Relationship.NONE:
                return "none: every customer 20% churn within a year and health 60"


@dataclass(frozen=True)
class Ending:
    """How one simulated customer's onboarding ended, as the workflow recorded it."""

    customer_id: str
    outcome: Stage
    ended_at: datetime
    usage: Usage | None


def simulated_endings(database: Database, customer_ids: Sequence[str]) -> list[Ending]:
    """The customers among `customer_ids` whose onboarding ended, in id order, each with
    its last weekly measurement's usage. Customers still onboarding are left out: their
    renewal is not due relative to an end they have not reached."""
    wanted = set(customer_ids)
    with database.session() as session:
        ended = [
            (customer_id, Stage(outcome), ended_at)
            for customer_id, outcome, ended_at in session.exec(
                select(
                    CustomerProjection.customer_id,
                    CustomerProjection.outcome,
                    CustomerProjection.ended_at,
                )
                .where(col(CustomerProjection.outcome).is_not(None))
                .order_by(col(CustomerProjection.customer_id))
            )
            if customer_id in wanted and outcome is not None and ended_at is not None
        ]
        last_week = (
            select(
                WeeklyMeasurementRecord.customer_id,
                func.max(WeeklyMeasurementRecord.week_index).label("week"),
            )
            .group_by(col(WeeklyMeasurementRecord.customer_id))
            .subquery()
        )
        usage = {
            row.customer_id: Usage(
                seat_ratio=row.active_seat_ratio,
                key_actions=sum(row.key_actions.values()),
                quota=row.quota_consumption or 0.0,
            )
            for row in session.exec(
                select(WeeklyMeasurementRecord).join(
                    last_week,
                    (col(WeeklyMeasurementRecord.customer_id) == last_week.c.customer_id)
                    & (col(WeeklyMeasurementRecord.week_index) == last_week.c.week),
                )
            )
            if row.customer_id in wanted
        }
    return [
        Ending(customer_id, outcome, ended_at, usage.get(customer_id))
        for customer_id, outcome, ended_at in ended
    ]


def churners(fates: Mapping[str, Fate], rng: random.Random) -> set[str]:
    """Of the customers sharing a fate, exactly `churn` of them (rounded) churn, chosen at
    random: the planted rates hold in the cohort itself, not only on average, so a cohort
    of a few dozen failures shows what was planted whatever the seed."""
    by_fate: dict[Fate, list[str]] = {}
    for customer_id in sorted(fates):
        by_fate.setdefault(fates[customer_id], []).append(customer_id)
    chosen: set[str] = set()
    for fate, ids in sorted(by_fate.items(), key=lambda item: (item[0].churn, item[0].health)):
        chosen.update(rng.sample(ids, round(fate.churn * len(ids))))
    return chosen


def draw_outcomes(
    customer_id: str,
    ended_on: date,
    fate: Fate,
    rng: random.Random,
    *,
    churns: bool | None = None,
) -> tuple[list[OutcomeEventIn], list[HealthScoreIn]]:
    """The customer's churn within a year (when `churns`, or by chance at `fate.churn`
    when None) or renewal a year on, and its health scores about 6 and 12 months on while
    it stays (around `fate.health`)."""
    if churns is None:
        churns = rng.random() < fate.churn
    churned_on = ended_on + timedelta(days=rng.randint(20, 350)) if churns else None
    if churned_on is not None:
        event = OutcomeEventIn(
            customer_id=customer_id,
            kind=OutcomeKind.CHURNED,
            occurred_on=churned_on,
            source=OUTCOME_SOURCE,
        )
    else:
        event = OutcomeEventIn(
            customer_id=customer_id,
            kind=OutcomeKind.RENEWED,
            occurred_on=ended_on + timedelta(days=365),
            arr=RENEWAL_ARR,
            currency=RENEWAL_CURRENCY,
            source=OUTCOME_SOURCE,
        )
    scores = []
    for months in HEALTH_MONTHS:
        day = ended_on + timedelta(days=round(months * 365.25 / 12) + rng.randint(-10, 10))
        if churned_on is not None and day >= churned_on:
            continue  # a churned customer is scored no more
        score = min(100.0, max(0.0, rng.gauss(fate.health, HEALTH_SPREAD)))
        scores.append(
            HealthScoreIn(
                customer_id=customer_id, scored_on=day, score=round(score, 1), source=HEALTH_SOURCE
            )
        )
    return [event], scores
