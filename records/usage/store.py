"""How usage intake stores what it took: pending writes in one transaction, and the
report of what became of each call or row."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models.tables import (
    Customer,
    RejectedUsage,
    UnmatchedUsage,
    UsageEvent,
    UsageUser,
    utc_now,
)

# Column sizes of usage_events, usage_users, unmatched_usage and customers.
MAX_USER_ID = 200
MAX_EVENT = 200
MAX_MESSAGE_ID = 200
MAX_GROUP_ID = 200
MAX_CUSTOMER_ID = 64
# A usage event's quantity: weekly sums of many events stay finite and exact enough.
MAX_QUANTITY = 1_000_000_000
# When a usage event may have happened, around when it arrived: a back-fill of a few
# years' history passes, and a phone's clock a day ahead; year 1 or 9999 (a default or
# a bug) would otherwise count as usage.
EVENT_WINDOW_YEARS = 5
EARLIEST_EVENT = timedelta(days=365 * EVENT_WINDOW_YEARS + 2)
LATEST_EVENT = timedelta(days=1)
OUTSIDE_WINDOW = f"is not within {EVENT_WINDOW_YEARS} years before and 1 day after it arrived"


def plausible_event_time(occurred_at: datetime, received_at: datetime) -> bool:
    return received_at - EARLIEST_EVENT <= occurred_at <= received_at + LATEST_EVENT


# Levels of objects and arrays in a kept call or trait: the API's JSON encoder
# (pydantic) stops at about 250, and no product's call needs more than a few.
MAX_JSON_DEPTH = 32

# Traits kept per user (identify) and per user's group (group calls): the newest
# call's keys first, each value's JSON within MAX_TRAIT_BYTES (text is cut to
# MAX_TRAIT_TEXT characters; larger objects are left out).
MAX_TRAITS = 50
MAX_TRAIT_KEY = 100
MAX_TRAIT_TEXT = 500
MAX_TRAIT_BYTES = 1000

# Rejected intake kept for operators: the newest rows, none older than this.
REJECTED_KEPT_ROWS = 10_000
REJECTED_KEPT_FOR = timedelta(days=30)


class IntakeError(ValueError):
    """Input not taken at all (not JSON, not a batch, not a usage CSV); nothing is stored."""


class RejectedItem(BaseModel):
    # Position of the call in the request, from 0 (a single call is 0).
    index: int | None = None
    # Line of the CSV file; line 1 is the header.
    line: int | None = None
    reason: str


class UnmatchedItem(BaseModel):
    index: int | None = None
    line: int | None = None
    type: str
    user_id: str | None = None
    # The group id, trait value or CSV customer_id that named no customer.
    group_id: str | None = None
    reason: str


class IntakeReport(BaseModel):
    """What became of each call or row: every one is counted in exactly one place."""

    received: int = 0
    # Usage events stored.
    stored: int = 0
    # Usage events whose messageId (event_key) was already stored.
    duplicates: int = 0
    # Identify and group calls that tied a user to a customer or updated its traits.
    mapped: int = 0
    # Page, screen and alias calls: accepted, counted, not stored.
    ignored: int = 0
    rejected: list[RejectedItem] = Field(default_factory=list)
    # Kept in unmatched_usage for a later look; see GET /api/intake/unmatched.
    unmatched: list[UnmatchedItem] = Field(default_factory=list)


def merge_traits(kept: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A user's traits after a call: the call's own over the kept ones, bounded."""
    merged: dict[str, Any] = {}
    for key, value in [*new.items(), *kept.items()]:
        if key in merged or len(key) > MAX_TRAIT_KEY:
            continue
        if len(merged) >= MAX_TRAITS:
            break
        if isinstance(value, str):
            merged[key] = value[:MAX_TRAIT_TEXT]
        elif nested_deeper_than(value, MAX_JSON_DEPTH):
            continue
        elif len(json.dumps(value, default=str).encode()) <= MAX_TRAIT_BYTES:
            merged[key] = value
    return merged


