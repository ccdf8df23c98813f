"""The customer projection: one row per customer for the lists and the cohort.

Written by the timeline activity in the transaction that stores each entry
(`apply_entry`), and rebuilt from the stored entries by `rebuild`
(`liftoff projections rebuild`). Both go through `fold`, so they agree: an entry that
carries the workflow's snapshot sets the whole row; an older one without it (written
before snapshots existed) changes what it says (a transition its stage, a stall its
flag). A row only moves forward: an entry at or below its `last_seq` changes nothing,
so a retried or late write is harmless.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, delete, select

from models.onboarding import STAGE_PATH, Stage
from models.projection import ProjectionSnapshot
from models.tables import Customer, CustomerProjection, Task, TimelineEntry
from records.database import Database

TRANSITION = "transition"
# Stages whose stay the cohort times, each with its column.
TIMED_COLUMNS = {
    Stage.KICKOFF: "kickoff_seconds",
    Stage.TRAINING: "training_seconds",
    Stage.ADOPTION: "adoption_seconds",
    Stage.COMPLETION_REVIEW: "completion_review_seconds",
}
PATH_RANK = {stage: rank for rank, stage in enumerate(STAGE_PATH)}
# Upper bound of each seats band, smallest first; larger customers are "1001+".
SEATS_BANDS = ((10, "1-10"), (50, "11-50"), (200, "51-200"), (1000, "201-1000"))
# Customers rebuilt per transaction.
REBUILD_BATCH = 500

Values = dict[str, Any]
COLUMNS = tuple(CustomerProjection.__table__.columns.keys())  # type: ignore[attr-defined]


def seats_band(seats: int) -> str:
    for upper, band in SEATS_BANDS:
        if seats <= upper:
            return band
    return f"{SEATS_BANDS[-1][0] + 1}+"


def _stay_seconds(entered: Mapping[Stage, datetime], stage: Stage) -> float | None:
    """How long the finished stay in `stage` lasted; None while in it or never there.
    Journeys only move forward, so the stay ends when a later stage begins."""
    start = entered.get(stage)
    if start is None:
        return None
    rank = PATH_RANK[stage]
    later = [
        at
        for other, at in entered.items()
        if other is not stage and (other not in PATH_RANK or PATH_RANK[other] > rank)
    ]
    return (min(later) - start).total_seconds() if later else None


def from_snapshot(customer_id: str, seq: int, snapshot: ProjectionSnapshot) -> Values:
    """The whole row, from what the workflow sent with entry `seq`."""
    stage = snapshot.stage
    entered = dict(snapshot.stage_entered)
    ended_at = snapshot.stage_since if stage.terminal else None
    started_at = snapshot.started_at
    values: Values = {
        "customer_id": customer_id,
        "name": snapshot.name,
        "csm": snapshot.csm,
        "cs_leader": snapshot.cs_leader,
        "stage": stage.value,
        "stage_since": snapshot.stage_since,
        "furthest": max(
            (PATH_RANK[s] for s in [*entered, stage] if s in PATH_RANK),
            default=0,
        ),
        "stalled": snapshot.stalled,
        "setup_stuck": snapshot.setup_stuck,
        "paused": snapshot.paused,
        "paused_since": snapshot.paused_since,
        "pause_reason": snapshot.pause_reason,
        "next_due_kind": snapshot.next_due_kind.value if snapshot.next_due_kind else None,
        "next_due_at": snapshot.next_due_at,
        "open_tasks": snapshot.open_tasks,
        "escalations": snapshot.escalations,
        "playbook_name": snapshot.playbook_name,
        "playbook_version": snapshot.playbook_version,
        "purposes": list(snapshot.purposes),
        "seats_contracted": snapshot.seats_contracted,
        "seats_band": seats_band(snapshot.seats_contracted),
        "trial_used": snapshot.trial_used,
        "locale": snapshot.locale,
        "time_zone": snapshot.time_zone,
        "country": snapshot.country,
        "outcome": stage.value if stage.terminal else None,
        "started_at": snapshot.started_at,
        "ended_at": ended_at,
        "onboard_seconds": (
            (ended_at - started_at).total_seconds()
            if stage is Stage.ONBOARDED and ended_at and started_at
            else None
        ),
        "last_seq": seq,
    }
    for timed, column in TIMED_COLUMNS.items():
        values[column] = _stay_seconds(entered, timed)
    return values


def from_customer(customer: Customer) -> Values:
    """What the customer's row says, before any timeline entry (as migration 0005)."""
    stage = Stage(customer.stage)
    terminal = stage.terminal
    values: Values = dict.fromkeys(COLUMNS)
    values |= {
        "customer_id": customer.customer_id,
        "name": customer.name,
        "csm": customer.csm,
        "cs_leader": customer.cs_leader,
        "stage": stage.value,
        "stage_since": customer.stage_since,
        "furthest": PATH_RANK.get(stage, 0),
        "stalled": False,
        "setup_stuck": False,
        "paused": False,
        "open_tasks": 0,
        "escalations": 0,
        "playbook_name": customer.playbook_name,
        "playbook_version": customer.playbook_version,
        "purposes": list(customer.purposes),
        "seats_contracted": customer.seats_contracted,
        "seats_band": seats_band(customer.seats_contracted),
        "trial_used": customer.trial_used,
        "locale": customer.locale,
        "time_zone": customer.time_zone,
        "outcome": stage.value if terminal else None,
        "started_at": customer.created_at,
        "ended_at": customer.stage_since if terminal else None,
        "last_seq": 0,
    }
    return values


