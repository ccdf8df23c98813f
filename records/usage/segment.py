"""Usage from Segment tracking calls (track, identify, group, page, batch).

Plain functions, so the HTTP routes (api/routes/usage.py), the bench and the tests
share them. How a call finds its customer:

- a group id names the customer: `context.groupId` or `properties.groupId` of a
  track call, the `groupId` of a group call. A group id that names no customer
  makes the call unmatched; the user's mapping does not stand in for it, since a
  user may belong to several accounts and the call said which one it was for.
- otherwise the user's mapping (usage_users), learnt from group calls and from
  identify calls whose traits carry the customer trait (`company_id` by default).

A call that finds no customer is kept in unmatched_usage with the reason and
reported back, never dropped; an identify call waits there for the call that
ties its user, which keeps its traits (bounded, records/usage/store.py). Track
calls become usage events keyed by their messageId, so a redelivered message is
stored once. Page, screen and alias calls
are accepted and counted, not stored: the weekly measurement has no use for them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from models.tables import UnmatchedUsage, UsageUser, utc_now
from records.database import Database
from records.usage.events import parse_instant
from records.usage.rejected import rejected_rows, shown
from records.usage.store import (
    MAX_EVENT,
    MAX_GROUP_ID,
    MAX_JSON_DEPTH,
    MAX_MESSAGE_ID,
    MAX_QUANTITY,
    MAX_USER_ID,
    OUTSIDE_WINDOW,
    IntakeReport,
    PendingWrites,
    RejectedItem,
    UnmatchedItem,
    known_customers,
    merge_traits,
    nested_deeper_than,
    plausible_event_time,
    write_pending,
)

# What Segment's API accepts (and its libraries keep to): 500 KB per batch
# request, 32 KB per call, alone or inside a batch.
MAX_BATCH_BYTES = 500 * 1024
MAX_CALL_BYTES = 32 * 1024
# Segment sets no count; its calls are hundreds of bytes, so no client's batch
# within 500 KB comes near this, while 500 KB of `1,` would be 250,000 calls.
MAX_BATCH_CALLS = 5_000


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


# Reasons are fixed sentences so they can be counted; the id is in its own column.
REASON_UNKNOWN_GROUP = "group id names no customer"


def _reason_unknown_trait(trait: str) -> str:
    return f"the {trait} trait names no customer"


def _reason_unmapped_user(trait: str) -> str:
    return (
        "user not tied to a customer: no group id, and no earlier group call or "
        f"identify call with the {trait} trait"
    )


def _reason_identify_without_trait(trait: str) -> str:
    return f"identify without the {trait} trait for a user not tied to a customer"


class CallRejected(Exception):
    """One call or row that cannot be taken; the message says why."""


@dataclass
class Call:
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
    # Identify and group calls: their traits; identify calls: the customer the
    # customer trait names.
    traits: dict[str, Any] = field(default_factory=dict)
    trait_customer: str | None = None


# Parsing one call


def _text(value: object, name: str, limit: int) -> str | None:
    """An id or name as stored: a string (numbers are accepted, as Segment does), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CallRejected(f"{name} must be a string, not {type(value).__name__}")
    text = str(value).strip()
    if not text:
        return None
    if len(text) > limit:
        raise CallRejected(f"{name} is longer than {limit} characters")
    _check_storable(text, name)
    return text


