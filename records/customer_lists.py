"""The customer lists and the cohort, read from the customer projection.

Filtered, ordered, paged and counted in SQL, so a page costs the same at ten customers
and at ten thousand, and a customer whose workflow Temporal has forgotten is still
listed and counted. Medians are read with ORDER BY ... LIMIT/OFFSET, which SQLite
and PostgreSQL both do from an index or a small sort.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func
from sqlalchemy.orm import load_only
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from models.onboarding import STAGE_PATH, Stage
from models.tables import CustomerProjection as P
from records.database import Database
from records.projections import TIMED_COLUMNS

# The most rows one page may ask for, and the furthest it may skip: far past any
# real list, and inside the 64-bit integer both databases take for OFFSET.
MAX_PAGE = 1000
MAX_OFFSET = 1_000_000_000
# What a customer summary (`client.onboarding.CustomerSummary`) reads: a long list
# loads only these.
SUMMARY_COLUMNS = (
    P.customer_id,
    P.stage,
    P.csm,
    P.stalled,
    P.setup_stuck,
    P.started_at,
    P.paused,
    P.playbook_version,
)
ENDED = [Stage.ONBOARDED.value, Stage.FAILED.value, Stage.CANCELLED.value]


class Order(StrEnum):
    # By customer id: the REST list, stable across pages.
    ID = "id"
    # By stage along the path, then stuck, stalled, and longest in stage: "my customers".
    ATTENTION = "attention"
    # The most recently ended first.
    ENDED = "ended"


@dataclass(frozen=True)
class Filters:
    """Which customers a list shows; None leaves a criterion open."""

    csm: str | None = None
    stage: Stage | None = None
    stalled: bool | None = None
    stuck: bool | None = None
    # False: ongoing only; True: ended only.
    ended: bool | None = None
    paused: bool | None = None
    playbook_version: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.csm is not None:
            found.append(col(P.csm) == self.csm.strip().lower())
        if self.stage is not None:
            found.append(col(P.stage) == self.stage.value)
        if self.stalled is not None:
            found.append(col(P.stalled) == self.stalled)
        if self.stuck is not None:
            found.append(col(P.setup_stuck) == self.stuck)
        if self.paused is not None:
            found.append(col(P.paused) == self.paused)
        if self.playbook_version is not None:
            found.append(col(P.playbook_version) == self.playbook_version)
        if self.ended is True:
            found.append(col(P.stage).in_(ENDED))
        elif self.ended is False:
            found.append(col(P.stage).not_in(ENDED))
        return found


@dataclass(frozen=True)
class Page:
    rows: list[P]
    total: int
    limit: int
    offset: int


_ORDER: dict[Order, list[Any]] = {
    Order.ID: [col(P.customer_id)],
    Order.ATTENTION: [
        col(P.furthest),
        col(P.setup_stuck).desc(),
        col(P.stalled).desc(),
        # Never-moved customers (no stage_since) last, as the lists always did.
        case((col(P.stage_since).is_(None), 1), else_=0),
        col(P.stage_since),
        col(P.customer_id),
    ],
    Order.ENDED: [col(P.ended_at).desc(), col(P.customer_id)],
}


def list_page(
    database: Database,
    filters: Filters,
    *,
    order: Order,
    limit: int,
    offset: int = 0,
    columns: Sequence[Any] = (),
) -> Page:
    """One page of customers; with `columns`, only those are loaded (a long page reads
    faster), and the others must not be read from the rows."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, min(offset, MAX_OFFSET))
    where = filters.clauses()
    with database.session() as session:
        total = session.exec(select(func.count()).select_from(P).where(*where)).one()
        query = select(P).where(*where).order_by(*_ORDER[order]).limit(limit).offset(offset)
        if columns:
            query = query.options(load_only(*columns, raiseload=True))
        rows = session.exec(query).all()
    return Page(list(rows), total, limit, offset)


def one(database: Database, customer_id: str) -> P | None:
    """A customer's row, whether or not Temporal still holds its workflow."""
    with database.session() as session:
        return session.get(P, customer_id)


def customer_ids(database: Database, filters: Filters) -> list[str]:
    """Every customer the filters select, by id: the cohort a lead's command goes to."""
    with database.session() as session:
        query = select(P.customer_id).where(*filters.clauses()).order_by(col(P.customer_id))
        return list(session.exec(query).all())


@dataclass(frozen=True)
class Summary:
    """What the "my customers" page counts over every ongoing customer it may show."""

    by_stage: dict[Stage, int]
    stuck: int
    stalled: int
    open_tasks: int
    ended: int

    @property
    def ongoing(self) -> int:
        return sum(count for stage, count in self.by_stage.items() if not stage.terminal)


def _true(column: Any) -> Any:
    return func.coalesce(func.sum(case((column, 1), else_=0)), 0)


