"""Email: templates rendered per locale, sent at most once per step and recipient.

The email ledger holds one row per (customer, ledger key, recipient). A retried
send_email skips every recipient whose row says "sent", and does not ask the
provider again for one whose row says "failed" (refused for good, or given up on).

A send the provider keeps failing (an outage, a timeout) is retried under the retry
policy (MAIL_RETRY). Its last attempt tries each recipient still unsent once and marks
every one it fails "failed" with the reason: nothing tries again, so the row must not
say "sending" forever.

The one window the ledger alone cannot close: the provider accepted a message
and the worker crashed (or the database failed) before the row was marked
"sent". The row still says "sending", so the retry sends again; the workflow
sends a customer's emails one at a time, so that is at most one message.

With scheduled sends on (SendGrid only, `LIFTOFF_SENDGRID_SEND_DELAY_MINUTES`)
the window is closed: each attempt opens a batch, writes its id and send time on
the row *before* handing the message over, and schedules it that far ahead. A
retry that finds a batch on a "sending" row cancels it first (the crashed
attempt's copy, if SendGrid took it, is discarded at its send time) and sends
again under a new batch. A send SendGrid answered with an error (a 5xx, a 429)
scheduled nothing: its batch is taken off the row, so the retry cancels nothing
and keeps SendGrid's 10 cancellation slots for crashes. A retry that finds all 10
held fails for good ("failed", an ERROR line, email_failed on the timeline)
rather than send again beside a copy it could not cancel. SendGrid cancels only
until 10 minutes before send_at: with the shortest delay (15 minutes) and
MAIL_RETRY (a retry within 3 minutes of a crash) a running worker always cancels
in time; a retry later than that (every worker down that long) sends again and
says so.

A recipient who left the email's category (records/email_opt_outs.py, read at send
time) is not sent to: the row says "opted_out" and the result names them, so the
workflow's timeline says so. Each message that can be left carries its signed
unsubscribe link (emails/opt_out_links.py); operational mail is never skipped.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.utils import make_msgid, parseaddr

import jinja2
import jinja2.meta
from sqlalchemy import bindparam, update
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

import observability.metrics as metrics
from emails.mailers import (
    CANCELLATIONS_FULL,
    CATEGORY_HEADER,
    CUSTOMER_HEADER,
    LEDGER_KEY_HEADER,
    MAIL_REFUSED,
    MAIL_UNAVAILABLE,
    PROVIDER_MESSAGE_CHARS,
    SENDGRID_CANCEL_CUTOFF,
    Mailer,
    SchedulingMailer,
    provider_answered,
)
from emails.opt_out_links import OptOutLinks
from emails.render import OutgoingEmail, RenderedEmail, render_email
from emails.survey_links import SurveyLinks, with_score_links
from models.activity_io import SendEmailInput, SendEmailResult
from models.tables import CustomerContact, EmailLedgerEntry, WithdrawnBatch, utc_now
from records.database import Database, insert_ignore
from records.email_opt_outs import opted_out_among
from workflows.activity_options import MAIL_RETRY

log = logging.getLogger("liftoff.mail")

# Cancellations forgotten per send at most: SendGrid holds 10, so a few suffice.
FORGET_PER_SEND = 10
# The ledger status of a recipient left out because they left the email's category.
OPTED_OUT = "opted_out"

# The statements of every send, built once with their values bound at each run: building
# and keying them cost more than the database's answering (a send to two: 6.0 -> 3.0 ms CPU).
_SUBSCRIBED_IN_ROLE = (
    select(CustomerContact.email)
    .where(col(CustomerContact.customer_id) == bindparam("customer_id"))
    .where(col(CustomerContact.role) == bindparam("role"))
    .where(col(CustomerContact.unsubscribed).is_(False))
    .order_by(col(CustomerContact.email))
)
_LEDGER_ROWS = (
    select(EmailLedgerEntry)
    .where(col(EmailLedgerEntry.customer_id) == bindparam("customer_id"))
    .where(col(EmailLedgerEntry.ledger_key) == bindparam("ledger_key"))
    .where(col(EmailLedgerEntry.recipient).in_(bindparam("recipients", expanding=True)))
)
# The values to set come with each run's parameters (status, error, message_id...).
_MARK = (
    update(EmailLedgerEntry)
    .where(col(EmailLedgerEntry.customer_id) == bindparam("row_customer_id"))
    .where(col(EmailLedgerEntry.ledger_key) == bindparam("row_ledger_key"))
    .where(col(EmailLedgerEntry.recipient) == bindparam("row_recipient"))
)


class MailActivities:
    def __init__(
        self,
        database: Database,
        mailer: Mailer | None,
        templates: jinja2.Environment,
        sender: str,
        survey_links: SurveyLinks | None = None,
        opt_out_links: OptOutLinks | None = None,
    ) -> None:
        self._database = database
        # Signs each message's unsubscribe link; None: messages go without one.
        self._opt_out_links = opt_out_links
        # Signs a survey email's score links per recipient; None: surveys fail visibly.
        self._survey_links = survey_links
        # None: each email is rendered (a template that cannot render still fails the
        # send) and kept on the ledger, and goes nowhere. The simulator's mailer: its
        # mail is counted, never read, and composing and writing a MIME message per
        # email was a fifth of a simulation's CPU.
        self._mailer = mailer
        self._templates = templates
        self._sender = sender
        # Message ids in the sender's domain, as providers and spam filters expect.
        self._id_domain = parseaddr(sender)[1].rpartition("@")[2] or "liftoff.local"
        # The metrics' provider label: "outbox", "sendgrid", "smtp", or a test mailer's class.
        self._provider = (
            "none" if mailer is None else str(getattr(mailer, "provider", type(mailer).__name__))
        )
        self._scheduler = (
            mailer
            if isinstance(mailer, SchedulingMailer) and mailer.send_delay is not None
            else None
        )

    def _recipients(self, session: Session, input: SendEmailInput) -> list[str]:
        if input.to:
            return list(dict.fromkeys(address.strip().lower() for address in input.to))
        if input.to_role is None:
            return []
        emails = session.connection().execute(
            _SUBSCRIBED_IN_ROLE,
            {"customer_id": input.customer_id, "role": input.to_role.value},
        )
        return list(emails.scalars())

    def _claim(
        self, session: Session, input: SendEmailInput, recipients: list[str]
    ) -> dict[str, EmailLedgerEntry]:
        """Each recipient's ledger row, written as "sending" where it was missing."""
        created_at = utc_now()
        insert_ignore(
            session,
            EmailLedgerEntry,
            [
                {
                    "customer_id": input.customer_id,
                    "ledger_key": input.ledger_key,
                    "recipient": recipient,
                    "template": input.template,
                    "status": "sending",
                    "created_at": created_at,
                }
                for recipient in recipients
            ],
            ["customer_id", "ledger_key", "recipient"],
        )
        rows = session.exec(
            _LEDGER_ROWS,
            params={
                "customer_id": input.customer_id,
                "ledger_key": input.ledger_key,
                "recipients": recipients,
            },
        ).all()
        by_recipient = {row.recipient: row for row in rows}
        missing = [recipient for recipient in recipients if recipient not in by_recipient]
        if missing:  # inserted just above, or there already
            raise RuntimeError(f"the ledger rows of {input.ledger_key} for {missing} vanished")
        return by_recipient

    def _mark(self, input: SendEmailInput, recipient: str, **values: object) -> None:
        row = {
            "row_customer_id": input.customer_id,
            "row_ledger_key": input.ledger_key,
            "row_recipient": recipient,
        }
        with self._database.session() as session:
            session.connection().execute(_MARK, {**row, **values})

    def _render(self, input: SendEmailInput, recipient: str) -> RenderedEmail:
        role = input.to_role.value if input.to_role else None
        context = with_score_links(
            self._survey_links, {**input.context, "recipient": recipient}, role, recipient
        )
        return render_email(self._templates, input.template, input.locale, context, role=role)

    def _compose(self, input: SendEmailInput, recipient: str) -> OutgoingEmail:
        headers = {CUSTOMER_HEADER: input.customer_id, LEDGER_KEY_HEADER: input.ledger_key}
        category = input.category
        if category is not None:
            headers[CATEGORY_HEADER] = category.value
            if category.can_opt_out and self._opt_out_links is not None:
                headers |= self._opt_out_links.headers(
                    customer_id=input.customer_id, email=recipient, category=category
                )
        return OutgoingEmail(
            sender=self._sender,
            recipient=recipient,
            rendered=self._render(input, recipient),
            message_id=make_msgid(domain=self._id_domain),
            headers=headers,
        )

    def _opted_out(
        self, session: Session, input: SendEmailInput, recipients: list[str]
    ) -> set[str]:
        """Recipients who left the email's category, read now: a choice made after the
        step was planned still counts."""
        if input.category is None or not input.category.can_opt_out:
            return set()
        return opted_out_among(session, input.customer_id, recipients, input.category)

    @activity.defn
    def send_email(self, input: SendEmailInput) -> SendEmailResult:
        # Who gets it, who left its category and every recipient's ledger row: one
        # transaction before anything is handed over, then one per recipient sent.
        with self._database.session() as session:
            recipients = self._recipients(session, input)
            if recipients:
                left = self._opted_out(session, input, recipients)
                rows = self._claim(session, input, recipients)
        if not recipients:
            role = input.to_role.value if input.to_role else "none"
            self._count("no_recipient")
            return SendEmailResult(
                skipped_reason=f"no recipients: no addresses given and no subscribed {role} contact"
            )
        result = SendEmailResult()
        last_attempt = _is_last_attempt()
        # One recipient failed for good must not keep the others from their email.
        failed: list[tuple[str, Exception]] = []
        for recipient in recipients:
            row = rows[recipient]
            status = row.status
            if status == "sent":
                result.already_sent.append(recipient)
                continue
            if recipient in left and status != "failed":
                scheduler = self._scheduler
                if scheduler is not None and row.batch_id is not None and row.send_at is not None:
                    # An attempt that crashed may have handed the message over: take it back.
                    try:
                        self._withdraw(scheduler, input, recipient, row.batch_id, row.send_at)
                    except ApplicationError as err:
                        if err.type != CANCELLATIONS_FULL:
                            raise  # logged by _withdraw; nothing more is sent to them
                # Kept on the ledger; a retry after a resubscribe finds the row unsent.
                self._mark(input, recipient, status=OPTED_OUT)
                self._count(OPTED_OUT)
                result.opted_out.append(recipient)
                continue
            if status == "failed":
                # Refused for good before: asking the provider again would only be refused
                # again, and repeated refusals hurt the sender's reputation.
                earlier = f"{recipient} was refused earlier for {input.ledger_key}; not sent again"
                failed.append(
                    (recipient, ApplicationError(earlier, type=MAIL_REFUSED, non_retryable=True))
                )
                continue
            try:
                # A crash between this send and the "sent" mark below is the window
                # the ledger alone cannot close (see the module docstring).
                message_id = self._hand_over(input, recipient, row)
            except Exception as err:
                # Kept on the row for whoever looks; the retry policy decides what next,
                # and after its last attempt nothing comes: that failure is final too.
                refused_for_good = _refused_for_good(err)
                error = f"{type(err).__name__}: {err}"
                if not refused_for_good and last_attempt:
                    # Unanswered (a timeout, a dropped connection), the provider may have
                    # taken it: whoever reads the row must not resend it blindly.
                    maybe = "" if provider_answered(err) else "; the provider may have taken it"
                    error = f"gave up after {activity.info().attempt} attempts{maybe}: {error}"
                final = refused_for_good or last_attempt
                self._mark(
                    input, recipient, status="failed" if final else "sending", error=error[:2000]
                )
                self._count("refused" if refused_for_good else "unavailable")
                if not final:
                    raise
                failed.append((recipient, err))
                continue
            self._mark(input, recipient, status="sent", message_id=message_id, sent_at=utc_now())
            self._count("sent")
            result.sent.append(recipient)
        if failed:
            raise _failure(failed, len(recipients))
        return result

    def _count(self, result: str) -> None:
        metrics.count(
            metrics.activity_meter(), metrics.EMAILS, {"provider": self._provider, "result": result}
        )

    def _hand_over(
        self, input: SendEmailInput, recipient: str, row: EmailLedgerEntry
    ) -> str | None:
        if self._mailer is None:
            self._render(input, recipient)
            return None
        email = self._compose(input, recipient)
        scheduler = self._scheduler
        if scheduler is None or scheduler.send_delay is None:
            return self._mailer.send(email)
        if row.batch_id is not None and row.send_at is not None:
            self._withdraw(scheduler, input, recipient, row.batch_id, row.send_at)
        batch_id = scheduler.open_batch()
        send_at = utc_now() + scheduler.send_delay
        # Written before the message leaves, so a retry after a crash knows what to cancel.
        self._mark(input, recipient, batch_id=batch_id, send_at=send_at)
        try:
            return scheduler.send_scheduled(email, batch_id, send_at)
        except Exception as err:
            if provider_answered(err):
                # Nothing was scheduled under the batch: cancelling it would only take
                # one of SendGrid's 10 cancellation slots for the whole delay.
                self._mark(input, recipient, batch_id=None, send_at=None)
            raise

    def _withdraw(
        self,
        scheduler: SchedulingMailer,
        input: SendEmailInput,
        recipient: str,
        batch_id: str,
        send_at: datetime,
    ) -> None:
        """Cancel what an earlier attempt may have handed over before sending again."""
        self._forget_past_withdrawals(scheduler)
        if utc_now() >= send_at - SENDGRID_CANCEL_CUTOFF:
            log.warning(
                "too late to cancel batch %s of %s for %s (due %s): sending again, so "
                "the recipient may get two copies",
                batch_id,
                input.ledger_key,
                input.customer_id,
                send_at.isoformat(),
            )
            return
        try:
            scheduler.withdraw(batch_id)
        except ApplicationError as err:
            if err.type != CANCELLATIONS_FULL:
                raise
            # The earlier copy may be out: sending again could deliver two.
            message = (
                f"{input.ledger_key} for {recipient} not sent again: an earlier attempt's copy "
                f"(batch {batch_id}, due {send_at.isoformat()}) may be out and could not be "
                f"cancelled: {err.message}"
            )
            log.error("customer %s: %s", input.customer_id, message)
            raise ApplicationError(message, type=CANCELLATIONS_FULL, non_retryable=True) from None
        log.info(
            "cancelled batch %s of %s for %s: its attempt may have crashed after the hand-over",
            batch_id,
            input.ledger_key,
            input.customer_id,
        )
        with self._database.session() as session:
            insert_ignore(
                session,
                WithdrawnBatch,
                {
                    "batch_id": batch_id,
                    "customer_id": input.customer_id,
                    "ledger_key": input.ledger_key,
                    "recipient": recipient,
                    "send_at": send_at,
                    "withdrawn_at": utc_now(),
                },
                ["batch_id"],
            )

    def _forget_past_withdrawals(self, scheduler: SchedulingMailer) -> None:
        """Free SendGrid's cancellation slots whose batches are past their send time.

        Housekeeping for whichever send comes along: its failure is logged and never
        fails that send; the batch stays listed for the next one."""
        try:
            with self._database.session() as session:
                past = session.exec(
                    select(WithdrawnBatch.batch_id)
                    .where(col(WithdrawnBatch.forgotten_at).is_(None))
                    .where(col(WithdrawnBatch.send_at) < utc_now())
                    .order_by(col(WithdrawnBatch.send_at))
                    .limit(FORGET_PER_SEND)
                ).all()
            for batch_id in past:
                scheduler.forget_withdrawal(batch_id)
                with self._database.session() as session:
                    session.exec(
                        update(WithdrawnBatch)
                        .where(col(WithdrawnBatch.batch_id) == batch_id)
                        .values(forgotten_at=utc_now())
                    )
        except Exception as err:
            # The rest would likely fail the same way: a later send tries again.
            log.warning(
                "could not forget past cancellations, left for a later send: %s: %s",
                type(err).__name__,
                str(err)[:PROVIDER_MESSAGE_CHARS],
            )


def _is_last_attempt() -> bool:
    """Whether the retry policy allows no attempt after this one (0: no limit)."""
    info = activity.info()
    # The server names the policy; the time-skipping test server (and servers older
    # than the field) leave it out, and every send runs under MAIL_RETRY.
    policy = info.retry_policy or MAIL_RETRY
    return 0 < policy.maximum_attempts <= info.attempt


def _refused_for_good(err: Exception) -> bool:
    return isinstance(err, ApplicationError) and err.non_retryable


def _failure(failed: list[tuple[str, Exception]], recipients: int) -> Exception:
    """The error that ends a send with failures: the provider's own when there is one."""
    if len(failed) == 1:
        return failed[0][1]
    reasons = "; ".join(
        f"{recipient}: {err.message if isinstance(err, ApplicationError) else err}"
        for recipient, err in failed
    )
    # Refusals alone name a refusal; one that ran out of attempts names an outage.
    refused = all(_refused_for_good(err) for _, err in failed)
    return ApplicationError(
        f"{len(failed)} of {recipients} recipients {'refused' if refused else 'failed'}: {reasons}",
        type=MAIL_REFUSED if refused else MAIL_UNAVAILABLE,
        non_retryable=True,
    )
