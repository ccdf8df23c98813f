"""A cohort of customers whose onboarding ended, and what happened to them after, written
through the real functions: each customer's timeline by the store activity (so the
projection is folded as live), its last weekly verdicts judged by `workflows.rules`
on the shipped playbook, its churn, renewals and health scores by `records.outcomes`.

What happens after is planted by construction: a customer's chance to churn and its
health depend on what `Planted` says, so a test knows what the analysis must find.
The planting model and its relationships live in simulation/outcomes.py, which the
demo cohort (`liftoff demo cohort`) shares; they are re-exported here for the tests.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from temporalio.testing import ActivityEnvironment

from activities.store import StoreActivities
from models.activity_io import RecordTimelineInput
from models.onboarding import Stage, WeeklyMeasurement, WeekVerdict
from models.outcomes import HealthScoreIn, OutcomeEventIn
from models.projection import ProjectionSnapshot
from records.database import Database
from records.outcomes import store_health_scores, store_outcome_events
from simulation.outcomes import (
    NO_RELATIONSHIP,
    SEATS_DRIVE_OUTCOMES,
    Fate,
    Planted,
    Usage,
    draw_outcomes,
)
from testkit.factories import make_handoff, make_playbook, store_customer
from workflows import rules

__all__ = [
    "NO_RELATIONSHIP",
    "SEATS_DRIVE_OUTCOMES",
    "Fate",
    "Planted",
    "Usage",
    "write_ended_customer",
    "write_outcome_cohort",
]


def _usage(stage: Stage, rng: random.Random) -> Usage | None:
    if stage is Stage.CANCELLED:
        return None  # cancelled before any weekly measurement
    if stage is Stage.ONBOARDED:
        return Usage(seat_ratio=0.7, key_actions=25, quota=0.4)
    # Failed: at least the seats or the key actions fell short, most often the seats.
    seats_met = rng.random() < 0.2
    return Usage(
        seat_ratio=0.7 if seats_met else 0.3,
        key_actions=25 if not seats_met and rng.random() < 0.5 else 5,
        quota=0.4 if rng.random() < 0.5 else 0.1,
    )


def _last_verdict(usage: Usage, ended: datetime) -> WeekVerdict:
    """The verdict of the customer's last measurement, judged by the real rules over two
    weeks of the same usage (the seats criterion needs two weeks running)."""
    playbook = make_playbook()
    earlier: list[WeekVerdict] = []
    for week in (1, 2):
        end = ended - timedelta(days=7 * (2 - week) + 1)
        measurement = WeeklyMeasurement(
            week_index=week,
            window_start=end - timedelta(days=7),
            window_end=end,
            active_users=round(10 * usage.seat_ratio),
            active_seat_ratio=usage.seat_ratio,
            events=usage.key_actions * 2,
            key_actions={"A": usage.key_actions},
            quota_consumption=usage.quota,
            data_ever_arrived=True,
        )
        earlier.append(
            rules.evaluate_week(
                playbook, measurement, goals_agreed=1, purposes=["A"], earlier=earlier
            )
        )
    return earlier[-1]


def _snapshot(
    customer_id: str, stage: Stage, at: datetime, started: datetime, version: str
) -> ProjectionSnapshot:
    return ProjectionSnapshot(
        name=f"Customer {customer_id}",
        csm="csm@liftoff.example",
        cs_leader="lead@liftoff.example",
        stage=stage,
        stage_since=at,
        stage_entered={Stage.HANDOFF: started, stage: at},
        started_at=started,
        playbook_name="default",
        playbook_version=version,
        purposes=["A"],
        seats_contracted=10,
    )


def write_ended_customer(
    database: Database,
    customer_id: str,
    stage: Stage,
    *,
    started: datetime,
    ended: datetime,
    usage: Usage | None,
    version: str = "1",
) -> None:
    """A customer whose onboarding ended with `stage`, its last measurement judged on
    `usage` (none when None), written as its workflow's activities write it."""
    store_customer(database, make_handoff(customer_id=customer_id))
    store = StoreActivities(database)
    env = ActivityEnvironment()
    entries = [
        RecordTimelineInput(
            customer_id=customer_id,
            seq=1,
            at=started,
            kind="transition",
            stage=Stage.HANDOFF,
            summary="onboarding started",
            details={"from": None, "to": Stage.HANDOFF.value},
            snapshot=_snapshot(customer_id, Stage.HANDOFF, started, started, version),
        )
    ]
    if usage is not None:
        verdict = _last_verdict(usage, ended)
        entries.append(
            RecordTimelineInput(
                customer_id=customer_id,
                seq=2,
                at=verdict.measurement.window_end,
                kind="weekly_measurement",
                stage=Stage.ADOPTION,
                summary="week measured",
                details=verdict.model_dump(mode="json"),
                snapshot=_snapshot(customer_id, Stage.ADOPTION, started, started, version),
            )
        )
    entries.append(
        RecordTimelineInput(
            customer_id=customer_id,
            seq=3,
            at=ended,
            kind="transition",
            stage=stage,
            summary=f"onboarding ended: {stage.value}",
            details={"from": Stage.ADOPTION.value, "to": stage.value},
            snapshot=_snapshot(customer_id, stage, ended, started, version),
        )
    )
    for entry in entries:
        env.run(store.record_timeline, entry)


def write_outcome_cohort(
    database: Database,
    planted: Planted,
    *,
    count: int,
    as_of: date,
    seed: int = 11,
    version: str = "1",
    prefix: str = "oc",
) -> None:
    """`count` customers who ended 13 to 30 months before `as_of` (so a year on is known
    for all), about 45% onboarded, 40% failed and 15% cancelled, with their churn,
    renewals and health scores 6 and 12 months on drawn as `planted` says."""
    rng = random.Random(seed)
    events: list[OutcomeEventIn] = []
    scores: list[HealthScoreIn] = []
    for n in range(count):
        customer_id = f"{prefix}-{n:04d}"
        stage = rng.choices([Stage.ONBOARDED, Stage.FAILED, Stage.CANCELLED], [45, 40, 15])[0]
        ended_on = as_of - timedelta(days=rng.randint(395, 900))
        ended = datetime.combine(ended_on, time(9), tzinfo=UTC)
        started = ended - timedelta(days=rng.randint(30, 120))
        usage = _usage(stage, rng)
        write_ended_customer(
            database, customer_id, stage, started=started, ended=ended, usage=usage, version=version
        )
        drawn_events, drawn_scores = draw_outcomes(
            customer_id, ended_on, planted.fate(stage, usage), rng
        )
        events += drawn_events
        scores += drawn_scores
    store_outcome_events(database, events)
    store_health_scores(database, scores)
