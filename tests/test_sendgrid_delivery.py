"""send_email through the real `sendgrid` client, against a loopback SendGrid."""

from __future__ import annotations

import logging
import socket
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from python_http_client.exceptions import BadRequestsError
from sendgrid import SendGridAPIClient
from sqlmodel import select
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.mail import MailActivities
from emails.mailers import MAIL_REFUSED, MAIL_UNAVAILABLE, MAX_RETRY_AFTER, SendGridMailer
from emails.render import OutgoingEmail, RenderedEmail
from models.activity_io import SendEmailInput
from models.tables import EmailLedgerEntry
from records.database import Database
from testkit.factories import SENDER, make_handoff, make_mail_activities
from testkit.sendgrid import TEST_API_KEY, SendGridServer
from tests.support.mail import WORKFLOW_CONTEXTS
from tests.support.sendgrid import ledger as ledger_rows
from tests.support.workflow_harness import running_harness
from workflows.activity_options import MAIL_RETRY

UNSUBSCRIBE_URL = "https://liftoff.example/unsubscribe?customer={customer_id}&email={recipient}"
UNSUBSCRIBE_MAILTO = "unsubscribe@liftoff.example"

REQUEST = SendEmailInput(
    ledger_key="failed:acme",
    customer_id="acme",
    template="onboarding_failed",
    to=["lead@liftoff.example"],
    context=WORKFLOW_CONTEXTS["onboarding_failed"],
)


def sendgrid_mail(database: Database, server: SendGridServer, **options: Any) -> MailActivities:
    mailer = SendGridMailer(
        SecretStr(server.api_key),
        host=server.url,
        unsubscribe_url=UNSUBSCRIBE_URL,
        unsubscribe_mailto=UNSUBSCRIBE_MAILTO,
        **options,
    )
    return make_mail_activities(database, mailer)


@pytest.fixture
def mail(sqlite_database: Database, sendgrid_server: SendGridServer) -> MailActivities:
    return sendgrid_mail(sqlite_database, sendgrid_server)


@pytest.fixture
def activity_env() -> ActivityEnvironment:
    return ActivityEnvironment()


# Longer than MAIL_RETRY's backoff between its first attempt and its last (10.5 minutes).
EVERY_MAIL_RETRY = timedelta(minutes=15)


def as_attempt(attempt: int) -> ActivityEnvironment:
    """Runs an activity as this attempt of MAIL_RETRY, as the worker would."""
    environment = ActivityEnvironment()
    environment.info = replace(environment.info, attempt=attempt, retry_policy=MAIL_RETRY)
    return environment


def ledger(database: Database) -> EmailLedgerEntry:
    with database.session() as session:
        [entry] = session.exec(select(EmailLedgerEntry)).all()
    return entry


