"""SendGrid's event webhook: verify a batch, store each event once, act on what it says.

This is the logic behind the HTTP endpoint (which lives with the HTTP API): the
endpoint hands over the raw body and the two signature headers, answers 2xx with
the report, and 4xx on WebhookRejected. Any other exception means the batch was
not stored; answering 5xx makes SendGrid deliver it again, which is harmless
because events are deduplicated by sg_event_id.

Events are matched to a customer and a ledger row by the custom_args the mailer
puts on every message (customer_id, ledger_key, category); they come back as
top-level fields of each event. A group_unsubscribe or group_resubscribe of a
message whose category is known leaves or rejoins that category only
(records/email_opt_outs.py), the store the one-click link and the preference page
write; a group_unsubscribe without one (a message sent before categories existed)
suppresses the contact, as before.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import AfterValidator, BaseModel, Field, ValidationError
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy import update
from sqlmodel import Session, col, select

from models.email_categories import EmailCategory
from models.tables import Customer, CustomerContact, EmailEvent, EmailLedgerEntry, utc_now
from records.database import Database, insert_ignore
from records.email_opt_outs import Source, set_choice

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# SendGrid retries a failed delivery for up to 24 hours and does not document
# whether a retry is signed afresh, so a shorter window could refuse genuine
# retries. Within the window a replay is harmless: every event is deduplicated.
WEBHOOK_MAX_AGE = timedelta(hours=24)
# Clocks drift; a signature dated further ahead was made to outlive the age window.
WEBHOOK_MAX_CLOCK_SKEW = timedelta(minutes=5)

# Unix seconds up to the end of year 9999, the range a datetime can hold.
_MAX_UNIX_TIME = 253_402_300_799


class EventType(StrEnum):
    """The event types SendGrid posts; others are stored as they come."""

    PROCESSED = "processed"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    OPEN = "open"
    CLICK = "click"
    BOUNCE = "bounce"
    DROPPED = "dropped"
    SPAMREPORT = "spamreport"
    UNSUBSCRIBE = "unsubscribe"
    GROUP_UNSUBSCRIBE = "group_unsubscribe"
    GROUP_RESUBSCRIBE = "group_resubscribe"


SUPPRESSING = frozenset(
    {
        EventType.BOUNCE,
        EventType.SPAMREPORT,
        EventType.UNSUBSCRIBE,
        EventType.GROUP_UNSUBSCRIBE,
    }
)
# A bounce of type "blocked" is the receiving server refusing for now (reputation,
# content); SendGrid does not suppress the address for it, and neither do we.
BLOCKED_BOUNCE = "blocked"

# Where each event sits in a message's life. Timestamps are whole seconds, so on a
# tie the later stage is the message's fate: a late "processed" must not hide "delivered".
_LIFECYCLE: dict[str, int] = {
    EventType.PROCESSED: 0,
    EventType.DEFERRED: 1,
    EventType.DELIVERED: 2,
    EventType.OPEN: 3,
    EventType.CLICK: 4,
    EventType.BOUNCE: 5,
    EventType.DROPPED: 5,
    EventType.GROUP_RESUBSCRIBE: 6,
    EventType.GROUP_UNSUBSCRIBE: 6,
    EventType.UNSUBSCRIBE: 6,
    EventType.SPAMREPORT: 7,
}


class WebhookRejected(Exception):
    """The whole batch is refused: unsigned, forged, stale or not a JSON array."""


class EventBatchReport(BaseModel):
    """What one webhook batch did; received = recorded + duplicates + unmatched + rejected."""

    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    # Well-formed and stored, but without custom_args or for a customer we do not know.
    unmatched: int = 0
    # Contacts suppressed by this batch (not those suppressed before).
    suppressed: list[str] = Field(default_factory=list)
    # "address: category" left or rejoined by this batch's group events.
    opted_out: list[str] = Field(default_factory=list)
    resubscribed: list[str] = Field(default_factory=list)
    # (index in the batch, reason) of events that could not be read.
    rejected: list[tuple[int, str]] = Field(default_factory=list)


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse the event here rather than fail the batch.
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


StoredStr = Annotated[str, AfterValidator(_no_nul)]


class _Event(BaseModel):
    """The fields of an event that Liftoff reads; the whole event is kept as raw JSON."""

    sg_event_id: StoredStr = Field(min_length=1, max_length=200)
    event: StoredStr = Field(min_length=1, max_length=32)
    email: StoredStr = Field(min_length=1, max_length=320)
    timestamp: int = Field(ge=0, le=_MAX_UNIX_TIME)
    customer_id: StoredStr | None = Field(default=None, max_length=64)
    ledger_key: StoredStr | None = Field(default=None, max_length=200)
    # "" on messages sent before categories existed.
    category: StoredStr | None = Field(default=None, max_length=32)
    url: StoredStr | None = None
    reason: StoredStr | None = None
    # Bounce subtype: "bounce" or "blocked".
    type: StoredStr | None = None
    sg_machine_open: bool = False

    @property
    def recipient(self) -> str:
        return self.email.strip().lower()

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)

    @property
    def email_category(self) -> EmailCategory | None:
        """The category a contact can leave that the message was sent in, if known."""
        try:
            category = EmailCategory(self.category or "")
        except ValueError:
            return None
        return category if category.can_opt_out else None

    @property
    def group_choice(self) -> bool | None:
        """True: leaves the message's category; False: rejoins it; None: neither."""
        if self.email_category is None:
            return None
        if self.event == EventType.GROUP_UNSUBSCRIBE:
            return True
        if self.event == EventType.GROUP_RESUBSCRIBE:
            return False
        return None

    @property
    def suppresses(self) -> bool:
        if self.event not in SUPPRESSING or self.group_choice is not None:
            return False
        return not (self.event == EventType.BOUNCE and self.type == BLOCKED_BOUNCE)


