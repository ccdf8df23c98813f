"""Past customers as `liftoff simulate --from-history` replays them: each one's handoff,
when its CSM held the kickoff, the training and the completion review, and its recorded
usage, all relative to when its onboarding started.

Read in a few statements per thousand customers (ids in IN lists), never one query per
customer; the usage read is bounded, and a history past the bound is refused with a
sentence rather than read into memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from models.onboarding import Stage
from models.tables import Customer, CustomerProjection, TimelineEntry, UsageEvent
from records.database import Database

# Customer ids per IN (...) list: well inside SQLite's and PostgreSQL's bound parameters.
IN_LIST_CHUNK = 1000
# Usage rows one replay reads at most: about a gigabyte of memory at worst.
MAX_USAGE_ROWS = 2_000_000
# sqlmodel's select() is typed for up to four columns; more go through a tuple.
_USAGE_COLUMNS: tuple[Any, ...] = (
    UsageEvent.customer_id,
    UsageEvent.occurred_at,
    UsageEvent.user_id,
    UsageEvent.event,
    UsageEvent.quantity,
)
_MEETINGS = ("kickoff_held", "training_held", "training_skipped", "completion_review_held")


class HistoryTooLarge(Exception):
    """More recorded usage than one replay reads; the message says how to narrow it."""


@dataclass(frozen=True, slots=True)
class PastUsage:
    offset: timedelta
    user_id: str
    event: str
    quantity: float


@dataclass
class PastCustomer:
    """One customer who started onboarding, as recorded."""

    customer_id: str
    seats: int
    quota: float | None
    time_zone: str
    locale: str
    purposes: list[str]
    trial_used: bool
    already_using: bool
    started_at: datetime
    # None while it is still onboarding.
    outcome: str | None
    # Offsets from the start; None: never happened.
    kickoff: timedelta | None = None
    training: timedelta | None = None
    training_skipped: bool = False
    goals: int = 0
    # From entering the completion review to holding it.
    review_delay: timedelta | None = None
    usage: list[PastUsage] = field(default_factory=list)


def past_customers(database: Database, *, limit: int, weeks: int) -> list[PastCustomer]:
    """The `limit` customers who started most recently, with their first `weeks` weeks."""
    horizon = timedelta(weeks=weeks)
    with database.session() as session:
        rows = session.exec(
            select(
                Customer,
                CustomerProjection.started_at,
                CustomerProjection.outcome,
            )
            .join(
                CustomerProjection,
                col(CustomerProjection.customer_id) == col(Customer.customer_id),
            )
            .where(col(CustomerProjection.started_at).is_not(None))
            .order_by(col(CustomerProjection.started_at).desc(), col(Customer.customer_id))
            .limit(limit)
        ).all()
        found = [
            PastCustomer(
                customer_id=customer.customer_id,
                seats=customer.seats_contracted,
                quota=customer.quota_contracted,
                time_zone=customer.time_zone,
                locale=customer.locale,
                purposes=list(customer.purposes),
                trial_used=customer.trial_used,
                already_using=customer.already_using,
                started_at=started,
                outcome=outcome,
            )
            for customer, started, outcome in rows
            if started is not None
        ]
        by_id = {past.customer_id: past for past in found}
        ids = sorted(by_id)
        usage_rows = 0
        for start in range(0, len(ids), IN_LIST_CHUNK):
            chunk = ids[start : start + IN_LIST_CHUNK]
            entries = session.exec(
                select(
                    TimelineEntry.customer_id,
                    TimelineEntry.kind,
                    TimelineEntry.at,
                    TimelineEntry.details,
                )
                .where(col(TimelineEntry.customer_id).in_(chunk))
                .where(col(TimelineEntry.kind).in_([*_MEETINGS, "goal_agreed", "transition"]))
                .order_by(col(TimelineEntry.customer_id), col(TimelineEntry.seq))
            ).all()
            _meetings(by_id, entries)
            earliest = min(by_id[i].started_at for i in chunk)
            latest = max(by_id[i].started_at for i in chunk) + horizon
            usage = session.exec(
                select(*_USAGE_COLUMNS)
                .where(col(UsageEvent.customer_id).in_(chunk))
                .where(col(UsageEvent.occurred_at) >= earliest)
                .where(col(UsageEvent.occurred_at) < latest)
                .limit(MAX_USAGE_ROWS - usage_rows + 1)
            ).all()
            usage_rows += len(usage)
            if usage_rows > MAX_USAGE_ROWS:
                raise HistoryTooLarge(
                    f"more than {MAX_USAGE_ROWS:,} usage events in the first {weeks} weeks "
                    f"of the {len(found)} customers: replay fewer (--customers) or fewer weeks"
                )
            for customer_id, occurred, user_id, event, quantity in usage:
                past = by_id[customer_id]
                offset = occurred - past.started_at
                if timedelta(0) <= offset < horizon:
                    past.usage.append(PastUsage(offset, user_id, event, quantity))
    for past in found:
        past.usage.sort(key=lambda row: (row.offset, row.user_id, row.event))
    return found


def _meetings(
    by_id: dict[str, PastCustomer],
    entries: Sequence[tuple[str, str, datetime, Mapping[str, Any]]],
) -> None:
    """Kickoff, training and review offsets, goals agreed, and the review's delay."""
    entered_review: defaultdict[str, datetime | None] = defaultdict(lambda: None)
    for customer_id, kind, at, details in entries:
        past = by_id[customer_id]
        offset = at - past.started_at
        if kind == "transition":
            if details.get("to") == Stage.COMPLETION_REVIEW.value:
                entered_review[customer_id] = at
        elif kind == "kickoff_held" and past.kickoff is None:
            past.kickoff = offset
            goals = details.get("goals")
            past.goals += len(goals) if isinstance(goals, list) else 0
        elif kind == "goal_agreed":
            past.goals += 1
        elif kind in ("training_held", "training_skipped") and past.training is None:
            past.training = offset
            past.training_skipped = kind == "training_skipped"
        elif kind == "completion_review_held" and past.review_delay is None:
            entered = entered_review[customer_id]
            if entered is not None:
                past.review_delay = at - entered
