"""Intake that could not be taken: kept, bounded, and summarised for an operator.

Segment's libraries discard the reply to a request, so the reasons a call was
refused would otherwise be seen by nobody. What is kept is bounded by requests,
not by what a sender puts in them: one row per distinct reason per request
(at most MAX_REASONS_PER_REQUEST, the rest counted together), its reason cut to
the column, the first refused call as JSON text cut to MAX_EXCERPT characters,
and the table pruned on every write to its newest rows (records/usage/store.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import col, select

from models.tables import RejectedUsage, utc_now
from models.text import shorten
from records.database import Database
from records.tokens import TOKEN_PREFIX
from records.usage.store import RejectedItem, store_rejected

MAX_REASON = 300
MAX_EXCERPT = 1000
MAX_REASONS_PER_REQUEST = 20
OTHER_REASONS = "other reasons (too many different ones in one request)"
DEFAULT_REJECTED_LIMIT = 50

# A write key in whatever was refused: Liftoff's own keys anywhere, and the value
# after any "writeKey" (in JSON, in JSON quoted inside a string, in a form).
_LIFTOFF_KEY = re.compile(rf"(?<![\w-]){re.escape(TOKEN_PREFIX)}[\w-]*")
_WRITE_KEY_VALUE = re.compile(r"""(write_?key[\\"']*\s*[:=]\s*[\\"']*)[^\s"'\\,;&}\]]+""", re.I)
HIDDEN_KEY = "(hidden)"


def hide_write_keys(text: str) -> str:
    return _LIFTOFF_KEY.sub(HIDDEN_KEY, _WRITE_KEY_VALUE.sub(rf"\1{HIDDEN_KEY}", text))


def excerpt(value: object) -> str:
    """A refused call as JSON text an operator can read, with any write key hidden, cut short.

    ASCII escapes keep NUL characters and lone surrogates, which no database
    stores as text, readable."""
    if isinstance(value, dict):
        value = {key: item for key, item in value.items() if key != "writeKey"}
    try:
        text = json.dumps(value, ensure_ascii=True, default=repr)
    except (RecursionError, ValueError):
        return "(nested too deeply to show)"
    text = hide_write_keys(text)
    return shorten(text, MAX_EXCERPT)


def shown(value: object) -> str:
    """An input quoted in an error message, cut short: never the whole of it."""
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's 4,300 digits
        text = f"an {type(value).__name__} too long to show"
    return shorten(text)


def rejected_rows(
    endpoint: str,
    received_at: datetime,
    rejected: Sequence[RejectedItem],
    calls: Sequence[object] = (),
) -> list[dict[str, object]]:
    """One row per reason of a request, in order of first appearance.

    `calls` are the request's calls by index; each reason keeps its first one's excerpt.
    """
    rows: dict[str, dict[str, object]] = {}
    counts: dict[str, int] = {}
    for item in rejected:
        reason = shorten(item.reason, MAX_REASON)
        if reason not in rows and len(rows) >= MAX_REASONS_PER_REQUEST:
            reason = OTHER_REASONS
        counts[reason] = counts.get(reason, 0) + 1
        if reason in rows:
            continue
        index = item.index
        rows[reason] = {
            "received_at": received_at,
            "endpoint": endpoint,
            "reason": reason,
            "first_index": index if index is not None else item.line,
            "excerpt": excerpt(calls[index]) if index is not None and index < len(calls) else "",
        }
    return [{**row, "calls": counts[reason]} for reason, row in rows.items()]


def record_refused_request(
    database: Database, *, endpoint: str, reason: str, body: bytes = b""
) -> None:
    """A whole request refused (not JSON, not a batch, too large): kept like a call."""
    text = body[:MAX_EXCERPT].decode("utf-8", errors="replace")
    row = {
        "received_at": utc_now(),
        "endpoint": endpoint,
        "reason": shorten(reason, MAX_REASON),
        "calls": 1,
        "first_index": None,
        "excerpt": excerpt(text) if text else "",
    }
    with database.session() as session:
        store_rejected(session, [row])


# Reading what was rejected


class RejectedCount(BaseModel):
    reason: str
    count: int


class RejectedRecord(BaseModel):
    id: int
    received_at: datetime
    endpoint: str
    reason: str
    calls: int
    first_index: int | None
    excerpt: str


class RejectedSummary(BaseModel):
    since: datetime
    # Calls, rows and whole requests refused.
    total: int
    by_reason: list[RejectedCount]
    recent: list[RejectedRecord]


def rejected_summary(
    database: Database, *, days: int = 7, limit: int = DEFAULT_REJECTED_LIMIT
) -> RejectedSummary:
    """Rejected intake of the last `days`: counts by reason, and the newest rows."""
    since = utc_now() - timedelta(days=days)
    in_window = col(RejectedUsage.received_at) >= since
    calls = func.coalesce(func.sum(RejectedUsage.calls), 0)
    with database.session() as session:
        total = session.exec(select(calls).where(in_window)).one()
        by_reason = session.exec(
            select(RejectedUsage.reason, calls.label("n"))
            .where(in_window)
            .group_by(RejectedUsage.reason)
            .order_by(calls.desc(), col(RejectedUsage.reason))
        ).all()
        rows = session.exec(
            select(RejectedUsage)
            .where(in_window)
            .order_by(col(RejectedUsage.received_at).desc(), col(RejectedUsage.id).desc())
            .limit(limit)
        ).all()
        return RejectedSummary(
            since=since,
            total=int(total),
            by_reason=[RejectedCount(reason=r, count=int(n)) for r, n in by_reason],
            recent=[
                RejectedRecord(
                    id=row.id or 0,
                    received_at=row.received_at,
                    endpoint=row.endpoint,
                    reason=row.reason,
                    calls=row.calls,
                    first_index=row.first_index,
                    excerpt=row.excerpt,
                )
                for row in rows
            ],
        )