def _key_body(public_key: str) -> str:
    """The base64 key as SendGrid shows it; a full PEM block is accepted too."""
    lines = [line.strip() for line in public_key.strip().splitlines()]
    return "".join(line for line in lines if line and not line.startswith("-----"))


@lru_cache(maxsize=8)
def _verifier(public_key: str) -> EventWebhook:
    body = _key_body(public_key)
    if not body:
        raise ValueError("the SendGrid webhook public key is empty")
    try:
        verifier = EventWebhook(body)
    except (ValueError, TypeError) as err:
        # A configuration error, not a forged request: let it fail loudly.
        raise ValueError("the SendGrid webhook public key is not a valid public key") from err
    if not isinstance(verifier.public_key, ec.EllipticCurvePublicKey):
        raise ValueError("the SendGrid webhook public key is not an elliptic-curve key")
    return verifier


def verify_signature(public_key: str, raw_body: bytes, signature: str, timestamp: str) -> bool:
    """True when `signature` is SendGrid's ECDSA signature of timestamp + raw_body.

    A missing or garbled signature is False, never an exception; a public key that
    cannot be read raises ValueError (misconfiguration must not pass for forgery).
    """
    verifier = _verifier(public_key)
    if not signature or not timestamp:
        return False
    try:
        # The helper signs text; strict UTF-8 decoding round-trips the exact bytes.
        payload = raw_body.decode("utf-8")
        base64.b64decode(signature, validate=True)
        return bool(verifier.verify_signature(payload, signature, timestamp))
    except (UnicodeDecodeError, binascii.Error, ValueError, TypeError):
        return False


def _check_batch(
    raw_body: bytes,
    signature: str | None,
    timestamp: str | None,
    public_key: str,
    max_age: timedelta | None,
) -> None:
    if not signature or not timestamp:
        raise WebhookRejected(
            f"unsigned batch: {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required"
        )
    if not verify_signature(public_key, raw_body, signature, timestamp):
        raise WebhookRejected("the signature does not match the body")
    if max_age is None:
        return
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError) as err:
        raise WebhookRejected(f"timestamp {timestamp!r} is not a unix time") from err
    age = utc_now() - signed_at
    if age > max_age:
        raise WebhookRejected(f"signed {age} ago, longer than {max_age}: refused as a replay")
    if -age > WEBHOOK_MAX_CLOCK_SKEW:
        raise WebhookRejected(f"signed {-age} in the future: refused")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(raw_body: bytes) -> list[Any]:
    try:
        payload = json.loads(raw_body, parse_constant=_refuse_constant)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError included
        raise WebhookRejected(f"the body is not JSON: {err}") from err
    if not isinstance(payload, list):
        raise WebhookRejected("the body is not a JSON array of events")
    return payload


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'event'}: {item['msg']}"
        for item in error.errors()
    )


def _known_customers(session: Session, customer_ids: set[str]) -> set[str]:
    if not customer_ids:
        return set()
    found = session.exec(
        select(Customer.customer_id).where(col(Customer.customer_id).in_(customer_ids))
    ).all()
    return set(found)


