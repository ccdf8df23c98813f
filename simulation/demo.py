"""A demo cohort for the CS leader's pages (`liftoff demo cohort`): a simulated run's
customers, copied into a real database with outcomes planted after their onboarding.

The simulation runs in the 2090s (the time-skipping server only moves forward from
today, simulation/runner.py), while the pages judge "a year on" against today. So the
customers whose onboarding ended are copied out of the run's database with every
instant moved back by a whole number of weeks (weekdays and local hours stay as the
workflow lived them), until the last of them ended `ENDED_DAYS_AGO` days before today:
a year on is then known for every customer. Copied are the rows the cohort, outcomes
and review pages read (customer, contacts, timeline, projection, weekly measurements,
tasks, email ledger), not the raw usage events. Dates inside the copied text and JSON
(a timeline entry's measurement window, a summary's "held on") move with them.

Their workflows ended with the run; customers still onboarding when it ended are left
out, since a customer page would ask Temporal about a workflow that is gone and no
renewal is due before an onboarding ends. The customers' ids start with `demo-`, and
the playbook version they ran is the real one's with `demo-` in front, so the demo
never mixes with real customers in the analysis or the playbook review.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlmodel import SQLModel, col

from models import limits
from models.onboarding import Stage
from models.outcomes import HealthScoreIn, OutcomeEventIn
from models.playbook import Playbook
from models.tables import (
    Customer,
    CustomerContact,
    CustomerProjection,
    EmailLedgerEntry,
    HealthScoreRecord,
    OutcomeEventRecord,
    PlaybookVersionRecord,
    Task,
    TimelineEntry,
    UsageEvent,
    WeeklyMeasurementRecord,
)
from records.database import Database, insert_ignore
from records.outcomes import store_health_scores, store_outcome_events
from records.playbook_versions import VersionConflict, record_version
from simulation.outcomes import (
    Ending,
    Relationship,
    churners,
    draw_outcomes,
    simulated_endings,
)
from simulation.runner import Arm, SimulationRun

LABEL = "demo"
PREFIX = f"{LABEL}-"
SOURCE = "liftoff demo cohort"
# The last demo customer's onboarding ended this many days before today, or more.
ENDED_DAYS_AGO = 400
# Rows per IN list: far inside SQLite's and PostgreSQL's limits.
_BATCH = 500
# Each copied table with the key a repeated insert would conflict on; autoincrement
# ids are left to the target.
_COPIED: tuple[tuple[type[SQLModel], tuple[str, ...]], ...] = (
    (Customer, ("customer_id",)),
    (CustomerContact, ("customer_id", "email")),
    (TimelineEntry, ("customer_id", "seq")),
    (CustomerProjection, ("customer_id",)),
    (WeeklyMeasurementRecord, ("customer_id", "week_index")),
    (Task, ("task_id",)),
    (EmailLedgerEntry, ("customer_id", "ledger_key", "recipient")),
)
_AUTOINCREMENT = "id"
# What --replace removes: everything a demo customer has in these tables.
_REMOVED: tuple[type[SQLModel], ...] = (
    *(table for table, _ in _COPIED),
    OutcomeEventRecord,
    HealthScoreRecord,
    UsageEvent,
)
# A calendar date of the simulated era (years 2094 to 2099: shard.START and the
# longest run after it) inside text.
_SIMULATED_DATE = re.compile(r"(?<![\d-])(209[4-9]-[01]\d-[0-3]\d)(?!\d)")


class DemoError(Exception):
    """A demo cohort that cannot be written as asked; the message says what to change."""


def demo_playbook(playbook: Playbook) -> Playbook:
    """The playbook under its demo version, so demo customers form a version of their own."""
    version = f"{PREFIX}{playbook.version}"[: limits.VERSION_CHARS]
    return playbook.model_copy(update={"version": version})


def demo_arm(playbook: Playbook) -> Arm:
    return Arm(LABEL, demo_playbook(playbook))


def demo_customers(database: Database) -> int:
    """How many demo customers the database holds."""
    with database.session() as session:
        found = session.execute(
            select(func.count())
            .select_from(Customer)
            .where(col(Customer.customer_id).startswith(PREFIX))
        ).scalar_one()
    return int(found)


def _table(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def remove_demo(database: Database) -> None:
    """Every demo customer's rows, gone in one transaction."""
    with database.session() as session:
        for model in _REMOVED:
            table = _table(model)
            session.execute(delete(table).where(table.c.customer_id.startswith(PREFIX)))
        # Only demo customers follow its versions: a replacing demo may record new content.
        session.execute(
            delete(PlaybookVersionRecord).where(col(PlaybookVersionRecord.source) == SOURCE)
        )