def fold(
    current: Values,
    *,
    seq: int,
    at: datetime,
    kind: str,
    details: Mapping[str, Any],
    snapshot: Mapping[str, Any] | ProjectionSnapshot | None,
) -> Values:
    """The row after one timeline entry; unchanged when the row is already past it."""
    if seq <= current["last_seq"]:
        return current
    if snapshot is not None:
        return from_snapshot(
            current["customer_id"], seq, ProjectionSnapshot.model_validate(snapshot)
        )
    values = dict(current, last_seq=seq)
    if kind == TRANSITION:
        _fold_transition(values, at, details)
    elif kind in ("stall_started", "stall_cleared"):
        values["stalled"] = kind == "stall_started"
    elif kind in ("setup_stuck", "setup_unstuck"):
        values["setup_stuck"] = kind == "setup_stuck"
    elif kind == "purpose_added" and isinstance(details.get("purpose"), str):
        values["purposes"] = list(dict.fromkeys([*values["purposes"], details["purpose"]]))
    return values


def _fold_transition(values: Values, at: datetime, details: Mapping[str, Any]) -> None:
    try:
        stage = Stage(details["to"])
    except (KeyError, ValueError):
        return  # a transition that names no stage this version knows
    left = Stage(values["stage"])
    if details.get("from") is None:
        values["started_at"] = at
    elif left in TIMED_COLUMNS and values["stage_since"] is not None:
        values[TIMED_COLUMNS[left]] = (at - values["stage_since"]).total_seconds()
    values["stage"] = stage.value
    values["stage_since"] = at
    values["furthest"] = max(values["furthest"], PATH_RANK.get(stage, 0))
    if stage.terminal:
        # The workflow clears its agenda, flags and tasks when the onboarding ends.
        values |= {
            "outcome": stage.value,
            "ended_at": at,
            "stalled": False,
            "setup_stuck": False,
            "next_due_kind": None,
            "next_due_at": None,
            "open_tasks": 0,
            "escalations": 0,
        }
        if stage is Stage.ONBOARDED and values["started_at"] is not None:
            values["onboard_seconds"] = (at - values["started_at"]).total_seconds()


def _upsert(session: Session, rows: Sequence[Values], *, replace_equal: bool = False) -> None:
    """Insert the rows, or move existing ones forward: never back to an older entry."""
    if not rows:
        return
    statement = _upsert_statement(session.get_bind().dialect.name, replace_equal)
    # Rows as parameters, so the statement is compiled once per process (see insert_ignore).
    session.connection().execute(statement, [dict(row) for row in rows])


@functools.cache
def _upsert_statement(dialect: str, replace_equal: bool) -> Any:
    table = CustomerProjection.__table__  # type: ignore[attr-defined]
    insert: Any = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    newer = (
        table.c.last_seq <= insert.excluded.last_seq
        if replace_equal
        else table.c.last_seq < insert.excluded.last_seq
    )
    return insert.on_conflict_do_update(
        index_elements=["customer_id"],
        set_={name: insert.excluded[name] for name in COLUMNS if name != "customer_id"},
        where=newer,
    )


def _values(row: CustomerProjection) -> Values:
    return {column: getattr(row, column) for column in COLUMNS}