def test_message_arrives_schema_valid_with_both_parts_custom_args_and_unsubscribe(
    mail: MailActivities,
    sendgrid_server: SendGridServer,
    sqlite_database: Database,
    activity_env: ActivityEnvironment,
) -> None:
    result = activity_env.run(mail.send_email, REQUEST)

    assert result.sent == ["lead@liftoff.example"]
    [body] = sendgrid_server.accepted  # the server 400s any body off SendGrid's schema
    assert body["personalizations"] == [{"to": [{"email": "lead@liftoff.example"}]}]
    assert body["from"] == {"email": "onboarding@liftoff.example", "name": "Liftoff"}
    assert body["subject"] == "[Liftoff] Onboarding failed: Acme Logistics"
    assert [part["type"] for part in body["content"]] == ["text/plain", "text/html"]
    assert "Deadline of 120 days passed" in body["content"][0]["value"]
    assert "<html" in body["content"][1]["value"]
    # What the event webhook needs to match events to the customer and step.
    assert body["custom_args"] == {"customer_id": "acme", "ledger_key": "failed:acme"}
    assert body["headers"] == {
        "List-Unsubscribe": "<mailto:unsubscribe@liftoff.example>, "
        "<https://liftoff.example/unsubscribe?customer=acme&email=lead%40liftoff.example>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert "mail_settings" not in body
    entry = ledger(sqlite_database)
    assert entry.status == "sent"
    assert entry.message_id == sendgrid_server.message_ids[0]


def test_the_loopback_server_rejects_a_body_off_the_schema(
    sendgrid_server: SendGridServer,
) -> None:
    """The schema check can fail, so the test above proves something."""
    client = SendGridAPIClient(TEST_API_KEY, host=sendgrid_server.url)
    body = {
        "personalizations": [{"to": [{"email": "lead@liftoff.example"}]}],
        "from": {"email": "onboarding@liftoff.example"},
        "custom_args": {"customer_id": 17},
    }
    with pytest.raises(BadRequestsError) as refused:
        client.send(body)
    assert b"custom_args.customer_id" in refused.value.body
    assert sendgrid_server.accepted == []


def test_an_expected_provider_failure_logs_one_warning_line_and_no_stack_trace(
    mail: MailActivities,
    sendgrid_server: SendGridServer,
    activity_env: ActivityEnvironment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sendgrid_server.answer_next(429, "slow down")
    caplog.set_level(logging.WARNING)

    with pytest.raises(ApplicationError) as failure:
        activity_env.run(mail.send_email, REQUEST)

    # The worker logs a BENIGN activity failure at DEBUG, without its traceback.
    assert failure.value.category is ApplicationErrorCategory.BENIGN
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.exc_info) for r in warnings] == [("liftoff.mail", None)]
    assert "SendGrid unavailable, will retry" in warnings[0].getMessage()
    assert "429 slow down" in warnings[0].getMessage()


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limit_and_outage_are_retried_and_delivered_exactly_once(
    status: int,
    mail: MailActivities,
    sendgrid_server: SendGridServer,
    sqlite_database: Database,
    activity_env: ActivityEnvironment,
) -> None:
    sendgrid_server.answer_next(status, "try again later")

    with pytest.raises(ApplicationError) as failure:
        activity_env.run(mail.send_email, REQUEST)
    assert not failure.value.non_retryable
    assert failure.value.type == MAIL_UNAVAILABLE
    assert f"{status} try again later" in str(failure.value)
    assert ledger(sqlite_database).status == "sending"

    retried = activity_env.run(mail.send_email, REQUEST)
    again = activity_env.run(mail.send_email, REQUEST)

    assert retried.sent == ["lead@liftoff.example"]
    assert again.already_sent == ["lead@liftoff.example"]
    assert len(sendgrid_server.accepted) == 1
    assert sendgrid_server.requests == 2
    assert ledger(sqlite_database).status == "sent"


async def test_an_outage_past_every_retry_ends_failed_on_the_ledger_and_the_timeline(
    env: WorkflowEnvironment,
    task_queue: str,
    sqlite_database: Database,
    sendgrid_server: SendGridServer,
    tmp_path: Path,
) -> None:
    sendgrid_server.answer_always(500, "internal error")
    mailer = SendGridMailer(SecretStr(sendgrid_server.api_key), host=sendgrid_server.url)
    handoff = make_handoff()
    async with running_harness(
        env, env.client, task_queue, sqlite_database, tmp_path / "outbox", mailer=mailer
    ) as h:
        # The kickoff task's email to the CSM goes out first, and fails every attempt.
        handle = await h.start(handoff, settle=False)
        await env.sleep(EVERY_MAIL_RETRY)
        status = await h.wait_for(handle, lambda s: bool(s.state.failures))
        timeline = h.timeline(handoff.customer_id)

    [row] = ledger_rows(sqlite_database).values()
    assert (row.recipient, row.status) == (handoff.csm, "failed")
    assert row.error is not None
    assert f"gave up after {MAIL_RETRY.maximum_attempts} attempts" in row.error
    assert "500 internal error" in row.error
    [failed] = [entry for entry in timeline if entry.kind == "email_failed"]
    assert "500 internal error" in failed.summary
    assert len(status.state.failures) == 1
    # One request per attempt, and none accepted: nothing went out, let alone twice.
    assert sendgrid_server.requests == MAIL_RETRY.maximum_attempts
    assert sendgrid_server.accepted == []