def shift_back(ended: Sequence[datetime], today: date) -> timedelta:
    """Whole weeks that put the latest of `ended` ENDED_DAYS_AGO days before today."""
    latest = max(ended).date()
    days = (latest - (today - timedelta(days=ENDED_DAYS_AGO))).days
    return timedelta(weeks=max(0, math.ceil(days / 7)))


def shifted(value: Any, shift: timedelta) -> Any:
    """`value` moved back by `shift` (whole days): instants, dates, and the dates of the
    simulated era inside text and JSON."""
    match value:
        case datetime() | date():
            return value - shift
        case str():
            return _SIMULATED_DATE.sub(
                lambda found: (date.fromisoformat(found[1]) - shift).isoformat(), value
            )
        case dict():
            return {key: shifted(item, shift) for key, item in value.items()}
        case list():
            return [shifted(item, shift) for item in value]
        case _:
            return value


def _copy(source: Database, target: Database, ids: Sequence[str], shift: timedelta) -> int:
    """The customers' rows, shifted, into `target` in one transaction; returns rows copied."""
    copied = 0
    with source.session() as reading, target.session() as writing:
        for model, key in _COPIED:
            table = _table(model)
            for start in range(0, len(ids), _BATCH):
                chunk = list(ids[start : start + _BATCH])
                rows = [
                    {
                        name: shifted(value, shift)
                        for name, value in row._mapping.items()
                        if name != _AUTOINCREMENT
                    }
                    for row in reading.execute(select(table).where(table.c.customer_id.in_(chunk)))
                ]
                copied += insert_ignore(writing, table, rows, key)
    return copied


@dataclass(frozen=True)
class DemoWritten:
    """What `write_demo` wrote: the customers' endings as the target now dates them."""

    playbook_version: str
    endings: list[Ending]
    # Customers still onboarding when the run ended: not written.
    in_flight: int
    shift: timedelta
    rows: int
    outcome_events: int
    health_scores: int

    def count(self, outcome: Stage) -> int:
        return sum(ending.outcome is outcome for ending in self.endings)


def write_demo(
    run: SimulationRun,
    target: Database,
    relationship: Relationship,
    *,
    seed: int,
    today: date,
    replace: bool = False,
) -> DemoWritten:
    """The run's ended customers (its one arm, `demo_arm`), moved into the past and
    copied into `target`, with renewals or churn and health scores drawn (from `seed`)
    as `relationship` plants them: of each fate's customers exactly its share churn.
    Refused when `target` holds demo customers already, unless `replace`, which removes
    them first."""
    [arm] = run.arms
    if arm.label != LABEL:
        raise DemoError(f"a demo cohort runs one arm labelled {LABEL!r}, not {arm.label!r}")
    ids = [arm.customer_id(customer) for customer in run.cohort]
    endings = simulated_endings(run.database, ids)
    if not endings:
        raise DemoError(
            f"no simulated customer's onboarding ended within {run.weeks} weeks: "
            "simulate more weeks (the playbook's deadline ends every onboarding)"
        )
    existing = demo_customers(target)
    if existing and not replace:
        raise DemoError(
            f"the database already holds {existing} demo customers ({PREFIX}…); "
            "pass --replace to remove them and write the demo cohort again"
        )
    if existing:
        remove_demo(target)
    try:
        record_version(target, arm.playbook, SOURCE)
    except VersionConflict as err:
        raise DemoError(str(err)) from None
    shift = shift_back([ending.ended_at for ending in endings], today)
    rows = _copy(run.database, target, [ending.customer_id for ending in endings], shift)
    moved = [Ending(e.customer_id, e.outcome, shifted(e.ended_at, shift), e.usage) for e in endings]
    rng = random.Random(seed)
    fates = {e.customer_id: relationship.planted.fate(e.outcome, e.usage) for e in moved}
    churning = churners(fates, rng)
    events: list[OutcomeEventIn] = []
    scores: list[HealthScoreIn] = []
    for ending in moved:
        drawn_events, drawn_scores = draw_outcomes(
            ending.customer_id,
            ending.ended_at.date(),
            fates[ending.customer_id],
            rng,
            churns=ending.customer_id in churning,
        )
        events += drawn_events
        scores += drawn_scores
    stored_events = store_outcome_events(target, events)
    stored_scores = store_health_scores(target, scores)
    return DemoWritten(
        playbook_version=arm.playbook.version,
        endings=moved,
        in_flight=len(ids) - len(endings),
        shift=shift,
        rows=rows,
        outcome_events=stored_events.stored,
        health_scores=stored_scores.stored,
    )
