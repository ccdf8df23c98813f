"""Email: templates rendered per locale, sent at most once per step and recipient.

The email ledger holds one row per (customer, ledger key, recipient). A retried
send_email skips every recipient whose row says "sent", and does not ask the
provider again for one whose row says "failed" (refused for good).

The one window the ledger cannot close: the provider accepted a message and
the worker crashed (or the database failed) before the row was marked "sent".
The row still says "sending", so the retry sends again. The ledger narrows a
duplicate to that gap; closing it would need the provider to deduplicate by
our key, which neither SendGrid's mail-send API, SMTP nor a file outbox offers.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

import jinja2
import jinja2.meta
from sqlalchemy import update
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from emails.mailers import MAIL_REFUSED, Mailer
from emails.render import compose_message, render_email
from models.activity_io import SendEmailInput, SendEmailResult
from models.tables import CustomerContact, EmailLedgerEntry, utc_now
from records.database import Database, insert_ignore


class MailActivities:
    def __init__(
        self,
        database: Database,
        mailer: Mailer,
        templates: jinja2.Environment,
        sender: str,
    ) -> None:
        self._database = database
        self._mailer = mailer
        self._templates = templates
        self._sender = sender
        # Message ids in the sender's domain, as providers and spam filters expect.
        self._id_domain = parseaddr(sender)[1].rpartition("@")[2] or "liftoff.local"

    def _recipients(self, input: SendEmailInput) -> list[str]:
        if input.to:
            return list(dict.fromkeys(address.strip().lower() for address in input.to))
        if input.to_role is None:
            return []
        with self._database.session() as session:
            emails = session.exec(
                select(CustomerContact.email)
                .where(col(CustomerContact.customer_id) == input.customer_id)
                .where(col(CustomerContact.role) == input.to_role.value)
                .where(col(CustomerContact.unsubscribed).is_(False))
                .order_by(col(CustomerContact.email))
            ).all()
        return list(emails)

    def _claim(self, input: SendEmailInput, recipient: str) -> str:
        """Write the ledger row if missing; returns its status."""
        key = (input.customer_id, input.ledger_key, recipient)
        with self._database.session() as session:
            insert_ignore(
                session,
                EmailLedgerEntry,
                {
                    "customer_id": input.customer_id,
                    "ledger_key": input.ledger_key,
                    "recipient": recipient,
                    "template": input.template,
                    "status": "sending",
                    "created_at": utc_now(),
                },
                ["customer_id", "ledger_key", "recipient"],
            )
            row = session.get(EmailLedgerEntry, key)
            return row.status if row is not None else "sending"

    def _mark(self, input: SendEmailInput, recipient: str, **values: object) -> None:
        with self._database.session() as session:
            session.exec(
                update(EmailLedgerEntry)
                .where(col(EmailLedgerEntry.customer_id) == input.customer_id)
                .where(col(EmailLedgerEntry.ledger_key) == input.ledger_key)
                .where(col(EmailLedgerEntry.recipient) == recipient)
                .values(**values)
            )

    def _compose(self, input: SendEmailInput, recipient: str) -> EmailMessage:
        rendered = render_email(
            self._templates,
            input.template,
            input.locale,
            {**input.context, "recipient": recipient},
            role=input.to_role.value if input.to_role else None,
        )
        message = compose_message(rendered, sender=self._sender, recipient=recipient)
        message["Message-ID"] = make_msgid(domain=self._id_domain)
        message["X-Liftoff-Customer"] = input.customer_id
        message["X-Liftoff-Ledger-Key"] = input.ledger_key
        return message

    @activity.defn
    def send_email(self, input: SendEmailInput) -> SendEmailResult:
        recipients = self._recipients(input)
        if not recipients:
            role = input.to_role.value if input.to_role else "none"
            return SendEmailResult(
                skipped_reason=f"no recipients: no addresses given and no subscribed {role} contact"
            )
        result = SendEmailResult()
        # One recipient refused for good must not keep the others from their email.
        refused: list[tuple[str, ApplicationError]] = []
        for recipient in recipients:
            status = self._claim(input, recipient)
            if status == "sent":
                result.already_sent.append(recipient)
                continue
            if status == "failed":
                # Refused for good before: asking the provider again would only be refused
                # again, and repeated refusals hurt the sender's reputation.
                earlier = f"{recipient} was refused earlier for {input.ledger_key}; not sent again"
                refused.append(
                    (recipient, ApplicationError(earlier, type=MAIL_REFUSED, non_retryable=True))
                )
                continue
            try:
                # A crash between this send and the "sent" mark below is the window
                # the ledger cannot close (see the module docstring).
                message_id = self._mailer.send(self._compose(input, recipient))
            except Exception as err:
                # Kept on the row for whoever looks; the retry policy decides what next.
                final = isinstance(err, ApplicationError) and err.non_retryable
                self._mark(
                    input,
                    recipient,
                    status="failed" if final else "sending",
                    error=f"{type(err).__name__}: {err}"[:2000],
                )
                if not isinstance(err, ApplicationError) or not final:
                    raise
                refused.append((recipient, err))
                continue
            self._mark(input, recipient, status="sent", message_id=message_id, sent_at=utc_now())
            result.sent.append(recipient)
        if refused:
            raise _refusal(refused, len(recipients))
        return result


def _refusal(refused: list[tuple[str, ApplicationError]], recipients: int) -> ApplicationError:
    """The error that ends a send with refusals: the provider's own when there is one."""
    if len(refused) == 1:
        return refused[0][1]
    reasons = "; ".join(f"{recipient}: {err.message}" for recipient, err in refused)
    return ApplicationError(
        f"{len(refused)} of {recipients} recipients refused: {reasons}",
        type=MAIL_REFUSED,
        non_retryable=True,
    )