def apply_entry(
    session: Session,
    *,
    customer_id: str,
    seq: int,
    at: datetime,
    kind: str,
    details: Mapping[str, Any],
    snapshot: ProjectionSnapshot | None,
) -> None:
    """Move the customer's row forward by one timeline entry, in the caller's transaction."""
    if snapshot is not None:
        _upsert(session, [from_snapshot(customer_id, seq, snapshot)])
        return
    # Without a snapshot the entry changes the row it finds (or the customer's).
    row = session.get(CustomerProjection, customer_id)
    if row is not None:
        current = _values(row)
    else:
        customer = session.get(Customer, customer_id)
        if customer is None:
            return  # not stored yet: the next entry, or a rebuild, fills the row
        current = from_customer(customer)
    folded = fold(current, seq=seq, at=at, kind=kind, details=details, snapshot=None)
    if folded is not current:
        _upsert(session, [folded])


def refold(session: Session, customer_id: str) -> None:
    """Recompute one customer's row from its stored entries, in the caller's transaction,
    whatever entry the row had reached: after entries were removed (activities/store.py
    drops those of a workflow task attempt that died), it may be past every one left."""
    customer = session.get(Customer, customer_id)
    entries = session.exec(
        select(TimelineEntry)
        .where(col(TimelineEntry.customer_id) == customer_id)
        .order_by(col(TimelineEntry.seq))
    ).all()
    open_tasks = session.exec(
        select(func.count())
        .where(col(Task.customer_id) == customer_id)
        .where(col(Task.state) == "open")
    ).one()
    session.exec(
        delete(CustomerProjection).where(col(CustomerProjection.customer_id) == customer_id)
    )
    row = _rebuilt(customer_id, customer, entries, open_tasks)
    if row is not None:
        _upsert(session, [row])


def _customer_ids(session: Session) -> list[str]:
    stored = session.exec(select(Customer.customer_id)).all()
    written = session.exec(select(TimelineEntry.customer_id).distinct()).all()
    return sorted(set(stored) | set(written))


def _rebuilt(
    customer_id: str,
    customer: Customer | None,
    entries: Iterable[TimelineEntry],
    open_tasks: int,
) -> Values | None:
    values = from_customer(customer) if customer is not None else None
    snapshot_last = False
    for entry in entries:
        if values is None:
            if entry.snapshot is None:
                continue  # nothing to start from until a snapshot comes
            values = dict.fromkeys(COLUMNS) | {
                "customer_id": customer_id,
                "last_seq": 0,
            }
        values = fold(
            values,
            seq=entry.seq,
            at=entry.at,
            kind=entry.kind,
            details=entry.details,
            snapshot=entry.snapshot,
        )
        snapshot_last = entry.snapshot is not None
    if values is not None and not snapshot_last and values["outcome"] is None:
        # Entries from before snapshots do not record closed tasks; the tasks table does.
        values["open_tasks"] = open_tasks
    return values


def rebuild(database: Database, *, customer_ids: Sequence[str] | None = None) -> int:
    """Recompute the projection from the stored customers and timeline; returns the rows
    written. Safe while workers run: a row a live write moved further is left alone."""
    with database.session() as session:
        ids = list(customer_ids) if customer_ids is not None else _customer_ids(session)
        if customer_ids is None:
            session.exec(
                delete(CustomerProjection).where(col(CustomerProjection.customer_id).not_in(ids))
            )
    written = 0
    for start in range(0, len(ids), REBUILD_BATCH):
        batch = ids[start : start + REBUILD_BATCH]
        with database.session() as session:
            customers = {
                c.customer_id: c
                for c in session.exec(select(Customer).where(col(Customer.customer_id).in_(batch)))
            }
            entries: dict[str, list[TimelineEntry]] = {cid: [] for cid in batch}
            for entry in session.exec(
                select(TimelineEntry)
                .where(col(TimelineEntry.customer_id).in_(batch))
                .order_by(col(TimelineEntry.customer_id), col(TimelineEntry.seq))
            ):
                entries[entry.customer_id].append(entry)
            open_tasks = dict(
                session.exec(
                    select(Task.customer_id, func.count())
                    .where(col(Task.customer_id).in_(batch))
                    .where(col(Task.state) == "open")
                    .group_by(col(Task.customer_id))
                ).all()
            )
            rows = [
                row
                for cid in batch
                if (row := _rebuilt(cid, customers.get(cid), entries[cid], open_tasks.get(cid, 0)))
                is not None
            ]
            _upsert(session, rows, replace_equal=True)
            written += len(rows)
    return written


def projection_rows(database: Database) -> dict[str, Values]:
    """Every row, by customer: what a rebuild is compared with."""
    with database.session() as session:
        return {row.customer_id: _values(row) for row in session.exec(select(CustomerProjection))}