def test_the_last_attempt_tries_every_recipient_once_and_marks_each_failed(
    mail: MailActivities, sendgrid_server: SendGridServer, sqlite_database: Database
) -> None:
    sendgrid_server.answer_always(503, "down for maintenance")
    request = REQUEST.model_copy(update={"to": ["lead@liftoff.example", "csm@liftoff.example"]})
    first, last = (as_attempt(n) for n in (1, MAIL_RETRY.maximum_attempts))

    with pytest.raises(ApplicationError) as retried:
        first.run(mail.send_email, request)
    # Before the last attempt, the first failure asks for the retry at once.
    assert not retried.value.non_retryable
    assert sendgrid_server.requests == 1
    assert {row.status for row in ledger_rows(sqlite_database).values()} == {"sending"}

    with pytest.raises(ApplicationError) as gave_up:
        last.run(mail.send_email, request)

    assert gave_up.value.type == MAIL_UNAVAILABLE
    assert "2 of 2 recipients failed" in gave_up.value.message
    assert sendgrid_server.requests == 3
    rows = ledger_rows(sqlite_database).values()
    assert {(row.recipient, row.status) for row in rows} == {
        ("lead@liftoff.example", "failed"),
        ("csm@liftoff.example", "failed"),
    }
    assert all(row.error and "503 down for maintenance" in row.error for row in rows)


def test_a_last_attempt_left_unanswered_says_the_provider_may_have_taken_it(
    mail: MailActivities, sendgrid_server: SendGridServer, sqlite_database: Database
) -> None:
    """A "failed" row is read as "not sent": after a dropped connection it may have
    been, and a person resending it by hand would send a second copy."""
    sendgrid_server.drop_after_accept_next()
    with pytest.raises(ApplicationError):
        as_attempt(MAIL_RETRY.maximum_attempts).run(mail.send_email, REQUEST)
    [row] = ledger_rows(sqlite_database).values()
    assert row.status == "failed"
    assert row.error is not None
    assert row.error.startswith(
        f"gave up after {MAIL_RETRY.maximum_attempts} attempts; the provider may have taken it: "
    )


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "30"}, timedelta(seconds=30)),
        ({"Retry-After": "86400"}, MAX_RETRY_AFTER),
        ({}, None),
    ],
)
def test_a_rate_limit_asks_temporal_to_wait_as_long_as_sendgrid_said(
    headers: dict[str, str],
    wait: timedelta | None,
    mail: MailActivities,
    sendgrid_server: SendGridServer,
    activity_env: ActivityEnvironment,
) -> None:
    sendgrid_server.answer_next(429, "too many requests", headers)

    with pytest.raises(ApplicationError) as failure:
        activity_env.run(mail.send_email, REQUEST)
    assert not failure.value.non_retryable
    # None leaves the pause to the activity's retry policy.
    assert failure.value.next_retry_delay == wait


def test_refusal_is_permanent_recorded_with_the_providers_message_and_never_resent(
    mail: MailActivities,
    sendgrid_server: SendGridServer,
    sqlite_database: Database,
    activity_env: ActivityEnvironment,
) -> None:
    refusal = "The from address does not match a verified Sender Identity."
    sendgrid_server.answer_next(400, refusal)

    with pytest.raises(ApplicationError) as failure:
        activity_env.run(mail.send_email, REQUEST)
    assert failure.value.non_retryable
    assert failure.value.type == MAIL_REFUSED
    assert failure.value.message == f"SendGrid refused the message: 400 {refusal}"
    entry = ledger(sqlite_database)
    assert entry.status == "failed"
    assert entry.error is not None and refusal in entry.error

    with pytest.raises(ApplicationError) as again:
        activity_env.run(mail.send_email, REQUEST)
    assert again.value.non_retryable
    assert sendgrid_server.requests == 1
    assert sendgrid_server.accepted == []