def summary(database: Database, filters: Filters) -> Summary:
    where = filters.clauses()
    with database.session() as session:
        by_stage = {
            Stage(stage): count
            for stage, count in session.exec(
                select(P.stage, func.count()).where(*where).group_by(col(P.stage))
            ).all()
        }
        ongoing = [*where, col(P.stage).not_in(ENDED)]
        stuck, stalled, tasks = session.exec(
            select(
                _true(col(P.setup_stuck)),
                _true(col(P.stalled)),
                func.coalesce(func.sum(col(P.open_tasks)), 0),
            ).where(*ongoing)
        ).one()
    return Summary(
        by_stage=by_stage,
        stuck=int(stuck),
        stalled=int(stalled),
        open_tasks=int(tasks),
        ended=sum(count for stage, count in by_stage.items() if stage.terminal),
    )


def csms(database: Database) -> list[str]:
    """Every CSM with a customer, for a lead's filter."""
    with database.session() as session:
        return list(session.exec(select(P.csm).distinct().order_by(col(P.csm))).all())


# The cohort


@dataclass(frozen=True)
class FunnelRow:
    stage: Stage
    reached: int
    now: int


@dataclass(frozen=True)
class StageTime:
    stage: Stage
    # Seconds; None when no customer has such a stay yet.
    median_done: float | None
    done: int
    median_now: float | None
    now: int


@dataclass(frozen=True)
class Cohort:
    total: int
    active: int
    onboarded: int
    failed: int
    cancelled: int
    stalled: int
    stuck: int
    escalations: int
    median_time_to_onboard: float | None
    funnel: list[FunnelRow]
    times: list[StageTime]


def _middle(session: Session, column: Any, where: list[Any], count: int) -> list[Any]:
    """The one or two middle values of `column` over `count` non-null rows."""
    if count == 0:
        return []
    return list(
        session.exec(
            select(column)
            .where(*where, column.is_not(None))
            .order_by(column)
            .limit(1 if count % 2 else 2)
            .offset((count - 1) // 2)
        ).all()
    )


def _median_seconds(session: Session, column: Any, where: list[Any], count: int) -> float | None:
    middle = [float(value) for value in _middle(session, column, where, count)]
    return sum(middle) / len(middle) if middle else None


def _median_since(session: Session, where: list[Any], count: int, now: datetime) -> float | None:
    """The median time in stage so far: now minus the median instant of entering it."""
    middle: list[datetime] = _middle(session, col(P.stage_since), where, count)
    if not middle:
        return None
    since = middle[0] + (middle[-1] - middle[0]) / 2 if len(middle) == 2 else middle[0]
    return max(timedelta(0), now - since).total_seconds()


def cohort(database: Database, filters: Filters, now: datetime) -> Cohort:
    where = filters.clauses()
    timed = list(TIMED_COLUMNS.items())
    with database.session() as session:
        by_stage: dict[str, int] = dict(
            session.exec(select(P.stage, func.count()).where(*where).group_by(col(P.stage))).all()
        )
        by_furthest: dict[int, int] = dict(
            session.exec(
                select(P.furthest, func.count()).where(*where).group_by(col(P.furthest))
            ).all()
        )
        figures = session.exec(
            select(
                _true(col(P.stalled)),
                _true(col(P.setup_stuck)),
                func.coalesce(func.sum(col(P.escalations)), 0),
                func.count(col(P.onboard_seconds)),
                *(func.count(getattr(P, column)) for _, column in timed),
            ).where(*where)
        ).one()
        stalled, stuck, escalations, onboarded_n, *done_n = (int(v) for v in figures)
        to_onboard = _median_seconds(session, col(P.onboard_seconds), where, onboarded_n)
        times = []
        for (stage, column), done in zip(timed, done_n, strict=True):
            in_stage = [*where, col(P.stage) == stage.value]
            now_n = by_stage.get(stage.value, 0)
            with_since = session.exec(select(func.count(col(P.stage_since))).where(*in_stage)).one()
            times.append(
                StageTime(
                    stage=stage,
                    median_done=_median_seconds(session, getattr(P, column), where, done),
                    done=done,
                    median_now=_median_since(session, in_stage, int(with_since), now),
                    now=now_n,
                )
            )
    total = sum(by_stage.values())
    return Cohort(
        total=total,
        active=sum(n for stage, n in by_stage.items() if stage not in ENDED),
        onboarded=by_stage.get(Stage.ONBOARDED.value, 0),
        failed=by_stage.get(Stage.FAILED.value, 0),
        cancelled=by_stage.get(Stage.CANCELLED.value, 0),
        stalled=stalled,
        stuck=stuck,
        escalations=escalations,
        median_time_to_onboard=to_onboard,
        funnel=[
            FunnelRow(
                stage=stage,
                reached=sum(n for furthest, n in by_furthest.items() if furthest >= rank),
                now=by_stage.get(stage.value, 0),
            )
            for rank, stage in enumerate(STAGE_PATH)
        ],
        times=times,
    )
