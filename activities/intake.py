"""Usage intake: Segment tracking calls and CSV back-fills, stored over a `Database`.

Plain functions, so the HTTP router (api/intake.py), the bench and the tests
share them. How a call finds its customer:

- a group id names the customer: `context.groupId` or `properties.groupId` of a
  track call, the `groupId` of a group call. A group id that names no customer
  makes the call unmatched; the user's mapping does not stand in for it, since a
  user may belong to several accounts and the call said which one it was for.
- otherwise the user's mapping (usage_users), learnt from group calls and from
  identify calls whose traits carry the customer trait (`company_id` by default).

A call that finds no customer is kept in unmatched_usage with the reason and
reported back, never dropped. Track calls become usage events keyed by their
messageId, so a redelivered message is stored once. Page, screen and alias calls
are accepted and counted, not stored: the weekly measurement has no use for them.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import IO, Any

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from activities.database import Database
from activities.usage import UsageCsvError, iter_usage_csv, parse_instant, parse_usage_row
from models.tables import Customer, UnmatchedUsage, UsageEvent, UsageUser, utc_now

# What Segment's API accepts (and its libraries keep to): 500 KB per batch
# request, 32 KB per call, alone or inside a batch.
MAX_BATCH_BYTES = 500 * 1024
MAX_CALL_BYTES = 32 * 1024
# A CSV back-fill upload; larger files are split, or imported with `liftoff usage import`.
MAX_CSV_BYTES = 50 * 1024 * 1024

# Column sizes of usage_events, usage_users, unmatched_usage and customers.
MAX_USER_ID = 200
MAX_EVENT = 200
MAX_MESSAGE_ID = 200
MAX_GROUP_ID = 200
MAX_CUSTOMER_ID = 64

# Rows per transaction when importing a CSV file, as `liftoff usage import` does.
CSV_TRANSACTION_ROWS = 500

DEFAULT_UNMATCHED_LIMIT = 50
UNMATCHED_TOP_GROUPS = 20


class CallType(StrEnum):
    TRACK = "track"
    IDENTIFY = "identify"
    GROUP = "group"
    PAGE = "page"
    SCREEN = "screen"
    ALIAS = "alias"


_CALL_TYPES = frozenset(CallType)
# Accepted and counted, nothing stored.
COUNTED_ONLY = frozenset({CallType.PAGE, CallType.SCREEN, CallType.ALIAS})
CSV_KIND = "csv"


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


# Reasons are fixed sentences so they can be counted; the id is in its own column.
REASON_UNKNOWN_GROUP = "group id names no customer"
REASON_UNKNOWN_CSV_CUSTOMER = "customer_id names no customer"


def _reason_unknown_trait(trait: str) -> str:
    return f"the {trait} trait names no customer"


def _reason_unmapped_user(trait: str) -> str:
    return (
        "user not tied to a customer: no group id, and no earlier group call or "
        f"identify call with the {trait} trait"
    )


def _reason_identify_without_trait(trait: str) -> str:
    return f"identify without the {trait} trait for a user not tied to a customer"


class _Rejected(Exception):
    """One call or row that cannot be taken; the message says why."""


@dataclass
class _Call:
    index: int
    type: CallType
    user_id: str
    raw: dict[str, Any]
    group_id: str | None = None
    # Track calls.
    event: str = ""
    occurred_at: datetime | None = None
    quantity: float = 1.0
    message_id: str | None = None
    # Identify calls: their traits, and the customer the customer trait names.
    traits: dict[str, Any] = field(default_factory=dict)
    trait_customer: str | None = None


@dataclass
class _Writes:
    """What one request stores, written in one transaction."""

    keyed: list[dict[str, object]] = field(default_factory=list)
    unkeyed: list[dict[str, object]] = field(default_factory=list)
    users: dict[str, dict[str, object]] = field(default_factory=dict)
    unmatched: list[dict[str, object]] = field(default_factory=list)


# Parsing one call


def _text(value: object, name: str, limit: int) -> str | None:
    """An id or name as stored: a string (numbers are accepted, as Segment does), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Rejected(f"{name} must be a string, not {type(value).__name__}")
    text = str(value).strip()
    if not text:
        return None
    if len(text) > limit:
        raise _Rejected(f"{name} is longer than {limit} characters")
    _check_storable(text, name)
    return text


