"""Scheduled sends close the ledger's one window: SendGrid took the message, the
worker never heard. The loopback SendGrid accepts a message and drops the
connection unanswered, as a crash right after the hand-over would; the retry
then finds the row "sending" with a batch, cancels that batch and sends again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import timedelta

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import update
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.mail import MailActivities
from emails.mailers import SENDGRID_MIN_SEND_DELAY, SendGridMailer
from models.activity_io import SendEmailInput
from models.handoff import Contact, Role
from models.tables import EmailLedgerEntry, WithdrawnBatch, utc_now
from records.database import Database
from settings import Settings
from testkit.factories import make_handoff, make_mail_activities, store_customer
from testkit.sendgrid import SendGridServer
from tests.support.mail import WORKFLOW_CONTEXTS
from workflows.activity_options import MAIL_RETRY, MAIL_TIMEOUT

DELAY = timedelta(minutes=15)

REQUEST = SendEmailInput(
    ledger_key="failed:acme",
    customer_id="acme",
    template="onboarding_failed",
    to=["lead@liftoff.example"],
    context=WORKFLOW_CONTEXTS["onboarding_failed"],
)


def mail_through(
    database: Database, server: SendGridServer, send_delay: timedelta | None = DELAY
) -> MailActivities:
    mailer = SendGridMailer(SecretStr(server.api_key), host=server.url, send_delay=send_delay)
    return make_mail_activities(database, mailer)


def copies(server: SendGridServer) -> Counter[tuple[str, str]]:
    """Messages recipients get, by (ledger key, recipient)."""
    return Counter(
        (body["custom_args"]["ledger_key"], body["personalizations"][0]["to"][0]["email"])
        for body in server.delivered
    )


def rows(database: Database) -> list[EmailLedgerEntry]:
    with database.session() as session:
        return list(session.exec(select(EmailLedgerEntry)).all())


def crash_after_hand_over(mail: MailActivities, server: SendGridServer) -> None:
    """SendGrid accepts the message; the worker never learns it did."""
    server.drop_after_accept_next()
    with pytest.raises(ApplicationError) as failure:
        ActivityEnvironment().run(mail.send_email, REQUEST)
    assert not failure.value.non_retryable


def test_each_message_is_scheduled_under_a_batch_written_down_before_it_leaves(
    database: Database, sendgrid_server: SendGridServer
) -> None:
    mail = mail_through(database, sendgrid_server)
    before = time.time()
    result = ActivityEnvironment().run(mail.send_email, REQUEST)

    assert result.sent == ["lead@liftoff.example"]
    [body] = sendgrid_server.accepted
    assert body["batch_id"] in sendgrid_server.batches
    assert before + DELAY.total_seconds() - 5 <= body["send_at"] <= time.time() + 900
    [row] = rows(database)
    assert (row.status, row.batch_id) == ("sent", body["batch_id"])
    assert row.send_at is not None and int(row.send_at.timestamp()) == body["send_at"]


def test_a_retry_after_the_hand_over_cancels_the_first_copy_so_one_arrives(
    database: Database, sendgrid_server: SendGridServer
) -> None:
    mail = mail_through(database, sendgrid_server)
    crash_after_hand_over(mail, sendgrid_server)
    [first] = sendgrid_server.accepted
    [row] = rows(database)
    assert (row.status, row.batch_id) == ("sending", first["batch_id"])

    retried = ActivityEnvironment().run(mail.send_email, REQUEST)

    assert retried.sent == ["lead@liftoff.example"]
    assert len(sendgrid_server.accepted) == 2
    assert sendgrid_server.cancelled == {first["batch_id"]}
    assert copies(sendgrid_server) == {("failed:acme", "lead@liftoff.example"): 1}
    [row] = rows(database)
    assert row.status == "sent"
    assert row.batch_id == sendgrid_server.accepted[1]["batch_id"] != first["batch_id"]
    with database.session() as session:
        [withdrawn] = session.exec(select(WithdrawnBatch)).all()
    assert (withdrawn.batch_id, withdrawn.forgotten_at) == (first["batch_id"], None)


def test_without_scheduling_the_same_crash_sends_a_second_copy(
    sqlite_database: Database, sendgrid_server: SendGridServer
) -> None:
    """The window the setting closes: this is what happens with it off."""
    mail = mail_through(sqlite_database, sendgrid_server, send_delay=None)
    crash_after_hand_over(mail, sendgrid_server)
    ActivityEnvironment().run(mail.send_email, REQUEST)
    assert copies(sendgrid_server) == {("failed:acme", "lead@liftoff.example"): 2}
    assert "batch_id" not in sendgrid_server.accepted[0]


def test_a_cancel_that_went_through_before_a_second_crash_is_not_refused(
    sqlite_database: Database, sendgrid_server: SendGridServer
) -> None:
    mail = mail_through(sqlite_database, sendgrid_server)
    crash_after_hand_over(mail, sendgrid_server)
    [first] = sendgrid_server.accepted
    # The next attempt cancelled the batch, then died before opening a new one.
    mailer = SendGridMailer(
        SecretStr(sendgrid_server.api_key), host=sendgrid_server.url, send_delay=DELAY
    )
    mailer.withdraw(first["batch_id"])

    ActivityEnvironment().run(mail.send_email, REQUEST)

    assert copies(sendgrid_server) == {("failed:acme", "lead@liftoff.example"): 1}


def test_too_late_to_cancel_sends_again_and_says_so(
    sqlite_database: Database,
    sendgrid_server: SendGridServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every worker was down until the batch was within SendGrid's 10 minutes: the
    message is sent again (a lost email is worse), and a warning names it."""
    mail = mail_through(sqlite_database, sendgrid_server)
    crash_after_hand_over(mail, sendgrid_server)
    with sqlite_database.session() as session:
        session.exec(update(EmailLedgerEntry).values(send_at=utc_now() + timedelta(minutes=5)))

    with caplog.at_level(logging.WARNING, logger="liftoff.mail"):
        ActivityEnvironment().run(mail.send_email, REQUEST)

    assert sendgrid_server.cancelled == set()
    assert len(sendgrid_server.accepted) == 2
    [warning] = [r for r in caplog.records if "too late" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "failed:acme" in warning.getMessage()


def test_cancellations_past_their_send_time_are_forgotten_to_free_sendgrids_slots(
    database: Database, sendgrid_server: SendGridServer
) -> None:
    mail = mail_through(database, sendgrid_server)
    crash_after_hand_over(mail, sendgrid_server)
    ActivityEnvironment().run(mail.send_email, REQUEST)
    [withdrawn] = sendgrid_server.cancellations
    # Its send time passes; the next withdrawal forgets it first.
    with database.session() as session:
        session.exec(update(WithdrawnBatch).values(send_at=utc_now() - timedelta(minutes=1)))
    other = REQUEST.model_copy(update={"ledger_key": "failed:acme:again"})
    sendgrid_server.drop_after_accept_next()
    with pytest.raises(ApplicationError):
        ActivityEnvironment().run(mail.send_email, other)
    ActivityEnvironment().run(mail.send_email, other)

    assert withdrawn not in sendgrid_server.cancellations
    assert len(sendgrid_server.cancellations) == 1
    with database.session() as session:
        forgotten = session.get(WithdrawnBatch, withdrawn)
    assert forgotten is not None and forgotten.forgotten_at is not None


def test_a_role_send_withdraws_only_the_recipient_whose_copy_may_be_out(
    sqlite_database: Database, sendgrid_server: SendGridServer
) -> None:
    handoff = make_handoff(
        contacts=[
            Contact(email="ann@acme.example", name="Ann Admin", role=Role.ADMINISTRATOR),
            Contact(email="bob@acme.example", name="Bob Admin", role=Role.ADMINISTRATOR),
        ]
    )
    store_customer(sqlite_database, handoff)
    request = SendEmailInput(
        ledger_key="campaign:A:setup:administrator",
        customer_id=handoff.customer_id,
        template="onboarding_failed",
        to_role=Role.ADMINISTRATOR,
        context=WORKFLOW_CONTEXTS["onboarding_failed"],
    )
    mail = mail_through(sqlite_database, sendgrid_server)
    # Ann's copy is taken and the worker dies before Bob's.
    sendgrid_server.drop_after_accept_next()
    with pytest.raises(ApplicationError):
        ActivityEnvironment().run(mail.send_email, request)

    ActivityEnvironment().run(mail.send_email, request)

    assert copies(sendgrid_server) == {
        ("campaign:A:setup:administrator", "ann@acme.example"): 1,
        ("campaign:A:setup:administrator", "bob@acme.example"): 1,
    }
    assert len(sendgrid_server.cancelled) == 1


@pytest.mark.parametrize(
    ("environment", "refusal"),
    [
        (
            {"LIFTOFF_SENDGRID_SEND_DELAY_MINUTES": "15"},
            "LIFTOFF_SENDGRID_SEND_DELAY_MINUTES schedules SendGrid sends; "
            "it has no effect with LIFTOFF_MAIL_BACKEND=outbox",
        ),
        (
            {
                "LIFTOFF_MAIL_BACKEND": "sendgrid",
                "SENDGRID_API_KEY": "key",
                "LIFTOFF_SENDGRID_SEND_DELAY_MINUTES": "14",
            },
            "greater than or equal to 15",
        ),
    ],
)
def test_the_setting_is_refused_where_it_cannot_work(
    environment: dict[str, str], refusal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as failure:
        Settings()
    assert refusal in str(failure.value)


def test_a_mailer_refuses_a_delay_sendgrid_could_not_cancel_in() -> None:
    with pytest.raises(ValueError, match="at least 15 minutes"):
        SendGridMailer(SecretStr("key"), send_delay=timedelta(minutes=14))


def a_past_withdrawal(database: Database, mail: MailActivities, server: SendGridServer) -> str:
    """A cancelled batch whose send time has passed: the next withdrawal forgets it."""
    crash_after_hand_over(mail, server)
    ActivityEnvironment().run(mail.send_email, REQUEST)
    [withdrawn] = server.cancellations
    with database.session() as session:
        session.exec(update(WithdrawnBatch).values(send_at=utc_now() - timedelta(minutes=1)))
    return withdrawn


def forgotten_at(database: Database, batch_id: str) -> object:
    with database.session() as session:
        withdrawn = session.get(WithdrawnBatch, batch_id)
    assert withdrawn is not None
    return withdrawn.forgotten_at


def test_a_cancellation_another_send_forgot_first_counts_as_forgotten(
    database: Database, sendgrid_server: SendGridServer
) -> None:
    """Two sends forgetting the same batch at once: the second DELETE finds it gone (404)."""
    mail = mail_through(database, sendgrid_server)
    withdrawn = a_past_withdrawal(database, mail, sendgrid_server)
    del sendgrid_server.cancellations[withdrawn]  # the other send's DELETE
    other = REQUEST.model_copy(update={"ledger_key": "failed:acme:again"})
    sendgrid_server.drop_after_accept_next()
    with pytest.raises(ApplicationError):
        ActivityEnvironment().run(mail.send_email, other)

    retried = ActivityEnvironment().run(mail.send_email, other)

    assert retried.sent == ["lead@liftoff.example"]
    assert copies(sendgrid_server)[("failed:acme:again", "lead@liftoff.example")] == 1
    assert {row.ledger_key: row.status for row in rows(database)}["failed:acme:again"] == "sent"
    assert forgotten_at(database, withdrawn) is not None


def test_a_cleanup_that_fails_is_logged_and_the_send_goes_on(
    database: Database, sendgrid_server: SendGridServer, caplog: pytest.LogCaptureFixture
) -> None:
    mail = mail_through(database, sendgrid_server)
    withdrawn = a_past_withdrawal(database, mail, sendgrid_server)
    other = REQUEST.model_copy(update={"ledger_key": "failed:acme:again"})
    sendgrid_server.drop_after_accept_next()
    with pytest.raises(ApplicationError):
        ActivityEnvironment().run(mail.send_email, other)
    sendgrid_server.answer_scheduled_sends_next("DELETE", 500)

    with caplog.at_level(logging.WARNING, logger="liftoff.mail"):
        retried = ActivityEnvironment().run(mail.send_email, other)

    assert retried.sent == ["lead@liftoff.example"]
    assert copies(sendgrid_server)[("failed:acme:again", "lead@liftoff.example")] == 1
    # Still held there: a later send forgets it.
    assert withdrawn in sendgrid_server.cancellations
    assert forgotten_at(database, withdrawn) is None
    [warning] = [r for r in caplog.records if "could not forget" in r.getMessage()]
    assert withdrawn in warning.getMessage() and sendgrid_server.api_key not in caplog.text


@pytest.mark.parametrize("status", [500, 429])
def test_a_send_the_provider_refused_leaves_no_batch_to_cancel(
    database: Database, sendgrid_server: SendGridServer, status: int
) -> None:
    """SendGrid answered the send with an error: nothing was scheduled under its batch,
    so the retry takes none of SendGrid's 10 cancellation slots for it."""
    mail = mail_through(database, sendgrid_server)
    sendgrid_server.answer_next(status)
    with pytest.raises(ApplicationError) as failure:
        ActivityEnvironment().run(mail.send_email, REQUEST)
    assert not failure.value.non_retryable
    [row] = rows(database)
    assert (row.status, row.batch_id, row.send_at) == ("sending", None, None)

    retried = ActivityEnvironment().run(mail.send_email, REQUEST)

    assert retried.sent == ["lead@liftoff.example"]
    assert sendgrid_server.cancelled == set() and sendgrid_server.cancellations == {}
    assert copies(sendgrid_server) == {("failed:acme", "lead@liftoff.example"): 1}
    with database.session() as session:
        assert session.exec(select(WithdrawnBatch)).all() == []


def test_with_sendgrids_cancellation_slots_full_a_retry_fails_visibly_and_sends_nothing_again(
    database: Database, sendgrid_server: SendGridServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Sending again without cancelling could deliver two copies, and retrying until a
    slot frees could end past the cancel window and do the same: the send fails for good,
    saying so on the row, in the log and (non-retryable) on the timeline."""
    mailer = SendGridMailer(
        SecretStr(sendgrid_server.api_key), host=sendgrid_server.url, send_delay=DELAY
    )
    for _ in range(10):
        mailer.withdraw(mailer.open_batch())
    mail = mail_through(database, sendgrid_server)
    crash_after_hand_over(mail, sendgrid_server)
    [first] = sendgrid_server.accepted

    with caplog.at_level(logging.WARNING, logger="liftoff.mail"):
        with pytest.raises(ApplicationError) as failure:
            ActivityEnvironment().run(mail.send_email, REQUEST)

    assert failure.value.non_retryable
    assert "max limit reached" in failure.value.message
    assert first["batch_id"] in failure.value.message
    [row] = rows(database)
    assert row.status == "failed"
    assert row.error is not None and "not sent again" in row.error
    assert "will retry" not in row.error
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "failed:acme" in error.getMessage() and "max limit reached" in error.getMessage()
    # Whatever retries come, no second copy.
    with pytest.raises(ApplicationError):
        ActivityEnvironment().run(mail.send_email, REQUEST)
    assert sendgrid_server.accepted == [first]


def longest_retry_interval() -> timedelta:
    initial = MAIL_RETRY.initial_interval or timedelta(seconds=1)
    attempts = MAIL_RETRY.maximum_attempts or 100
    longest = initial * MAIL_RETRY.backoff_coefficient ** max(attempts - 2, 0)
    return min(longest, MAIL_RETRY.maximum_interval or longest)


def test_a_retry_after_a_crash_at_any_attempt_still_cancels_at_the_shortest_delay(
    sqlite_database: Database, sendgrid_server: SendGridServer
) -> None:
    """The crashed attempt times out, the retry policy waits its longest, the retry
    spends a minute (cleanup, a slow database): still inside SendGrid's cancel window."""
    mail = mail_through(sqlite_database, sendgrid_server, send_delay=SENDGRID_MIN_SEND_DELAY)
    crash_after_hand_over(mail, sendgrid_server)
    [first] = sendgrid_server.accepted
    elapsed = MAIL_TIMEOUT + longest_retry_interval() + timedelta(minutes=1)
    # As if that long had passed: the row's and SendGrid's send time come that much closer.
    first["send_at"] -= int(elapsed.total_seconds())
    [row] = rows(sqlite_database)
    assert row.send_at is not None
    with sqlite_database.session() as session:
        session.exec(update(EmailLedgerEntry).values(send_at=row.send_at - elapsed))

    ActivityEnvironment().run(mail.send_email, REQUEST)

    assert sendgrid_server.cancelled == {first["batch_id"]}
    assert copies(sendgrid_server) == {("failed:acme", "lead@liftoff.example"): 1}


def test_a_cancel_sendgrid_rate_limits_is_retried_inside_the_cancel_window(
    sqlite_database: Database, sendgrid_server: SendGridServer
) -> None:
    """A 429 asking for 15 minutes would bring the retry past the batch's cancel window."""
    mail = mail_through(sqlite_database, sendgrid_server, send_delay=SENDGRID_MIN_SEND_DELAY)
    crash_after_hand_over(mail, sendgrid_server)
    sendgrid_server.answer_scheduled_sends_next("POST", 429, headers={"Retry-After": "900"})
    sendgrid_server.answer_scheduled_sends_next("GET", 429, headers={"Retry-After": "900"})

    with pytest.raises(ApplicationError) as failure:
        ActivityEnvironment().run(mail.send_email, REQUEST)

    assert not failure.value.non_retryable
    # No longer than the retry policy's own longest wait, which fits the window.
    wait = failure.value.next_retry_delay
    assert wait is not None and MAIL_RETRY.maximum_interval is not None
    assert wait <= MAIL_RETRY.maximum_interval
    [row] = rows(sqlite_database)
    assert row.batch_id == sendgrid_server.accepted[0]["batch_id"]  # still to cancel