def test_a_stalled_api_times_out_as_retryable(
    sqlite_database: Database, sendgrid_server: SendGridServer, activity_env: ActivityEnvironment
) -> None:
    mail = sendgrid_mail(sqlite_database, sendgrid_server, timeout=0.2)
    sendgrid_server.stall_next(1.0)

    with pytest.raises(ApplicationError) as failure:
        activity_env.run(mail.send_email, REQUEST)

    assert not failure.value.non_retryable
    assert failure.value.type == MAIL_UNAVAILABLE


def test_an_unreachable_api_is_retryable(
    sqlite_database: Database, activity_env: ActivityEnvironment
) -> None:
    with socket.socket() as closed:  # a port nobody listens on once this block ends
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    mailer = SendGridMailer(SecretStr(TEST_API_KEY), host=f"http://127.0.0.1:{port}")
    mail = make_mail_activities(sqlite_database, mailer)

    with pytest.raises(ApplicationError) as failure:
        activity_env.run(mail.send_email, REQUEST)

    assert not failure.value.non_retryable
    assert "SendGrid unavailable" in str(failure.value)


def test_the_api_key_appears_in_no_log_record_error_or_repr(
    sqlite_database: Database,
    sendgrid_server: SendGridServer,
    activity_env: ActivityEnvironment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # python_http_client logs request headers at DEBUG
    mail = sendgrid_mail(sqlite_database, sendgrid_server)
    sendgrid_server.answer_next(500)
    with pytest.raises(ApplicationError) as outage:
        activity_env.run(mail.send_email, REQUEST)
    activity_env.run(mail.send_email, REQUEST)
    wrong_key = SendGridMailer(SecretStr(TEST_API_KEY + "-revoked"), host=sendgrid_server.url)
    with pytest.raises(ApplicationError) as unauthorized:
        wrong_key.send(composed_message())

    assert any("Bearer [redacted]" in record.getMessage() for record in caplog.records)
    # The request body (recipients, the message, its signed links) is not logged either.
    assert any("PAYLOAD: [" in record.getMessage() for record in caplog.records)
    assert not [r for r in caplog.records if "lead@liftoff.example" in r.getMessage()]
    texts = [record.getMessage() for record in caplog.records]
    texts += [str(outage.value), repr(outage.value), str(unauthorized.value), repr(wrong_key)]
    texts.append(ledger(sqlite_database).error or "")
    assert "401" in str(unauthorized.value)
    assert not [text for text in texts if TEST_API_KEY in text]


def composed_message() -> OutgoingEmail:
    """What MailActivities hands a mailer, for calling one directly."""
    return OutgoingEmail(
        sender=SENDER,
        recipient="lead@liftoff.example",
        rendered=RenderedEmail("Hello", "Hello.\n", "<p>Hello.</p>\n"),
        message_id="<hello@liftoff.example>",
        headers={"X-Liftoff-Customer": "acme", "X-Liftoff-Ledger-Key": "hello"},
    )


def test_sandbox_mode_asks_sendgrid_to_validate_without_delivering(
    sqlite_database: Database, sendgrid_server: SendGridServer, activity_env: ActivityEnvironment
) -> None:
    mail = sendgrid_mail(sqlite_database, sendgrid_server, sandbox_mode=True)

    result = activity_env.run(mail.send_email, REQUEST)

    [body] = sendgrid_server.accepted
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert result.sent == ["lead@liftoff.example"]
    # Sandbox answers carry no provider id: the ledger keeps our Message-ID.
    assert (ledger(sqlite_database).message_id or "").startswith("<")