def _rank(event: str) -> int:
    return _LIFECYCLE.get(event, -1)


def _update_fate(session: Session, event: _Event) -> None:
    """The ledger row's last event: the newest one, so events arriving out of order are fine."""
    row = session.exec(
        select(EmailLedgerEntry)
        .where(col(EmailLedgerEntry.customer_id) == event.customer_id)
        .where(col(EmailLedgerEntry.ledger_key) == event.ledger_key)
        .where(col(EmailLedgerEntry.recipient) == event.recipient)
        # Two batches about one message may arrive together (a no-op on SQLite,
        # whose writers already take turns).
        .with_for_update()
    ).first()
    if row is None:
        return
    at = event.occurred_at
    if row.last_event is not None and row.last_event_at is not None:
        if at < row.last_event_at:
            return
        if at == row.last_event_at and _rank(event.event) < _rank(row.last_event):
            return
    row.last_event = event.event
    row.last_event_at = at
    session.add(row)


def _suppress(session: Session, event: _Event) -> bool:
    """Stop sending to the contact; True when this event is what suppressed it."""
    changed = session.exec(
        update(CustomerContact)
        .where(col(CustomerContact.customer_id) == event.customer_id)
        .where(col(CustomerContact.email) == event.recipient)
        # The first reason and moment stand.
        .where(col(CustomerContact.suppressed_at).is_(None))
        .values(unsubscribed=True, suppressed_reason=event.event, suppressed_at=event.occurred_at)
        # Counted from RETURNING, as in insert_ignore.
        .returning(col(CustomerContact.email))
    ).all()
    return bool(changed)


def process_events(
    database: Database,
    raw_body: bytes,
    *,
    signature: str | None,
    timestamp: str | None,
    public_key: str | None,
    max_age: timedelta | None = WEBHOOK_MAX_AGE,
) -> EventBatchReport:
    """Verify one webhook batch, then store and apply each event not seen before.

    With `public_key` None (no key configured) the batch is taken unverified.
    Raises WebhookRejected when the batch as a whole is refused; nothing is stored then.
    A malformed event is reported with its index and the rest of the batch goes on.
    """
    if public_key is not None:
        # Before parsing: the signature covers the bytes as received.
        _check_batch(raw_body, signature, timestamp, public_key, max_age)
    items = _parse(raw_body)

    report = EventBatchReport(received=len(items))
    events: list[tuple[_Event, dict[str, Any]]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            report.rejected.append((index, "not a JSON object"))
            continue
        try:
            events.append((_Event.model_validate(item), item))
        except ValidationError as err:
            report.rejected.append((index, _describe(err)))

    received_at = utc_now()
    # One transaction: a failure stores nothing, and the redelivery starts clean.
    with database.session() as session:
        known = _known_customers(session, {e.customer_id for e, _ in events if e.customer_id})
        for event, raw in events:
            stored = insert_ignore(
                session,
                EmailEvent,
                {
                    "sg_event_id": event.sg_event_id,
                    "customer_id": event.customer_id,
                    "ledger_key": event.ledger_key,
                    "recipient": event.recipient,
                    "event": event.event,
                    "occurred_at": event.occurred_at,
                    "machine_open": event.sg_machine_open,
                    "url": event.url,
                    "reason": event.reason,
                    "raw": raw,
                    "received_at": received_at,
                },
                ["sg_event_id"],
            )
            if not stored:
                report.duplicates += 1
                continue
            if event.customer_id not in known:
                report.unmatched += 1
                continue
            report.recorded += 1
            if event.ledger_key is not None:
                _update_fate(session, event)
            if (
                event.suppresses
                and _suppress(session, event)
                and event.recipient not in report.suppressed
            ):
                report.suppressed.append(event.recipient)
            _apply_group_choice(session, event, report)
    return report


def _apply_group_choice(session: Session, event: _Event, report: EventBatchReport) -> None:
    """A group event of a categorised message: the contact leaves or rejoins that category,
    unless a newer choice (the preference page, a later event) already stands."""
    choice, category = event.group_choice, event.email_category
    if choice is None or category is None or event.customer_id is None:
        return
    changed = set_choice(
        session,
        customer_id=event.customer_id,
        email=event.recipient,
        category=category,
        opted_out=choice,
        at=event.occurred_at,
        source=Source.SENDGRID,
    )
    if changed:
        (report.opted_out if choice else report.resubscribed).append(
            f"{event.recipient}: {category.value}"
        )