def nested_deeper_than(value: object, depth: int) -> bool:
    """Whether objects and arrays nest more than `depth` levels ({"a": 1} is one).

    Level by level rather than recursive, so no input reaches the recursion limit."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(depth):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return bool(level)


@dataclass
class PendingWrites:
    """What one request stores, written in one transaction."""

    keyed: list[dict[str, object]] = field(default_factory=list)
    unkeyed: list[dict[str, object]] = field(default_factory=list)
    users: dict[str, dict[str, object]] = field(default_factory=dict)
    unmatched: list[dict[str, object]] = field(default_factory=list)
    # Unmatched rows taken up (their traits kept now that the user is tied): deleted.
    taken_unmatched: list[int] = field(default_factory=list)
    # Rows of rejected_usage (records/usage/rejected.py builds them).
    rejected: list[dict[str, object]] = field(default_factory=list)


# Storing


def _dialect_insert(session: Session, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# Each write is one executemany of one statement: SQLAlchemy compiles it once and
# sends the rows as multi-row INSERTs within the driver's parameter limits. A
# statement with every row in its VALUES would be compiled anew for each request.


def _store_events(session: Session, keyed: Sequence[dict[str, object]]) -> int:
    """Insert events with an event_key once each; returns how many were new."""
    if not keyed:
        return 0
    statement = (
        _dialect_insert(session, UsageEvent)
        .on_conflict_do_nothing(index_elements=["event_key"])
        .returning(col(UsageEvent.event_key))
    )
    # A key repeated inside the request is skipped like one stored before. Keys go
    # in sorted order, so two requests sharing keys wait for each other, not deadlock.
    rows = sorted(keyed, key=lambda row: str(row["event_key"]))
    return len(session.connection().execute(statement, rows).all())


def write_pending(session: Session, writes: PendingWrites, report: IntakeReport) -> None:
    connection = session.connection()
    stored = _store_events(session, writes.keyed)
    if writes.unkeyed:
        connection.execute(insert(UsageEvent), writes.unkeyed)
    report.stored += stored + len(writes.unkeyed)
    report.duplicates += len(writes.keyed) - stored
    if writes.users:
        upsert = _dialect_insert(session, UsageUser)
        upsert = upsert.on_conflict_do_update(
            index_elements=["user_id"],
            set_={
                "customer_id": upsert.excluded.customer_id,
                "traits": upsert.excluded.traits,
                "group_traits": upsert.excluded.group_traits,
                "updated_at": upsert.excluded.updated_at,
            },
        )
        connection.execute(upsert, [writes.users[user] for user in sorted(writes.users)])
    if writes.unmatched:
        # A call resent by a retrying client is kept once, as its usage would be; rows
        # without a key never conflict. Call order is kept: "recent" lists by id.
        keep_once = _dialect_insert(session, UnmatchedUsage).on_conflict_do_nothing(
            index_elements=["event_key"]
        )
        connection.execute(keep_once, writes.unmatched)
    if writes.taken_unmatched:
        connection.execute(
            delete(UnmatchedUsage).where(col(UnmatchedUsage.id).in_(writes.taken_unmatched))
        )
    if writes.rejected:
        store_rejected(session, writes.rejected)


def store_rejected(session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Keep rejected intake, then prune: rows past REJECTED_KEPT_FOR and all but the
    newest REJECTED_KEPT_ROWS go, so a sender of bad calls cannot grow the table."""
    session.connection().execute(insert(RejectedUsage), list(rows))
    newest = session.exec(select(func.max(RejectedUsage.id))).one()
    too_old = col(RejectedUsage.received_at) < utc_now() - REJECTED_KEPT_FOR
    too_many = col(RejectedUsage.id) <= (newest or 0) - REJECTED_KEPT_ROWS
    session.execute(delete(RejectedUsage).where(too_old | too_many))


def known_customers(session: Session, candidates: set[str]) -> set[str]:
    ids = [candidate for candidate in candidates if len(candidate) <= MAX_CUSTOMER_ID]
    if not ids:
        return set()
    found = session.exec(
        select(Customer.customer_id).where(col(Customer.customer_id).in_(ids))
    ).all()
    return set(found)


# Reading a customer's product users


DEFAULT_USERS_LIMIT = 100


class ProductUser(BaseModel):
    """A product user of a customer, with what identify and group calls said about it."""

    user_id: str
    traits: dict[str, Any]
    group_traits: dict[str, Any]
    updated_at: datetime


def customer_users(
    session: Session, customer_id: str, *, limit: int = DEFAULT_USERS_LIMIT
) -> list[ProductUser]:
    """The customer's product users, the most recently heard from first."""
    rows = session.exec(
        select(UsageUser)
        .where(col(UsageUser.customer_id) == customer_id)
        .order_by(col(UsageUser.updated_at).desc(), col(UsageUser.user_id))
        .limit(limit)
    ).all()
    return [
        ProductUser(
            user_id=row.user_id,
            traits=_servable(row.traits),
            group_traits=_servable(row.group_traits),
            updated_at=row.updated_at,
        )
        for row in rows
    ]


def _servable(traits: Mapping[str, Any]) -> dict[str, Any]:
    # Traits kept before calls were bounded in depth would fail the whole answer.
    return {k: v for k, v in traits.items() if not nested_deeper_than(v, MAX_JSON_DEPTH)}
