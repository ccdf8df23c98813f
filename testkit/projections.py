"""Customer projection rows written directly: a cohort of any size for the list and
cohort tests and for the bench, without running a workflow per customer."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from models.onboarding import STAGE_PATH, DueKind, Stage
from models.tables import CustomerProjection
from records.database import Database, insert_ignore
from records.projections import PATH_RANK, TIMED_COLUMNS, seats_band

DAY = timedelta(days=1)


def projection_row(customer_id: str, now: datetime, **overrides: Any) -> dict[str, Any]:
    """A customer in kickoff since a day ago, with one open task; override what matters."""
    row: dict[str, Any] = {
        "customer_id": customer_id,
        "name": f"Customer {customer_id}",
        "csm": "csm@liftoff.example",
        "cs_leader": "lead@liftoff.example",
        "stage": Stage.KICKOFF.value,
        "stage_since": now - DAY,
        "furthest": PATH_RANK[Stage.KICKOFF],
        "stalled": False,
        "setup_stuck": False,
        "paused": False,
        "paused_since": None,
        "pause_reason": None,
        "next_due_kind": DueKind.REMIND_CSM.value,
        "next_due_at": now + 2 * DAY,
        "open_tasks": 1,
        "escalations": 0,
        "playbook_name": "default",
        "playbook_version": "1",
        "purposes": ["A"],
        "seats_contracted": 10,
        "seats_band": seats_band(10),
        "trial_used": False,
        "locale": "en",
        "time_zone": "UTC",
        "country": None,
        "outcome": None,
        "started_at": now - DAY,
        "ended_at": None,
        "onboard_seconds": None,
        "last_seq": 1,
    }
    row |= dict.fromkeys(TIMED_COLUMNS.values())
    row |= overrides
    if Stage(row["stage"]).terminal and "outcome" not in overrides:
        row["outcome"] = row["stage"]
    return row


def insert_projection_rows(database: Database, rows: Sequence[dict[str, Any]]) -> None:
    with database.session() as session:
        for start in range(0, len(rows), 1000):
            insert_ignore(session, CustomerProjection, rows[start : start + 1000], ["customer_id"])


def synthetic_cohort(
    count: int, now: datetime, *, csms: int = 40, seed: int = 7
) -> list[dict[str, Any]]:
    """`count` customers spread over the stages, CSMs and outcomes of a real book of
    business: most ended, some stalled or stuck, stays of a few days to weeks."""
    rng = random.Random(seed)
    stages = [*STAGE_PATH[1:5], Stage.ONBOARDED, Stage.FAILED, Stage.CANCELLED]
    weights = [6, 4, 12, 3, 55, 12, 8]
    rows = []
    for n in range(count):
        stage = rng.choices(stages, weights)[0]
        started = now - timedelta(days=rng.uniform(1, 720))
        at = started
        stays: dict[str, Any] = {}
        furthest = 0
        path = [s for s in STAGE_PATH[1:5] if stage.terminal or PATH_RANK[s] <= PATH_RANK[stage]]
        if stage in (Stage.FAILED, Stage.CANCELLED):
            path = path[: rng.randint(1, 3)]
        for index, visited in enumerate(path):
            furthest = PATH_RANK[visited]
            stay = timedelta(days=rng.uniform(1, 30))
            if index < len(path) - 1 or stage.terminal:
                stays[TIMED_COLUMNS[visited]] = stay.total_seconds()
                at += stay
        if stage is Stage.ONBOARDED:
            furthest = PATH_RANK[Stage.ONBOARDED]
        ended = at if stage.terminal else None
        seats = rng.choice([5, 25, 120, 600, 3000])
        rows.append(
            projection_row(
                f"cust-{n:06d}",
                now,
                name=f"Customer {n:06d}",
                csm=f"csm-{n % csms:02d}@liftoff.example",
                stage=stage.value,
                stage_since=at,
                furthest=furthest,
                stalled=stage is Stage.ADOPTION and rng.random() < 0.2,
                setup_stuck=stage is Stage.ADOPTION and rng.random() < 0.1,
                open_tasks=0 if stage.terminal else rng.randint(0, 4),
                next_due_kind=None if stage.terminal else DueKind.MEASURE.value,
                next_due_at=None if stage.terminal else now + timedelta(days=rng.uniform(0, 7)),
                seats_contracted=seats,
                seats_band=seats_band(seats),
                started_at=started,
                ended_at=ended,
                outcome=stage.value if stage.terminal else None,
                onboard_seconds=(at - started).total_seconds()
                if stage is Stage.ONBOARDED
                else None,
                **stays,
            )
        )
    return rows
