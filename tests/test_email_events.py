"""SendGrid's event webhook on SQLite and PostgreSQL: only signed batches count, each
event counts once, and what recipients do shows in the ledger, the contacts and the week."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import col, select
from temporalio.testing import ActivityEnvironment

from activities.mail import MailActivities
from activities.measure import MeasureActivities
from emails.mailers import OutboxMailer
from models.activity_io import MeasureWeeklyUsageInput, SendEmailInput
from models.handoff import CustomerHandoff, Role
from models.tables import CustomerContact, EmailEvent, EmailLedgerEntry
from records.database import Database
from records.email_events import EventBatchReport, WebhookRejected, process_events, verify_signature
from testkit.factories import make_handoff, make_mail_activities, store_customer
from tests.support.sendgrid import ADMIN, LEDGER_KEY, Signer, sg_event

PROPOSAL_CONTEXT: dict[str, str | int | float | bool | None] = {
    "customer_name": "Acme Logistics",
    "purposes": "Expense reports",
    "detail": "",
}
WEEK_START = datetime(2025, 3, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


@pytest.fixture
def activity_env() -> ActivityEnvironment:
    return ActivityEnvironment()


@pytest.fixture
def mail(database: Database, tmp_path: Path) -> MailActivities:
    return make_mail_activities(database, OutboxMailer(tmp_path / "outbox"))


@pytest.fixture
def customer(database: Database) -> CustomerHandoff:
    handoff = make_handoff()
    store_customer(database, handoff)
    return handoff


def deliver(
    database: Database,
    signer: Signer,
    events: list[Any],
    *,
    signed_at: datetime | None = None,
    **options: Any,
) -> EventBatchReport:
    """POST a signed batch, as SendGrid does."""
    body = json.dumps(events).encode()
    timestamp = str(int((signed_at or datetime.now(UTC)).timestamp()))
    return process_events(
        database,
        body,
        signature=signer.sign(timestamp, body),
        timestamp=timestamp,
        public_key=signer.public_key,
        **options,
    )


def send_proposal(
    env: ActivityEnvironment, mail: MailActivities, customer_id: str, key: str = LEDGER_KEY
) -> list[str]:
    result = env.run(
        mail.send_email,
        SendEmailInput(
            ledger_key=key,
            customer_id=customer_id,
            template="stall_proposal",
            to_role=Role.ADMINISTRATOR,
            context=PROPOSAL_CONTEXT,
        ),
    )
    return result.sent


def stored_events(database: Database) -> list[EmailEvent]:
    with database.session() as session:
        return list(session.exec(select(EmailEvent).order_by(col(EmailEvent.id))).all())


def ledger_row(database: Database, customer_id: str, recipient: str = ADMIN) -> EmailLedgerEntry:
    with database.session() as session:
        row = session.get(EmailLedgerEntry, (customer_id, LEDGER_KEY, recipient))
    if row is None:
        raise AssertionError(f"no ledger row for {recipient}")
    return row


def contact(database: Database, customer_id: str, email: str = ADMIN) -> CustomerContact:
    with database.session() as session:
        row = session.exec(
            select(CustomerContact)
            .where(col(CustomerContact.customer_id) == customer_id)
            .where(col(CustomerContact.email) == email)
        ).one()
    return row


def test_signed_batch_is_recorded_and_the_ledger_shows_the_fate(
    database: Database,
    signer: Signer,
    customer: CustomerHandoff,
    mail: MailActivities,
    activity_env: ActivityEnvironment,
) -> None:
    assert send_proposal(activity_env, mail, customer.customer_id) == [ADMIN]
    sent = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    events = [
        sg_event("processed", customer.customer_id, at=sent),
        sg_event("delivered", customer.customer_id, at=sent + timedelta(seconds=5)),
        sg_event(
            "click",
            customer.customer_id,
            at=sent + timedelta(hours=2),
            url="https://app.example/reports",
        ),
        # Arrives after the click but happened before it.
        sg_event("open", customer.customer_id, at=sent + timedelta(hours=1)),
    ]

    report = deliver(database, signer, events)

    assert report == EventBatchReport(received=4, recorded=4)
    stored = stored_events(database)
    assert [e.event for e in stored] == ["processed", "delivered", "click", "open"]
    click = stored[2]
    assert (click.customer_id, click.ledger_key, click.recipient) == (
        customer.customer_id,
        LEDGER_KEY,
        ADMIN,
    )
    assert click.url == "https://app.example/reports"
    assert click.occurred_at == sent + timedelta(hours=2)
    assert click.raw["sg_message_id"] == events[2]["sg_message_id"]
    row = ledger_row(database, customer.customer_id)
    assert (row.last_event, row.last_event_at) == ("click", sent + timedelta(hours=2))


def test_on_the_same_second_the_later_stage_is_the_fate(
    database: Database,
    signer: Signer,
    customer: CustomerHandoff,
    mail: MailActivities,
    activity_env: ActivityEnvironment,
) -> None:
    send_proposal(activity_env, mail, customer.customer_id)
    at = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    deliver(database, signer, [sg_event("delivered", customer.customer_id, at=at)])
    deliver(database, signer, [sg_event("processed", customer.customer_id, at=at)])

    assert ledger_row(database, customer.customer_id).last_event == "delivered"


@pytest.mark.parametrize(
    "forgery",
    ["tampered body", "another key", "garbled signature", "unsigned", "no timestamp"],
)
def test_unverified_batch_is_refused_and_records_nothing(
    database: Database, signer: Signer, customer: CustomerHandoff, forgery: str
) -> None:
    body = json.dumps([sg_event("spamreport", customer.customer_id)]).encode()
    timestamp = str(int(time.time()))
    signature: str | None = signer.sign(timestamp, body)
    stamp: str | None = timestamp
    if forgery == "tampered body":
        body = body.replace(b"spamreport", b"delivered!")
    elif forgery == "another key":
        signature = Signer.generate().sign(timestamp, body)
    elif forgery == "garbled signature":
        signature = "not*base64*at*all"
    elif forgery == "unsigned":
        signature = None
    else:
        stamp = None

    with pytest.raises(WebhookRejected):
        process_events(
            database, body, signature=signature, timestamp=stamp, public_key=signer.public_key
        )

    assert stored_events(database) == []
    assert contact(database, customer.customer_id).unsubscribed is False


def test_verify_signature_answers_false_on_bad_input_and_refuses_a_bad_key(
    signer: Signer,
) -> None:
    body = b'[{"event":"open"}]'
    signature = signer.sign("1700000000", body)

    assert verify_signature(signer.public_key, body, signature, "1700000000") is True
    # The timestamp is signed too: changing it breaks the signature.
    assert verify_signature(signer.public_key, body, signature, "1700000001") is False
    assert verify_signature(signer.public_key, body, "", "1700000000") is False
    assert verify_signature(signer.public_key, body, "AAAA", "1700000000") is False
    assert verify_signature(signer.public_key, b"\xff\xfe", signature, "1700000000") is False
    # A full PEM block, as some people paste it, works as well as the bare key.
    pem = f"-----BEGIN PUBLIC KEY-----\n{signer.public_key}\n-----END PUBLIC KEY-----\n"
    assert verify_signature(pem, body, signature, "1700000000") is True
    with pytest.raises(ValueError, match="public key"):
        verify_signature("not a key", body, signature, "1700000000")
    with pytest.raises(ValueError, match="empty"):
        verify_signature("", body, signature, "1700000000")
    rsa_der = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match="elliptic-curve"):
        verify_signature(base64.b64encode(rsa_der).decode(), body, signature, "1700000000")


def test_stale_signature_is_refused_as_a_replay(
    database: Database, signer: Signer, customer: CustomerHandoff
) -> None:
    events = [sg_event("open", customer.customer_id)]
    two_days_ago = datetime.now(UTC) - timedelta(days=2)

    with pytest.raises(WebhookRejected, match="replay"):
        deliver(database, signer, events, signed_at=two_days_ago)
    assert stored_events(database) == []

    accepted = deliver(database, signer, events, signed_at=two_days_ago, max_age=None)
    assert accepted.recorded == 1


def test_a_signature_dated_days_ahead_is_refused_and_a_minute_of_drift_is_not(
    database: Database, signer: Signer, customer: CustomerHandoff
) -> None:
    events = [sg_event("open", customer.customer_id)]
    now = datetime.now(UTC)

    with pytest.raises(WebhookRejected, match="in the future"):
        deliver(database, signer, events, signed_at=now + timedelta(days=10))
    assert stored_events(database) == []

    accepted = deliver(database, signer, events, signed_at=now + timedelta(minutes=1))
    assert accepted.recorded == 1


def test_without_a_configured_key_batches_are_taken_unverified(
    database: Database, customer: CustomerHandoff
) -> None:
    body = json.dumps([sg_event("open", customer.customer_id)]).encode()

    report = process_events(database, body, signature=None, timestamp=None, public_key=None)

    assert report.recorded == 1


def test_redelivered_batch_records_nothing_new(
    database: Database,
    signer: Signer,
    customer: CustomerHandoff,
    mail: MailActivities,
    activity_env: ActivityEnvironment,
) -> None:
    send_proposal(activity_env, mail, customer.customer_id)
    events = [
        sg_event("delivered", customer.customer_id),
        sg_event("bounce", customer.customer_id, reason="550 5.1.1 no such user"),
    ]
    # The same event twice in one batch counts once too.
    first = deliver(database, signer, [*events, events[0]])
    again = deliver(database, signer, events)

    assert (first.recorded, first.duplicates, first.suppressed) == (2, 1, [ADMIN])
    assert again == EventBatchReport(received=2, duplicates=2)
    assert len(stored_events(database)) == 2


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        ("bounce", {"type": "bounce", "reason": "550 5.1.1 The email account does not exist"}),
        ("unsubscribe", {}),
        ("spamreport", {}),
        ("group_unsubscribe", {"asm_group_id": 42}),
    ],
)
def test_bounce_unsubscribe_or_spam_report_stops_later_emails_to_the_contact(
    database: Database,
    signer: Signer,
    customer: CustomerHandoff,
    mail: MailActivities,
    activity_env: ActivityEnvironment,
    event: str,
    fields: dict[str, Any],
) -> None:
    send_proposal(activity_env, mail, customer.customer_id)
    at = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)

    report = deliver(database, signer, [sg_event(event, customer.customer_id, at=at, **fields)])

    assert report.suppressed == [ADMIN]
    suppressed = contact(database, customer.customer_id)
    assert suppressed.unsubscribed is True
    assert (suppressed.suppressed_reason, suppressed.suppressed_at) == (event, at)
    assert ledger_row(database, customer.customer_id).last_event == event
    [stored] = stored_events(database)
    assert stored.reason == fields.get("reason")
    # The next email to the customer's administrators skips the suppressed one.
    later = activity_env.run(
        mail.send_email,
        SendEmailInput(
            ledger_key="stall:2:proposal",
            customer_id=customer.customer_id,
            template="stall_proposal",
            to_role=Role.ADMINISTRATOR,
            context=PROPOSAL_CONTEXT,
        ),
    )
    assert later.sent == []
    assert later.skipped_reason is not None
    # Other contacts of the customer are untouched.
    assert contact(database, customer.customer_id, "boss@acme.example").unsubscribed is False


def test_first_suppression_stands_and_a_blocked_bounce_suppresses_nobody(
    database: Database, signer: Signer, customer: CustomerHandoff
) -> None:
    at = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    blocked = sg_event(
        "bounce", customer.customer_id, email="boss@acme.example", type="blocked", reason="421"
    )
    report = deliver(
        database,
        signer,
        [
            blocked,
            # Uppercase as some providers echo it: the contact is still found.
            sg_event("unsubscribe", customer.customer_id, email="Admin@Acme.example", at=at),
            sg_event("spamreport", customer.customer_id, at=at + timedelta(hours=1)),
        ],
    )

    assert report.recorded == 3
    assert report.suppressed == [ADMIN]
    admin = contact(database, customer.customer_id)
    assert (admin.suppressed_reason, admin.suppressed_at) == ("unsubscribe", at)
    assert contact(database, customer.customer_id, "boss@acme.example").unsubscribed is False


def test_events_for_unknown_customers_or_without_custom_args_are_reported_unmatched(
    database: Database, signer: Signer, customer: CustomerHandoff
) -> None:
    report = deliver(
        database,
        signer,
        [
            sg_event("bounce", "no-such-customer"),
            sg_event("spamreport", None, ledger_key=None),
            sg_event("open", customer.customer_id),
        ],
    )

    assert (report.received, report.recorded, report.unmatched) == (3, 1, 2)
    assert report.suppressed == []
    # Kept for whoever investigates, but they change nobody.
    assert len(stored_events(database)) == 3
    assert contact(database, customer.customer_id).unsubscribed is False


def test_malformed_event_is_rejected_by_index_and_the_rest_recorded(
    database: Database, signer: Signer, customer: CustomerHandoff
) -> None:
    good = sg_event("open", customer.customer_id)
    no_id = {k: v for k, v in sg_event("click", customer.customer_id).items() if k != "sg_event_id"}
    bad_time = sg_event("delivered", customer.customer_id, timestamp="yesterday")
    nul = sg_event("dropped", customer.customer_id, reason="Bounced Address\x00")

    report = deliver(database, signer, [no_id, good, "not an event", bad_time, nul])

    assert report.received == 5
    assert report.recorded == 1
    assert [index for index, _ in report.rejected] == [0, 2, 3, 4]
    reasons = dict(report.rejected)
    assert "sg_event_id" in reasons[0]
    assert "timestamp" in reasons[3]
    assert "NUL" in reasons[4]
    assert [e.sg_event_id for e in stored_events(database)] == [good["sg_event_id"]]


@pytest.mark.parametrize("body", [b"{not json", b'{"event": "open"}', b"[NaN]"])
def test_body_that_is_not_an_array_of_events_is_refused(
    database: Database, signer: Signer, body: bytes
) -> None:
    timestamp = str(int(time.time()))
    with pytest.raises(WebhookRejected):
        process_events(
            database,
            body,
            signature=signer.sign(timestamp, body),
            timestamp=timestamp,
            public_key=signer.public_key,
        )


def test_opens_and_clicks_of_the_week_are_measured_as_engagement(
    database: Database, signer: Signer, customer: CustomerHandoff, activity_env: ActivityEnvironment
) -> None:
    inside = WEEK_START + timedelta(days=1)
    cid = customer.customer_id
    deliver(
        database,
        signer,
        [
            sg_event("open", cid, at=inside),
            sg_event("open", cid, at=inside, email="boss@acme.example"),
            sg_event("open", cid, at=WEEK_START),  # the start is inside
            sg_event("click", cid, at=inside, url="https://app.example/"),
            sg_event("delivered", cid, at=inside),
            # A privacy proxy prefetching images is not a person reading.
            sg_event("open", cid, at=inside, sg_machine_open=True),
            sg_event("open", cid, at=WEEK_START + timedelta(days=7)),  # the end is outside
            sg_event("click", cid, at=WEEK_START - timedelta(seconds=1)),
            sg_event("open", "another-customer", at=inside),
        ],
    )

    measured = activity_env.run(
        MeasureActivities(database).measure_weekly_usage,
        MeasureWeeklyUsageInput(
            customer_id=cid,
            week_index=1,
            window_start=WEEK_START,
            window_end=WEEK_START + timedelta(days=7),
            seats_contracted=10,
        ),
    )

    assert (measured.email_opens, measured.email_clicks) == (3, 1)
