"""Outcomes from outside, stored and read: renewal and churn events and health scores
per customer (`liftoff outcomes import`, `liftoff health import`, `POST /api/outcomes`,
`POST /api/health-scores`), and the facts the outcome analysis reads.

A row names a customer Liftoff onboarded, or the whole write is refused with the ids
named: an outcome of a customer Liftoff never knew cannot tell anything about its
onboarding, and a typo kept aside would quietly lower the counts the analysis rests on.
Each row is stored once under its natural key (ON CONFLICT DO NOTHING), so importing a
file again changes nothing; a later row with the same key and other values (another
ARR, say) does not overwrite the first, and is counted as already stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, col, select

from analytics.outcomes import CriterionKey, CustomerFacts
from models.onboarding import Stage, TimelineKind
from models.outcomes import HealthScoreIn, OutcomeEventIn, OutcomeKind, StoreReport
from models.tables import (
    Customer,
    CustomerProjection,
    HealthScoreRecord,
    OutcomeEventRecord,
    TimelineEntry,
    utc_now,
)
from records.database import Database, insert_ignore

# Ids per IN list and rows per INSERT: far inside SQLite's and PostgreSQL's limits.
BATCH = 500
# A customer's health scores as read back, newest first.
DEFAULT_HEALTH_LIMIT = 500
EVENT_KEY = ("customer_id", "kind", "occurred_on")
SCORE_KEY = ("customer_id", "scored_on", "source")


class UnknownCustomers(ValueError):
    """Rows name customers Liftoff never onboarded; nothing was stored."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = sorted(set(ids))
        shown = ", ".join(repr(i) for i in self.ids[:10])
        more = f" and {len(self.ids) - 10} more" if len(self.ids) > 10 else ""
        super().__init__(f"unknown customer id(s) {shown}{more}: nothing stored")


class OutcomeEventRow(BaseModel):
    customer_id: str
    kind: OutcomeKind
    occurred_on: date
    arr: float | None
    currency: str | None
    source: str
    note: str
    recorded_at: datetime


class HealthScoreRow(BaseModel):
    customer_id: str
    scored_on: date
    source: str
    score: float
    recorded_at: datetime


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def unknown_customers(database: Database, ids: Iterable[str]) -> set[str]:
    """The ids among `ids` that name no customer (stored, or in the projection)."""
    wanted = sorted(set(ids))
    known: set[str] = set()
    with database.session() as session:
        for chunk in _chunks(wanted):
            known.update(
                session.exec(
                    select(Customer.customer_id).where(col(Customer.customer_id).in_(chunk))
                )
            )
            known.update(
                session.exec(
                    select(CustomerProjection.customer_id).where(
                        col(CustomerProjection.customer_id).in_(chunk)
                    )
                )
            )
    return set(wanted) - known