def _check_storable(text: str, name: str) -> None:
    # PostgreSQL refuses NUL in text, and no database takes a lone surrogate.
    if "\x00" in text:
        raise _Rejected(f"{name} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Rejected(f"{name} is not valid Unicode (a lone surrogate)") from None


def _check_storable_json(value: object, name: str) -> None:
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _Rejected(f"{name} is not valid Unicode (a lone surrogate)") from None
    except ValueError:
        # PostgreSQL's json type refuses what Python's json module writes for these.
        raise _Rejected(f"{name} holds NaN or Infinity, which JSON does not allow") from None
    except RecursionError:
        raise _Rejected(f"{name} is nested too deeply") from None


def _json_size(value: object) -> int:
    try:
        return len(json.dumps(value).encode())
    except RecursionError:
        raise _Rejected("the call is nested too deeply") from None


def _object(value: object, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Rejected(f"{name} must be an object, not {type(value).__name__}")
    return value


def _quantity(properties: Mapping[str, Any]) -> float:
    value = properties.get("quantity")
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Rejected("properties.quantity is not a number")
    try:
        quantity = float(value)
    except ValueError:
        raise _Rejected(f"properties.quantity is not a number: {value!r}") from None
    if not math.isfinite(quantity) or quantity <= 0:
        raise _Rejected(f"properties.quantity must be a positive number, got {value!r}")
    return quantity


def _trait(traits: Mapping[str, Any], name: str) -> object:
    """traits[name], or a dotted path into nested traits: "company.id" (a reserved trait)."""
    if name in traits:
        return traits[name]
    found: object = traits
    for part in name.split("."):
        if not isinstance(found, Mapping) or part not in found:
            return None
        found = found[part]
    return found


def _parse_call(
    index: int,
    message: object,
    *,
    implied_type: CallType | None,
    customer_trait: str,
    batch_context: Mapping[str, Any],
    max_call_bytes: int | None,
    received_at: datetime,
) -> _Call:
    if not isinstance(message, dict):
        raise _Rejected(f"a call must be a JSON object, not {type(message).__name__}")
    # The write key is a credential: never kept with the raw call.
    raw = {key: value for key, value in message.items() if key != "writeKey"}
    if max_call_bytes is not None and _json_size(raw) > max_call_bytes:
        raise _Rejected(f"the call is larger than {max_call_bytes // 1024} KB (32 KB per call)")
    if implied_type is None:
        kind = message.get("type")
        if not isinstance(kind, str) or kind not in _CALL_TYPES:
            allowed = ", ".join(CallType)
            raise _Rejected(f"type must be one of {allowed}; got {kind!r}")
        call_type = CallType(kind)
    else:
        call_type = implied_type
    user_id = _text(message.get("userId"), "userId", MAX_USER_ID) or _text(
        message.get("anonymousId"), "anonymousId", MAX_USER_ID
    )
    if user_id is None:
        raise _Rejected("userId or anonymousId is required")
    call = _Call(index=index, type=call_type, user_id=user_id, raw=raw)
    if call_type in COUNTED_ONLY:
        return call

    context = _object(message.get("context"), "context")
    if call_type is CallType.TRACK:
        properties = _object(message.get("properties"), "properties")
        event = _text(message.get("event"), "event", MAX_EVENT)
        if event is None:
            raise _Rejected("event is required for a track call")
        call.event = event
        call.group_id = _text(
            context.get("groupId") or properties.get("groupId") or batch_context.get("groupId"),
            "groupId",
            MAX_GROUP_ID,
        )
        call.quantity = _quantity(properties)
        call.message_id = _text(message.get("messageId"), "messageId", MAX_MESSAGE_ID)
        timestamp = message.get("timestamp")
        if timestamp is None:
            call.occurred_at = received_at
        elif not isinstance(timestamp, str):
            raise _Rejected("timestamp must be an ISO 8601 string")
        else:
            try:
                call.occurred_at = parse_instant(timestamp)
            except (ValueError, OverflowError):  # year 1 or 9999 in another zone overflows
                raise _Rejected(f"timestamp is not ISO 8601: {timestamp[:40]!r}") from None
    elif call_type is CallType.GROUP:
        call.group_id = _text(message.get("groupId"), "groupId", MAX_GROUP_ID)
        if call.group_id is None:
            raise _Rejected("groupId is required for a group call")
    else:  # identify
        call.traits = _object(message.get("traits"), "traits")
        _check_storable_json(call.traits, "traits")
        call.trait_customer = _text(
            _trait(call.traits, customer_trait), f"traits.{customer_trait}", MAX_GROUP_ID
        )
    return call


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


def _write(session: Session, writes: _Writes, report: IntakeReport) -> None:
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


def _known_customers(session: Session, candidates: set[str]) -> set[str]:
    ids = [candidate for candidate in candidates if len(candidate) <= MAX_CUSTOMER_ID]
    if not ids:
        return set()
    found = session.exec(
        select(Customer.customer_id).where(col(Customer.customer_id).in_(ids))
    ).all()
    return set(found)


def _event_row(call: _Call, customer_id: str, received_at: datetime) -> dict[str, object]:
    return {
        "customer_id": customer_id,
        "user_id": call.user_id,
        "event": call.event,
        "occurred_at": call.occurred_at,
        "quantity": call.quantity,
        "event_key": call.message_id,
        "received_at": received_at,
    }


def ingest_calls(
    database: Database,
    messages: Sequence[object],
    *,
    customer_trait: str,
    implied_type: CallType | None = None,
    batch_context: Mapping[str, Any] | None = None,
    max_call_bytes: int | None = None,
) -> IntakeReport:
    """Take Segment calls in order: good ones stored, bad ones rejected, unknown ones kept.

    `implied_type` is the call type of a single-call endpoint (`/v1/track`); a
    batch names each call's `type`. `max_call_bytes` checks each call's size
    (only needed when the request itself is larger). Calls are applied in order,
    so an identify or group call maps the user for the track calls after it.
    """
    received_at = utc_now()
    report = IntakeReport(received=len(messages))
    calls: list[_Call] = []
    for index, message in enumerate(messages):
        try:
            calls.append(
                _parse_call(
                    index,
                    message,
                    implied_type=implied_type,
                    customer_trait=customer_trait,
                    batch_context=batch_context or {},
                    max_call_bytes=max_call_bytes,
                    received_at=received_at,
                )
            )
        except _Rejected as rejected:
            report.rejected.append(RejectedItem(index=index, reason=str(rejected)))

    candidates = {c.group_id for c in calls if c.group_id} | {
        c.trait_customer for c in calls if c.trait_customer
    }
    user_ids = {c.user_id for c in calls if c.type not in COUNTED_ONLY}
    writes = _Writes()
    with database.session() as session:
        known = _known_customers(session, candidates)
        # user id -> (customer id, traits) as of the call being applied.
        users: dict[str, tuple[str, dict[str, Any]]] = {}
        if user_ids:
            for user in session.exec(
                select(UsageUser).where(col(UsageUser.user_id).in_(user_ids))
            ).all():
                users[user.user_id] = (user.customer_id, dict(user.traits))

        def unmatched(call: _Call, reason: str, group_id: str | None) -> None:
            try:
                _check_storable_json(call.raw, "the call")
            except _Rejected as rejected:
                report.rejected.append(RejectedItem(index=call.index, reason=str(rejected)))
                return
            report.unmatched.append(
                UnmatchedItem(
                    index=call.index,
                    type=call.type.value,
                    user_id=call.user_id,
                    group_id=group_id,
                    reason=reason,
                )
            )
            writes.unmatched.append(
                {
                    "received_at": received_at,
                    "kind": call.type.value,
                    "user_id": call.user_id,
                    "group_id": group_id,
                    "reason": reason,
                    "raw": call.raw,
                    "event_key": call.message_id,
                }
            )

        def tie(call: _Call, customer_id: str, traits: dict[str, Any]) -> None:
            users[call.user_id] = (customer_id, traits)
            writes.users[call.user_id] = {
                "user_id": call.user_id,
                "customer_id": customer_id,
                "traits": traits,
                "updated_at": received_at,
            }
            report.mapped += 1

        for call in calls:
            mapped = users.get(call.user_id)
            if call.type in COUNTED_ONLY:
                report.ignored += 1
            elif call.type is CallType.TRACK:
                customer_id: str | None = None
                if call.group_id is not None:
                    if call.group_id in known:
                        customer_id = call.group_id
                    else:
                        unmatched(call, REASON_UNKNOWN_GROUP, call.group_id)
                elif mapped is not None:
                    customer_id = mapped[0]
                else:
                    unmatched(call, _reason_unmapped_user(customer_trait), None)
                if customer_id is not None:
                    row = _event_row(call, customer_id, received_at)
                    (writes.keyed if call.message_id else writes.unkeyed).append(row)
            elif call.type is CallType.GROUP:
                if call.group_id in known:
                    tie(call, call.group_id, mapped[1] if mapped else {})
                else:
                    unmatched(call, REASON_UNKNOWN_GROUP, call.group_id)
            else:  # identify: the trait names the customer; traits are merged
                traits = {**(mapped[1] if mapped else {}), **call.traits}
                if call.trait_customer is not None:
                    if call.trait_customer in known:
                        tie(call, call.trait_customer, traits)
                    else:
                        unmatched(call, _reason_unknown_trait(customer_trait), call.trait_customer)
                elif mapped is not None:
                    tie(call, mapped[0], traits)
                else:
                    unmatched(call, _reason_identify_without_trait(customer_trait), None)
        _write(session, writes, report)
    report.rejected.sort(key=lambda item: item.index or 0)
    return report


# CSV back-fills


def _check_csv_readable(handle: IO[bytes]) -> None:
    """Read the whole file once as UTF-8 CSV, so a broken file stores nothing."""
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        for _ in reader:
            pass
    except UnicodeDecodeError:
        raise IntakeError(
            f"the file is not UTF-8 text (after line {reader.line_num}); save it as UTF-8 CSV"
        ) from None
    except csv.Error as err:
        raise IntakeError(f"line {reader.line_num + 1} is not valid CSV: {err}") from None
    finally:
        text.detach()  # leaves the caller's file open


def ingest_usage_csv(database: Database, handle: IO[bytes]) -> IntakeReport:
    """Import a usage CSV (the columns of `liftoff usage import`) from a seekable binary file.

    Good rows are stored even when others are rejected; rows naming no customer
    are kept as unmatched. A file that is not UTF-8 CSV with the required columns
    raises IntakeError before anything is stored.
    """
    handle.seek(0)
    _check_csv_readable(handle)
    handle.seek(0)
    received_at = utc_now()
    report = IntakeReport()
    with database.session() as session:
        known = set(session.exec(select(col(Customer.customer_id))).all())

    writes = _Writes()

    def flush() -> None:
        nonlocal writes
        with database.session() as session:
            _write(session, writes, report)
        writes = _Writes()

    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    try:
        for line, parsed in iter_usage_csv(text):
            report.received += 1
            if isinstance(parsed, str):
                report.rejected.append(RejectedItem(line=line, reason=parsed))
                continue
            values = {**parsed, "received_at": received_at}
            customer_id = str(values["customer_id"])
            if customer_id in known:
                (writes.keyed if values["event_key"] else writes.unkeyed).append(values)
            else:
                report.unmatched.append(
                    UnmatchedItem(
                        line=line,
                        type=CSV_KIND,
                        user_id=str(values["user_id"]),
                        group_id=customer_id,
                        reason=REASON_UNKNOWN_CSV_CUSTOMER,
                    )
                )
                writes.unmatched.append(
                    {
                        "received_at": received_at,
                        "kind": CSV_KIND,
                        "user_id": values["user_id"],
                        "group_id": customer_id,
                        "reason": REASON_UNKNOWN_CSV_CUSTOMER,
                        "raw": _csv_raw(line, parsed),
                        "event_key": values["event_key"] or None,
                    }
                )
            pending = len(writes.keyed) + len(writes.unkeyed) + len(writes.unmatched)
            if pending >= CSV_TRANSACTION_ROWS:
                flush()
        flush()
    except UsageCsvError as err:
        raise IntakeError(f"not a usage CSV: {err}") from None
    finally:
        text.detach()
    return report


def _csv_raw(line: int, values: Mapping[str, object]) -> dict[str, Any]:
    raw: dict[str, Any] = {"line": line}
    for name in ("customer_id", "user_id", "event", "occurred_at", "quantity", "event_key"):
        value = values.get(name)
        raw[name] = value.isoformat() if isinstance(value, datetime) else value
    return raw


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
    writes = _Writes()
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
            call = _parse_call(
                0,
                row.raw,
                implied_type=CallType(row.kind),
                customer_trait="",
                batch_context={},
                max_call_bytes=None,
                received_at=row.received_at,
            )
        except (_Rejected, ValueError):
            report.rejected.append(RejectedItem(index=row.id, reason="kept call no longer parses"))
            continue
        if call.type is CallType.TRACK:
            event = _event_row(call, customer_id, row.received_at)
            event["event_key"] = call.message_id or fallback_key
            writes.keyed.append(event)
        elif call.type in (CallType.GROUP, CallType.IDENTIFY):
            writes.users[call.user_id] = {
                "user_id": call.user_id,
                "customer_id": customer_id,
                "traits": call.traits,
                "updated_at": row.received_at,
            }
            report.mapped += 1
    _write(session, writes, report)
    adopted = [row.id for row in rows if row.id is not None]
    if adopted:
        session.execute(delete(UnmatchedUsage).where(col(UnmatchedUsage.id).in_(adopted)))
    return report


# Reading what was unmatched


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
                    raw=dict(row.raw),
                )
                for row in rows
            ],
        )