def _check_storable(text: str, name: str) -> None:
    # PostgreSQL refuses NUL in text, and no database takes a lone surrogate.
    if "\x00" in text:
        raise CallRejected(f"{name} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CallRejected(f"{name} is not valid Unicode (a lone surrogate)") from None


def _check_storable_json(value: object, name: str) -> None:
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise CallRejected(f"{name} is not valid Unicode (a lone surrogate)") from None
    except ValueError:
        # PostgreSQL's json type refuses what Python's json module writes for these.
        raise CallRejected(f"{name} holds NaN or Infinity, which JSON does not allow") from None
    except RecursionError:
        raise CallRejected(f"{name} is nested too deeply") from None


def _json_size(value: object) -> int:
    try:
        return len(json.dumps(value).encode())
    except RecursionError:
        raise CallRejected("the call is nested too deeply") from None


def _object(value: object, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CallRejected(f"{name} must be an object, not {type(value).__name__}")
    return value


def _quantity(properties: Mapping[str, Any]) -> float:
    value = properties.get("quantity")
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CallRejected("properties.quantity is not a number")
    try:
        quantity = float(value)
    except ValueError:
        raise CallRejected(f"properties.quantity is not a number: {shown(value)}") from None
    except OverflowError:  # an integer past a float's range
        quantity = -math.inf if isinstance(value, int) and value < 0 else math.inf
    if math.isnan(quantity) or quantity <= 0:
        raise CallRejected(f"properties.quantity must be a positive number, got {shown(value)}")
    if quantity > MAX_QUANTITY:
        raise CallRejected(
            f"properties.quantity must be at most {MAX_QUANTITY:,}, got {shown(value)}"
        )
    return quantity


def _occurred_at(timestamp: str, received_at: datetime) -> datetime:
    try:
        occurred_at: datetime | None = parse_instant(timestamp)
    except OverflowError:  # year 1 or 9999 in another zone leaves datetime's range
        occurred_at = None
    except ValueError:
        raise CallRejected(f"timestamp is not ISO 8601: {shown(timestamp)}") from None
    if occurred_at is None or not plausible_event_time(occurred_at, received_at):
        raise CallRejected(f"timestamp is out of range: {shown(timestamp)} {OUTSIDE_WINDOW}")
    return occurred_at


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


def parse_call(
    index: int,
    message: object,
    *,
    implied_type: CallType | None,
    customer_trait: str,
    batch_context: Mapping[str, Any],
    max_call_bytes: int | None,
    received_at: datetime,
) -> Call:
    if not isinstance(message, dict):
        raise CallRejected(f"a call must be a JSON object, not {type(message).__name__}")
    if nested_deeper_than(message, MAX_JSON_DEPTH):
        # Kept, it would break every later read of the unmatched list.
        raise CallRejected(f"the call is nested more than {MAX_JSON_DEPTH} levels deep")
    # The write key is a credential: never kept with the raw call.
    raw = {key: value for key, value in message.items() if key != "writeKey"}
    if max_call_bytes is not None and _json_size(raw) > max_call_bytes:
        raise CallRejected(f"the call is larger than {max_call_bytes // 1024} KB (32 KB per call)")
    if implied_type is None:
        kind = message.get("type")
        if not isinstance(kind, str) or kind not in _CALL_TYPES:
            allowed = ", ".join(CallType)
            raise CallRejected(f"type must be one of {allowed}; got {shown(kind)}")
        call_type = CallType(kind)
    else:
        call_type = implied_type
    user_id = _text(message.get("userId"), "userId", MAX_USER_ID) or _text(
        message.get("anonymousId"), "anonymousId", MAX_USER_ID
    )
    if user_id is None:
        raise CallRejected("userId or anonymousId is required")
    call = Call(index=index, type=call_type, user_id=user_id, raw=raw)
    if call_type in COUNTED_ONLY:
        return call

    context = _object(message.get("context"), "context")
    if call_type is CallType.TRACK:
        properties = _object(message.get("properties"), "properties")
        event = _text(message.get("event"), "event", MAX_EVENT)
        if event is None:
            raise CallRejected("event is required for a track call")
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
            raise CallRejected("timestamp must be an ISO 8601 string")
        else:
            call.occurred_at = _occurred_at(timestamp, received_at)
    elif call_type is CallType.GROUP:
        call.group_id = _text(message.get("groupId"), "groupId", MAX_GROUP_ID)
        if call.group_id is None:
            raise CallRejected("groupId is required for a group call")
        call.traits = _object(message.get("traits"), "traits")
        _check_storable_json(call.traits, "traits")
    else:  # identify
        call.traits = _object(message.get("traits"), "traits")
        _check_storable_json(call.traits, "traits")
        call.trait_customer = _text(
            _trait(call.traits, customer_trait), f"traits.{customer_trait}", MAX_GROUP_ID
        )
    return call


def event_row(call: Call, customer_id: str, received_at: datetime) -> dict[str, object]:
    return {
        "customer_id": customer_id,
        "user_id": call.user_id,
        "event": call.event,
        "occurred_at": call.occurred_at,
        "quantity": call.quantity,
        "event_key": call.message_id,
        "received_at": received_at,
    }


@dataclass
class TiedUser:
    """A user tied to a customer, with the traits kept for it."""

    customer_id: str
    traits: dict[str, Any]
    group_traits: dict[str, Any]


@dataclass
class Waiting:
    """Identify calls of a user not tied to a customer yet, kept as unmatched: when a
    later call ties the user, their traits are kept and they leave the unmatched list."""

    traits: dict[str, Any] = field(default_factory=dict)
    # Unmatched rows stored by earlier requests.
    stored: list[int] = field(default_factory=list)
    # This request's: its report item and its pending row.
    here: list[tuple[UnmatchedItem, dict[str, object]]] = field(default_factory=list)


def waiting_identifies(session: Session, user_ids: set[str]) -> dict[str, Waiting]:
    waiting: dict[str, Waiting] = {}
    if not user_ids:
        return waiting
    rows = session.exec(
        select(UnmatchedUsage)
        .where(col(UnmatchedUsage.user_id).in_(user_ids))
        .where(col(UnmatchedUsage.kind) == CallType.IDENTIFY.value)
        .where(col(UnmatchedUsage.group_id).is_(None))
        .order_by(col(UnmatchedUsage.id))
    ).all()
    for row in rows:
        if row.user_id is None or row.id is None:
            continue
        wait = waiting.setdefault(row.user_id, Waiting())
        traits = row.raw.get("traits")
        wait.traits = merge_traits(wait.traits, traits if isinstance(traits, dict) else {})
        wait.stored.append(row.id)
    return waiting


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
    calls: list[Call] = []
    for index, message in enumerate(messages):
        try:
            calls.append(
                parse_call(
                    index,
                    message,
                    implied_type=implied_type,
                    customer_trait=customer_trait,
                    batch_context=batch_context or {},
                    max_call_bytes=max_call_bytes,
                    received_at=received_at,
                )
            )
        except CallRejected as rejected:
            report.rejected.append(RejectedItem(index=index, reason=str(rejected)))

    candidates = {c.group_id for c in calls if c.group_id} | {
        c.trait_customer for c in calls if c.trait_customer
    }
    user_ids = {c.user_id for c in calls if c.type not in COUNTED_ONLY}
    writes = PendingWrites()
    with database.session() as session:
        known = known_customers(session, candidates)
        # user id -> the user as of the call being applied.
        users: dict[str, TiedUser] = {}
        if user_ids:
            for user in session.exec(
                select(UsageUser).where(col(UsageUser.user_id).in_(user_ids))
            ).all():
                users[user.user_id] = TiedUser(
                    user.customer_id, dict(user.traits), dict(user.group_traits)
                )
        waiting = waiting_identifies(session, user_ids - users.keys())

        def unmatched(call: Call, reason: str, group_id: str | None) -> None:
            try:
                _check_storable_json(call.raw, "the call")
            except CallRejected as rejected:
                report.rejected.append(RejectedItem(index=call.index, reason=str(rejected)))
                return
            item = UnmatchedItem(
                index=call.index,
                type=call.type.value,
                user_id=call.user_id,
                group_id=group_id,
                reason=reason,
            )
            row: dict[str, object] = {
                "received_at": received_at,
                "kind": call.type.value,
                "user_id": call.user_id,
                "group_id": group_id,
                "reason": reason,
                "raw": call.raw,
                "event_key": call.message_id,
            }
            report.unmatched.append(item)
            writes.unmatched.append(row)
            if call.type is CallType.IDENTIFY and group_id is None:
                # Its traits wait for the call that ties the user (often the next one).
                wait = waiting.setdefault(call.user_id, Waiting())
                wait.traits = merge_traits(wait.traits, call.traits)
                wait.here.append((item, row))

        def tie(call: Call, customer_id: str, user: TiedUser) -> None:
            wait = waiting.pop(call.user_id, None)
            if wait is not None:
                user.traits = merge_traits(wait.traits, user.traits)
                writes.taken_unmatched += wait.stored
                taken_items = {id(item) for item, _ in wait.here}
                taken_rows = {id(row) for _, row in wait.here}
                report.unmatched = [i for i in report.unmatched if id(i) not in taken_items]
                writes.unmatched = [r for r in writes.unmatched if id(r) not in taken_rows]
                report.mapped += len(wait.here)
            users[call.user_id] = user
            writes.users[call.user_id] = {
                "user_id": call.user_id,
                "customer_id": customer_id,
                "traits": user.traits,
                "group_traits": user.group_traits,
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
                    customer_id = mapped.customer_id
                else:
                    unmatched(call, _reason_unmapped_user(customer_trait), None)
                if customer_id is not None:
                    row = event_row(call, customer_id, received_at)
                    (writes.keyed if call.message_id else writes.unkeyed).append(row)
            elif call.type is CallType.GROUP:
                if call.group_id in known:
                    # A user moved to another customer leaves its old group's traits behind.
                    same = mapped is not None and mapped.customer_id == call.group_id
                    group_traits = merge_traits(
                        mapped.group_traits if same and mapped else {}, call.traits
                    )
                    traits = mapped.traits if mapped else {}
                    tie(call, call.group_id, TiedUser(call.group_id, traits, group_traits))
                else:
                    unmatched(call, REASON_UNKNOWN_GROUP, call.group_id)
            else:  # identify: the trait names the customer; traits are merged
                traits = merge_traits(mapped.traits if mapped else {}, call.traits)
                group_traits = mapped.group_traits if mapped else {}
                if call.trait_customer is not None:
                    if call.trait_customer in known:
                        if mapped is not None and mapped.customer_id != call.trait_customer:
                            group_traits = {}
                        tie(
                            call,
                            call.trait_customer,
                            TiedUser(call.trait_customer, traits, group_traits),
                        )
                    else:
                        unmatched(call, _reason_unknown_trait(customer_trait), call.trait_customer)
                elif mapped is not None:
                    tie(
                        call, mapped.customer_id, TiedUser(mapped.customer_id, traits, group_traits)
                    )
                else:
                    unmatched(call, _reason_identify_without_trait(customer_trait), None)
        report.rejected.sort(key=lambda item: item.index or 0)
        # The reply is all a Segment client gets, and it discards it: keep the reasons.
        endpoint = f"/v1/{implied_type.value}" if implied_type else "/v1/batch"
        writes.rejected = rejected_rows(endpoint, received_at, report.rejected, messages)
        write_pending(session, writes, report)
    return report
