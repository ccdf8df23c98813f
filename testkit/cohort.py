"""Timeline entries for the cohort analytics, shaped as the workflow writes them: weekly
verdicts (`WeekVerdict` as JSON) with chosen criteria unmet, stall episodes, and the
snapshot each write carries. Tests write them through the timeline activity; the bench
inserts them in bulk."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.store import StoreActivities
from models.activity_io import RecordTimelineInput
from models.onboarding import CriterionVerdict, Stage, WeeklyMeasurement, WeekVerdict
from models.playbook import Metric
from models.projection import ProjectionSnapshot
from records.database import Database

WEEK = timedelta(days=7)


def week_verdict(
    week: int,
    window_end: datetime,
    *,
    missing: Iterable[str] = (),
    purposes: Sequence[str] = ("A",),
) -> dict[str, Any]:
    """Week `week`'s verdict as the timeline stores it: the active-seat ratio, each
    purpose's key actions and the goals agreed, met unless named in `missing`
    ("active_seat_ratio", "key_actions[A]")."""
    unmet = set(missing)
    criteria = [(Metric.ACTIVE_SEAT_RATIO, None, 0.6), (Metric.GOALS_AGREED, None, 1.0)] + [
        (Metric.KEY_ACTIONS, purpose, 20.0) for purpose in purposes
    ]
    verdicts = []
    for metric, purpose, threshold in criteria:
        name = metric.value + (f"[{purpose}]" if purpose else "")
        met = name not in unmet
        verdicts.append(
            CriterionVerdict(
                metric=metric,
                purpose=purpose,
                observed=threshold * (1.5 if met else 0.25),
                threshold=threshold,
                weeks_required=2,
                weeks_running=2 if met else 0,
                observed_held=met,
                met=met,
            )
        )
    verdict = WeekVerdict(
        measurement=WeeklyMeasurement(
            week_index=week,
            window_start=window_end - WEEK,
            window_end=window_end,
            active_users=3,
            active_seat_ratio=0.3,
            events=40,
            key_actions=dict.fromkeys(purposes, 5),
            quota_consumption=None,
            data_ever_arrived=True,
        ),
        criteria=verdicts,
        criteria_met=not unmet,
        stall_checks=[],
        stalled=bool(unmet),
    )
    return verdict.model_dump(mode="json")


def snapshot(
    *,
    csm: str,
    stage: Stage,
    since: datetime,
    started_at: datetime,
    stalled: bool = False,
    purposes: Sequence[str] = ("A",),
    locale: str = "en",
) -> ProjectionSnapshot:
    """A customer on the path from `started_at`, in `stage` since `since`."""
    return ProjectionSnapshot(
        name="Acme Logistics",
        csm=csm,
        cs_leader="lead@liftoff.example",
        stage=stage,
        stage_since=since,
        stage_entered={Stage.HANDOFF: started_at, Stage.KICKOFF: started_at, stage: since},
        started_at=started_at,
        stalled=stalled,
        playbook_name="default",
        playbook_version="1",
        purposes=list(purposes),
        seats_contracted=10,
        locale=locale,
    )


def record(
    database: Database,
    customer_id: str,
    entries: Iterable[tuple[datetime, str, dict[str, Any], ProjectionSnapshot]],
) -> None:
    """(at, kind, details, snapshot) entries, numbered from 1, through the timeline
    activity: stored and folded into the projection as the workflow's writes are."""
    store = StoreActivities(database)
    environment = ActivityEnvironment()
    for seq, (at, kind, details, snap) in enumerate(entries, start=1):
        environment.run(
            store.record_timeline,
            RecordTimelineInput(
                customer_id=customer_id,
                seq=seq,
                at=at,
                kind=kind,
                stage=snap.stage,
                summary=kind.replace("_", " "),
                details=details,
                snapshot=snap,
            ),
        )