def _store(
    database: Database, table: type[Any], rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> StoreReport:
    unknown = unknown_customers(database, (row["customer_id"] for row in rows))
    if unknown:
        raise UnknownCustomers(unknown)
    stored = 0
    # One transaction: a failure half-way stores nothing, and a retry counts the same.
    with database.session() as session:
        for chunk in _chunks(rows):
            stored += insert_ignore(session, table, list(chunk), key)
    return StoreReport(stored=stored, already_stored=len(rows) - stored)


def store_outcome_events(database: Database, events: Sequence[OutcomeEventIn]) -> StoreReport:
    now = utc_now()
    rows = [event.model_dump() | {"recorded_at": now} for event in events]
    return _store(database, OutcomeEventRecord, rows, EVENT_KEY)


def store_health_scores(database: Database, scores: Sequence[HealthScoreIn]) -> StoreReport:
    now = utc_now()
    rows = [score.model_dump() | {"recorded_at": now} for score in scores]
    return _store(database, HealthScoreRecord, rows, SCORE_KEY)


def customer_outcomes(database: Database, customer_id: str) -> list[OutcomeEventRow]:
    """The customer's events, oldest first."""
    with database.session() as session:
        found = session.exec(
            select(OutcomeEventRecord)
            .where(col(OutcomeEventRecord.customer_id) == customer_id)
            .order_by(col(OutcomeEventRecord.occurred_on), col(OutcomeEventRecord.kind))
        )
        return [OutcomeEventRow.model_validate(row, from_attributes=True) for row in found]


def customer_health(
    database: Database, customer_id: str, *, limit: int = DEFAULT_HEALTH_LIMIT
) -> list[HealthScoreRow]:
    """The customer's latest scores, newest first."""
    with database.session() as session:
        found = session.exec(
            select(HealthScoreRecord)
            .where(col(HealthScoreRecord.customer_id) == customer_id)
            .order_by(col(HealthScoreRecord.scored_on).desc(), col(HealthScoreRecord.source))
            .limit(limit)
        )
        return [HealthScoreRow.model_validate(row, from_attributes=True) for row in found]


def ended_playbook_versions(database: Database) -> list[str]:
    """The playbook versions of customers whose onboarding ended, in order."""
    with database.session() as session:
        found = session.exec(
            select(CustomerProjection.playbook_version)
            .where(col(CustomerProjection.outcome).is_not(None))
            .distinct()
        )
        return sorted(found)


def _criteria_met(details: Mapping[str, Any]) -> dict[CriterionKey, bool]:
    """Each completion criterion's verdict in a weekly measurement entry (a WeekVerdict)."""
    met: dict[CriterionKey, bool] = {}
    for verdict in details.get("criteria") or []:
        try:
            key = CriterionKey(
                metric=str(verdict["metric"]),
                purpose=verdict.get("purpose"),
                threshold=float(verdict["threshold"]),
                weeks=int(verdict["weeks_required"]),
            )
            met[key] = bool(verdict["met"])
        except (KeyError, TypeError, ValueError):
            continue  # an entry from a version that judged differently
    return met


def _last_measurements(session: Session, ids: Sequence[str]) -> dict[str, dict[CriterionKey, bool]]:
    last = (
        select(TimelineEntry.customer_id, func.max(TimelineEntry.seq).label("seq"))
        .where(col(TimelineEntry.customer_id).in_(ids))
        .where(col(TimelineEntry.kind) == TimelineKind.WEEKLY_MEASUREMENT.value)
        .group_by(col(TimelineEntry.customer_id))
        .subquery()
    )
    found = session.exec(
        select(TimelineEntry.customer_id, TimelineEntry.details).join(
            last,
            (col(TimelineEntry.customer_id) == last.c.customer_id)
            & (col(TimelineEntry.seq) == last.c.seq),
        )
    )
    return {customer_id: _criteria_met(details) for customer_id, details in found}


def outcome_facts(database: Database, *, playbook_version: str | None) -> list[CustomerFacts]:
    """Every customer whose onboarding ended (under `playbook_version`, or any), with its
    churn dates, health scores and the criteria met at its last weekly measurement."""
    with database.session() as session:
        query = select(
            CustomerProjection.customer_id, CustomerProjection.outcome, CustomerProjection.ended_at
        ).where(col(CustomerProjection.outcome).is_not(None))
        if playbook_version is not None:
            query = query.where(col(CustomerProjection.playbook_version) == playbook_version)
        ended = [
            (customer_id, Stage(outcome), ended_at)
            for customer_id, outcome, ended_at in session.exec(
                query.order_by(col(CustomerProjection.customer_id))
            )
            if ended_at is not None and outcome is not None
        ]
        churned: dict[str, list[date]] = {}
        health: dict[str, list[tuple[date, float]]] = {}
        criteria: dict[str, dict[CriterionKey, bool]] = {}
        for chunk in _chunks([customer_id for customer_id, _, _ in ended]):
            for customer_id, day in session.exec(
                select(col(OutcomeEventRecord.customer_id), col(OutcomeEventRecord.occurred_on))
                .where(col(OutcomeEventRecord.customer_id).in_(chunk))
                .where(col(OutcomeEventRecord.kind) == OutcomeKind.CHURNED.value)
            ):
                churned.setdefault(customer_id, []).append(day)
            for customer_id, day, score in session.exec(
                select(
                    col(HealthScoreRecord.customer_id),
                    col(HealthScoreRecord.scored_on),
                    col(HealthScoreRecord.score),
                ).where(col(HealthScoreRecord.customer_id).in_(chunk))
            ):
                health.setdefault(customer_id, []).append((day, score))
            criteria |= _last_measurements(session, chunk)
    return [
        CustomerFacts(
            customer_id=customer_id,
            outcome=outcome,
            ended_on=ended_at.astimezone(UTC).date(),
            churned_on=tuple(sorted(churned.get(customer_id, ()))),
            health=tuple(sorted(health.get(customer_id, ()))),
            criteria_met=criteria.get(customer_id, {}),
        )
        for customer_id, outcome, ended_at in ended
    ]
