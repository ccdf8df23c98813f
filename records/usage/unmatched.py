"""Usage that named no customer: kept, summarised, and adopted when its customer starts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from models.tables import UnmatchedUsage, UsageUser, utc_now
from records.database import Database
from records.usage.csv_import import CSV_KIND, parse_usage_row
from records.usage.rejected import excerpt
from records.usage.segment import (
    CallRejected,
    CallType,
    TiedUser,
    event_row,
    parse_call,
    waiting_identifies,
)
from records.usage.store import (
    MAX_JSON_DEPTH,
    IntakeReport,
    PendingWrites,
    RejectedItem,
    merge_traits,
    nested_deeper_than,
    write_pending,
)

DEFAULT_UNMATCHED_LIMIT = 50
UNMATCHED_TOP_GROUPS = 20


class UnmatchedCount(BaseModel):
    reason: str
    count: int


class UnmatchedGroupCount(BaseModel):
    group_id: str
    count: int
    last_received_at: datetime


class UnmatchedRecord(BaseModel):
    id: int
    received_at: datetime
    kind: str
    user_id: str | None
    group_id: str | None
    reason: str
    raw: dict[str, Any]


class UnmatchedSummary(BaseModel):
    since: datetime
    total: int
    by_reason: list[UnmatchedCount]
    # The group ids (or trait values, CSV customer ids) seen most often: usually a
    # customer not started yet, or one whose id differs from the product's.
    by_group_id: list[UnmatchedGroupCount]
    recent: list[UnmatchedRecord]


# Usage that arrived before its customer started


def adopt_unmatched(session: Session, customer_id: str) -> IntakeReport:
    """Store the kept calls and rows that named `customer_id` before it existed.

    Products often send usage before customer success starts the onboarding (a
    trial, say); when the customer is created, what its group id (or its
    identify trait) named is stored as usage and user mappings, and leaves the
    unmatched list. Runs in the caller's transaction; a rerun finds nothing left.
    """
    rows = session.exec(
        select(UnmatchedUsage)
        .where(col(UnmatchedUsage.group_id) == customer_id)
        .order_by(col(UnmatchedUsage.id))
    ).all()
    report = IntakeReport(received=len(rows))
    writes = PendingWrites()
    tied: dict[str, TiedUser] = {}
    for row in rows:
        # Without a messageId the row's own id keys the event, so it is stored once.
        fallback_key = f"unmatched:{row.id}"
        if row.kind == CSV_KIND:
            # The kept row is read back through the CSV import's own checks.
            cells = {key: None if value is None else str(value) for key, value in row.raw.items()}
            parsed = parse_usage_row(cells, {customer_id})
            if isinstance(parsed, str):
                report.rejected.append(RejectedItem(index=row.id, reason=parsed))
                continue
            parsed["event_key"] = parsed["event_key"] or fallback_key
            writes.keyed.append({**parsed, "received_at": row.received_at})
            continue
        try:
            call = parse_call(
                0,
                row.raw,
                implied_type=CallType(row.kind),
                customer_trait="",
                batch_context={},
                max_call_bytes=None,
                received_at=row.received_at,
            )
        except (CallRejected, ValueError):
            report.rejected.append(RejectedItem(index=row.id, reason="kept call no longer parses"))
            continue
        if call.type is CallType.TRACK:
            event = event_row(call, customer_id, row.received_at)
            event["event_key"] = call.message_id or fallback_key
            writes.keyed.append(event)
        elif call.type in (CallType.GROUP, CallType.IDENTIFY):
            user = tied.get(call.user_id) or _stored_user(session, call.user_id)
            traits = user.traits if user else {}
            same = user is not None and user.customer_id == customer_id
            group_traits = user.group_traits if user and same else {}
            if call.type is CallType.IDENTIFY:
                traits = merge_traits(traits, call.traits)
            else:
                group_traits = merge_traits(group_traits, call.traits)
            if user is None:
                # Identify calls that named no customer wait for the call tying their user.
                for wait in waiting_identifies(session, {call.user_id}).values():
                    traits = merge_traits(wait.traits, traits)
                    writes.taken_unmatched += wait.stored
            tied[call.user_id] = TiedUser(customer_id, traits, group_traits)
            writes.users[call.user_id] = {
                "user_id": call.user_id,
                "customer_id": customer_id,
                "traits": traits,
                "group_traits": group_traits,
                "updated_at": row.received_at,
            }
            report.mapped += 1
    write_pending(session, writes, report)
    adopted = [row.id for row in rows if row.id is not None]
    if adopted:
        session.execute(delete(UnmatchedUsage).where(col(UnmatchedUsage.id).in_(adopted)))
    return report


def _stored_user(session: Session, user_id: str) -> TiedUser | None:
    user = session.get(UsageUser, user_id)
    if user is None:
        return None
    return TiedUser(user.customer_id, dict(user.traits), dict(user.group_traits))


# Reading what was unmatched


def _servable(raw: dict[str, Any]) -> dict[str, Any]:
    # A call kept before calls were bounded in depth would fail the whole answer.
    if nested_deeper_than(raw, MAX_JSON_DEPTH):
        return {"nested_too_deeply": excerpt(raw)}
    return dict(raw)


def unmatched_summary(
    database: Database, *, days: int = 7, limit: int = DEFAULT_UNMATCHED_LIMIT
) -> UnmatchedSummary:
    """Unmatched intake of the last `days`: counts by reason and group id, and the newest calls."""
    since = utc_now() - timedelta(days=days)
    recent_first = (col(UnmatchedUsage.received_at).desc(), col(UnmatchedUsage.id).desc())
    in_window = col(UnmatchedUsage.received_at) >= since
    with database.session() as session:
        total = session.exec(select(func.count()).select_from(UnmatchedUsage).where(in_window))
        by_reason = session.exec(
            select(UnmatchedUsage.reason, func.count())
            .where(in_window)
            .group_by(UnmatchedUsage.reason)
            .order_by(func.count().desc(), col(UnmatchedUsage.reason))
        ).all()
        count = func.count().label("count")
        by_group = session.exec(
            select(UnmatchedUsage.group_id, count, func.max(UnmatchedUsage.received_at))
            .where(in_window)
            .where(col(UnmatchedUsage.group_id).is_not(None))
            .group_by(UnmatchedUsage.group_id)
            .order_by(count.desc(), col(UnmatchedUsage.group_id))
            .limit(UNMATCHED_TOP_GROUPS)
        ).all()
        rows = session.exec(
            select(UnmatchedUsage).where(in_window).order_by(*recent_first).limit(limit)
        ).all()
        return UnmatchedSummary(
            since=since,
            total=int(total.one()),
            by_reason=[UnmatchedCount(reason=r, count=int(n)) for r, n in by_reason],
            by_group_id=[
                UnmatchedGroupCount(group_id=g, count=int(n), last_received_at=last)
                for g, n, last in by_group
                if g is not None
            ],
            recent=[
                UnmatchedRecord(
                    id=row.id or 0,
                    received_at=row.received_at,
                    kind=row.kind,
                    user_id=row.user_id,
                    group_id=row.group_id,
                    reason=row.reason,
                    raw=_servable(row.raw),
                )
                for row in rows
            ],
        )
