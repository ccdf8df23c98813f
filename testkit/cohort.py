"""Timeline entries for the cohort analytics, shaped as the workflow writes them: weekly
verdicts (`WeekVerdict` as JSON) with chosen criteria unmet, stall episodes, and the
snapshot each write carries. Tests write them through the timeline activity; the bench
inserts them in bulk."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.store import StoreActivities
from models.activity_io import RecordTimelineInput
from models.handoff import Role
from models.onboarding import CriterionVerdict, Stage, WeeklyMeasurement, WeekVerdict
from models.playbook import Metric
from models.projection import ProjectionSnapshot
from models.tables import CustomerContact, EmailEvent, EmailLedgerEntry, TimelineEntry
from records.database import Database, insert_ignore

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


@dataclass
class Activity:
    """What a book of business leaves besides its projection rows: timeline entries
    (weekly verdicts, stall episodes), contacts, step emails and the provider's events."""

    timeline: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


# Weekly verdicts kept per customer in the synthetic book.
MAX_SYNTHETIC_WEEKS = 12
_CRITERIA = ("key_actions[A]", "active_seat_ratio", "goals_agreed")


def synthetic_activity(
    rows: Sequence[dict[str, Any]], now: datetime, *, seed: int = 11
) -> Activity:
    """For projection rows of `testkit.projections.synthetic_cohort`: weekly verdicts
    through adoption (failed and stalled customers missing a criterion at the end),
    stall episodes, three contacts, the step emails and their events."""
    rng = random.Random(seed)
    found = Activity()
    verdict_cache: dict[tuple[int, tuple[str, ...]], dict[str, Any]] = {}
    for row in rows:
        customer_id = row["customer_id"]
        started: datetime = row["started_at"]
        entries: list[tuple[datetime, str, dict[str, Any]]] = []
        for role in Role:
            found.contacts.append(
                {"customer_id": customer_id, "email": f"{role.value}@{customer_id}.example",
                 "name": role.value, "role": role.value, "unsubscribed": False}
            )  # fmt: skip
        sends = [(f"campaign:shared:kickoff_prep:{r.value}", started + timedelta(days=1))
                 for r in (Role.DECISION_MAKER, Role.ADMINISTRATOR)]  # fmt: skip
        reached_adoption = row["furthest"] >= 3 or row["stage"] == Stage.ADOPTION.value
        if reached_adoption:
            adoption = started + timedelta(
                seconds=(row["kickoff_seconds"] or 0) + (row["training_seconds"] or 0)
            )
            length = row["adoption_seconds"] or (now - adoption).total_seconds()
            weeks = max(1, min(MAX_SYNTHETIC_WEEKS, int(length // WEEK.total_seconds())))
            troubled = row["outcome"] == Stage.FAILED.value or row["stalled"]
            missing_at_end = rng.choices(_CRITERIA, (6, 3, 1))[0]
            for week in range(1, weeks + 1):
                end = adoption + week * WEEK
                late = troubled and week > weeks - rng.randint(1, 4)
                unmet = (missing_at_end,) if late else ()
                if not unmet and week < weeks and rng.random() < 0.3:
                    unmet = ("key_actions[A]",)
                cached = (week, unmet)
                if cached not in verdict_cache:
                    verdict_cache[cached] = week_verdict(week, end, missing=unmet)
                details = dict(verdict_cache[cached])
                details["measurement"] = dict(
                    details["measurement"],
                    window_start=(end - WEEK).isoformat(),
                    window_end=end.isoformat(),
                )
                entries.append((end, "weekly_measurement", details))
            sends += [(f"campaign:A:welcome:{r.value}", adoption) for r in Role]
            if row["stalled"] or rng.random() < 0.2:
                since = adoption + WEEK
                entries.append((since, "stall_started", {"episode": 1}))
                sends.append(("campaign:A:proposal:administrator", since + timedelta(days=2)))
                if not row["stalled"]:
                    entries.append((since + 2 * WEEK, "stall_cleared", {"episode": 1}))
        for seq, (at, kind, details) in enumerate(entries, start=1):
            found.timeline.append(
                {"customer_id": customer_id, "seq": seq, "at": at, "kind": kind,
                 "stage": row["stage"], "summary": kind, "details": details, "snapshot": None}
            )  # fmt: skip
        for key, sent_at in sends:
            recipient = f"{key.rsplit(':', 1)[1]}@{customer_id}.example"
            found.ledger.append(
                {"customer_id": customer_id, "ledger_key": key, "recipient": recipient,
                 "template": key.split(":")[2], "status": "sent", "created_at": sent_at,
                 "sent_at": sent_at}
            )  # fmt: skip
            fates = [("delivered", 0.95), ("open", 0.5), ("click", 0.2), ("unsubscribe", 0.01)]
            for offset, (event, chance) in enumerate(fates, start=1):
                if rng.random() < chance:
                    found.events.append(
                        {"sg_event_id": f"{customer_id}:{key}:{event}", "customer_id": customer_id,
                         "ledger_key": key, "recipient": recipient, "event": event,
                         "occurred_at": sent_at + timedelta(minutes=offset),
                         "machine_open": event == "open" and rng.random() < 0.1, "raw": {},
                         "received_at": sent_at + timedelta(minutes=offset)}
                    )  # fmt: skip
    return found


def insert_activity(database: Database, activity: Activity) -> None:
    """Bulk inserts, a thousand rows a statement."""
    tables = (
        (TimelineEntry, activity.timeline, ["customer_id", "seq"]),
        (CustomerContact, activity.contacts, ["customer_id", "email"]),
        (EmailLedgerEntry, activity.ledger, ["customer_id", "ledger_key", "recipient"]),
        (EmailEvent, activity.events, ["sg_event_id"]),
    )
    with database.session() as session:
        for table, rows, key in tables:
            for start in range(0, len(rows), 1000):
                insert_ignore(session, table, rows[start : start + 1000], key)
