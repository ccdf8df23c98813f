"""Where messages go: the `Mailer` protocol, the outbox folder, SendGrid's v3 API and SMTP.

Both sort failures the same way, so the ledger and the retry policy need not know
which provider ran: a provider that may take the message later (rate limit,
outage, timeout, dropped connection) raises a retryable `ApplicationError`; a
provider that refused this message for good raises a non-retryable one of type
`MailRefused` carrying the provider's words, which MailActivities records on the
ledger row as "failed".
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import smtplib
import ssl
import tempfile
import time
import urllib.error
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from pydantic import SecretStr
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from emails.render import OutgoingEmail

# The error type of a message a provider refused for good.
MAIL_REFUSED = "MailRefused"
# Names a message's email category (models.email_categories), set by MailActivities.
CATEGORY_HEADER = "X-Liftoff-Category"
CUSTOMER_HEADER = "X-Liftoff-Customer"
LEDGER_KEY_HEADER = "X-Liftoff-Ledger-Key"
OPERATIONAL = "operational"
LIST_UNSUBSCRIBE_HEADERS = ("List-Unsubscribe", "List-Unsubscribe-Post")


class Mailer(Protocol):
    def send(self, email: OutgoingEmail) -> str:
        """Hand the message to the provider; returns its message id."""
        ...


@runtime_checkable
class SchedulingMailer(Protocol):
    """A provider that holds a message until `send_at` and can withdraw it before then.

    MailActivities uses it to close the ledger's one window: a retry after a crash
    withdraws what the crashed attempt may have handed over, then sends again.
    """

    # How far ahead each message is scheduled; None when scheduling is off.
    send_delay: timedelta | None

    def open_batch(self) -> str:
        """A new batch id to schedule one message under."""
        ...

    def send_scheduled(self, email: OutgoingEmail, batch_id: str, send_at: datetime) -> str:
        """Hand the message over for delivery at `send_at`; returns its message id.

        Raises `ProviderAnswered` when the provider answered with an error: then
        nothing was scheduled under the batch."""
        ...

    def withdraw(self, batch_id: str) -> None:
        """Cancel every message of the batch; done if it was already cancelled. Raises a
        non-retryable error of type `CANCELLATIONS_FULL` when the provider holds as many
        cancellations as it takes."""
        ...

    def forget_withdrawal(self, batch_id: str) -> None:
        """Drop a cancellation whose send time has passed, freeing the provider's slot;
        done if it was already dropped."""
        ...


class OutboxMailer:
    """Writes each message as one .eml file: the embedded default and the tests' mailbox."""

    provider = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def send(self, email: OutgoingEmail) -> str:
        message_id = email.message_id
        message = email.mime()
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        safe_id = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in message_id)
        target = self.directory / f"{stamp}-{safe_id.strip('_')}.eml"
        # Temp file + rename: a reader of the outbox never sees half a message.
        fd, temp_name = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.as_bytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return message_id


log = logging.getLogger("liftoff.mail")

# Error types, for whoever reads a failure; MAIL_REFUSED is also the ledger's.
MAIL_UNAVAILABLE = "MailProviderUnavailable"
# A batch SendGrid would not cancel because it holds as many cancellations as it takes.
CANCELLATIONS_FULL = "CancellationsFull"

SENDGRID_HOST = "https://api.sendgrid.com"
# SendGrid cancels a scheduled batch only until this long before its send_at.
SENDGRID_CANCEL_CUTOFF = timedelta(minutes=10)
# The shortest send delay: its 5 minutes before the cutoff hold a retry after a crash
# (settings.py says why).
SENDGRID_MIN_SEND_DELAY = timedelta(minutes=15)
# SendGrid schedules at most this far ahead.
SENDGRID_MAX_SCHEDULE = timedelta(hours=72)
# Enough of a provider's error body to act on, small enough for a ledger row.
PROVIDER_MESSAGE_CHARS = 500
# A provider asking for a longer pause than this is retried after this anyway.
MAX_RETRY_AFTER = timedelta(minutes=15)
# The same for a cancel: a later retry could miss the batch's cancel window.
MAX_CANCEL_RETRY_AFTER = timedelta(minutes=2)


class ProviderAnswered(ApplicationError):
    """A failure the provider answered with (a 4xx or 5xx): it did not take the request.
    A timeout or a dropped connection is not one: the provider may have taken it."""


def provider_answered(err: BaseException) -> bool:
    return isinstance(err, ProviderAnswered)


def _refused(provider: str, detail: str, *, answered: bool = False) -> ApplicationError:
    kind = ProviderAnswered if answered else ApplicationError
    return kind(f"{provider} refused the message: {detail}", type=MAIL_REFUSED, non_retryable=True)


def _unavailable(provider: str, detail: str, *, answered: bool = False) -> ApplicationError:
    """Retryable: Temporal's retry policy backs off and tries again. An expected failure,
    so one WARNING line says why; BENIGN keeps the worker from logging a stack trace
    for every attempt (the SDK logs those at DEBUG)."""
    message = f"{provider} unavailable, will retry: {detail}"
    log.warning(message)
    kind = ProviderAnswered if answered else ApplicationError
    return kind(
        message,
        type=MAIL_UNAVAILABLE,
        non_retryable=False,
        category=ApplicationErrorCategory.BENIGN,
    )


def _retry_after(
    headers: Any, now: float, longest: timedelta = MAX_RETRY_AFTER
) -> timedelta | None:
    """How long a rate-limited provider asked us to wait: `Retry-After` (seconds), or
    SendGrid's `X-RateLimit-Reset` (Unix time); capped, and None when it said nothing."""
    if headers is None:
        return None
    seconds: float | None = None
    try:
        if headers.get("Retry-After") is not None:
            seconds = float(headers.get("Retry-After"))
        elif headers.get("X-RateLimit-Reset") is not None:
            seconds = float(headers.get("X-RateLimit-Reset")) - now
    except (TypeError, ValueError):
        return None
    if seconds is None:
        return None
    return timedelta(seconds=min(max(seconds, 1.0), longest.total_seconds()))


def unsubscribe_headers(
    url: str | None, mailto: str | None, *, recipient: str, customer_id: str
) -> dict[str, str]:
    """`List-Unsubscribe` (RFC 2369) and, for an https target, one-click (RFC 8058).

    `url` may hold `{recipient}` and `{customer_id}`, filled in URL-encoded, so the
    one-click POST tells the endpoint who unsubscribed.
    """
    targets = []
    if mailto:
        targets.append(f"<{mailto if mailto.startswith('mailto:') else f'mailto:{mailto}'}>")
    if url:
        url = url.replace("{recipient}", quote(recipient, safe=""))
        url = url.replace("{customer_id}", quote(customer_id, safe=""))
        targets.append(f"<{url}>")
    if not targets:
        return {}
    headers = {"List-Unsubscribe": ", ".join(targets)}
    # RFC 8058: one-click needs an HTTPS target to POST to; a mailto cannot take it.
    if url:
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def list_unsubscribe(email: OutgoingEmail, url: str | None, mailto: str | None) -> dict[str, str]:
    """The unsubscribe headers a message goes out with: the per-category link
    MailActivities signed for it, else the configured target; none for operational
    mail (tasks to staff), which no one can leave."""
    own = {name: email.headers[name] for name in LIST_UNSUBSCRIBE_HEADERS if name in email.headers}
    if own:
        return own
    if email.headers.get(CATEGORY_HEADER) == OPERATIONAL:
        return {}
    return unsubscribe_headers(
        url,
        mailto,
        recipient=parseaddr(email.recipient)[1],
        customer_id=email.headers.get(CUSTOMER_HEADER, ""),
    )


class _RedactBearer(logging.Filter):
    """python_http_client logs at DEBUG the request headers, API key included, and the
    request body: recipients, the message and its signed unsubscribe link, which works
    as a credential. Mask the key and drop the body."""

    _BEARER = re.compile(r"(Bearer\s+)[^'\"\s,}]+")

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith("PAYLOAD:"):
            record.msg, record.args = f"PAYLOAD: [{len(text) - 9} characters, not logged]", ()
        elif "Bearer" in text:
            record.msg, record.args = self._BEARER.sub(r"\1[redacted]", text), ()
        return True


def _install_redaction() -> None:
    logger = logging.getLogger("python_http_client.client")
    if not any(isinstance(existing, _RedactBearer) for existing in logger.filters):
        logger.addFilter(_RedactBearer())


def _sendgrid_errors(body: bytes | str | None) -> str:
    """SendGrid's `{"errors": [{"field", "message"}]}` as one line; the raw body otherwise."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        errors = json.loads(raw)["errors"]
        text = "; ".join(
            f"{error['field']}: {error['message']}" if error.get("field") else error["message"]
            for error in errors
        )
    except (ValueError, KeyError, TypeError):
        text = raw.strip()
    return text[:PROVIDER_MESSAGE_CHARS] or "no details given"


class SendGridMailer:
    """Sends through SendGrid's v3 mail-send API with the official client.

    `unsubscribe_url` may hold `{recipient}` and `{customer_id}`, filled in
    URL-encoded, so the one-click POST tells the endpoint who unsubscribed.
    """

    provider = "sendgrid"

    def __init__(
        self,
        api_key: SecretStr,
        *,
        host: str = SENDGRID_HOST,
        timeout: float = 10,
        sandbox_mode: bool = False,
        unsubscribe_url: str | None = None,
        unsubscribe_mailto: str | None = None,
        send_delay: timedelta | None = None,
    ) -> None:
        if send_delay is not None and not (
            SENDGRID_MIN_SEND_DELAY <= send_delay <= SENDGRID_MAX_SCHEDULE
        ):
            raise ValueError(
                "a SendGrid send delay must be at least 15 minutes, so a retry has 5 before "
                "the 10 minutes before send_at in which a batch can no longer be cancelled, "
                "and at most 72 hours"
            )
        self.host = host.rstrip("/")
        self.sandbox_mode = sandbox_mode
        self.send_delay = send_delay
        self.unsubscribe_url = unsubscribe_url
        if unsubscribe_mailto and not unsubscribe_mailto.startswith("mailto:"):
            unsubscribe_mailto = f"mailto:{unsubscribe_mailto}"
        self.unsubscribe_mailto = unsubscribe_mailto
        _install_redaction()
        self._api = SendGridAPIClient(api_key.get_secret_value(), host=self.host)
        # The client is blocking urllib with no timeout by default; every request
        # it builds inherits this one.
        self._api.client.timeout = timeout

    def __repr__(self) -> str:
        return (
            f"SendGridMailer(host={self.host!r}, sandbox_mode={self.sandbox_mode}, "
            f"send_delay={self.send_delay})"
        )

    def request_body(self, email: OutgoingEmail) -> dict[str, Any]:
        """The v3 mail-send body for one message, built from its fields (no MIME)."""
        sender_name, sender = parseaddr(email.sender)
        recipient_name, recipient = parseaddr(email.recipient)
        rendered = email.rendered
        custom_args = {
            "customer_id": email.headers.get(CUSTOMER_HEADER, ""),
            "ledger_key": email.headers.get(LEDGER_KEY_HEADER, ""),
            # The category comes back on group_unsubscribe / group_resubscribe events.
            "category": email.headers.get(CATEGORY_HEADER, ""),
        }
        to = {"email": recipient, **({"name": recipient_name} if recipient_name else {})}
        body: dict[str, Any] = {
            "personalizations": [{"to": [to]}],
            "from": {"email": sender, **({"name": sender_name} if sender_name else {})},
            "subject": rendered.subject,
            # SendGrid wants text/plain first.
            "content": [
                {"type": "text/plain", "value": rendered.text},
                {"type": "text/html", "value": rendered.html},
            ],
            # Strings only: they come back on every webhook event to match it.
            "custom_args": {key: value for key, value in custom_args.items() if value},
        }
        headers = list_unsubscribe(email, self.unsubscribe_url, self.unsubscribe_mailto)
        if headers:
            body["headers"] = headers
        if self.sandbox_mode:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return body

    def send(self, email: OutgoingEmail) -> str:
        return self._send(self.request_body(email), email)

    def send_scheduled(self, email: OutgoingEmail, batch_id: str, send_at: datetime) -> str:
        body = self.request_body(email)
        body["batch_id"] = batch_id
        body["send_at"] = int(send_at.timestamp())
        return self._send(body, email)

    def open_batch(self) -> str:
        response = self._call("open a batch", lambda: self._api.client.mail.batch.post())
        try:
            return str(json.loads(response.body)["batch_id"])
        except (ValueError, KeyError, TypeError):
            raise _unavailable("SendGrid", "a new batch came back without its id") from None

    def withdraw(self, batch_id: str) -> None:
        scheduled = self._api.client.user.scheduled_sends

        def cancel() -> Any:
            try:
                return scheduled.post(request_body={"batch_id": batch_id, "status": "cancel"})
            except HTTPError as err:
                detail = _sendgrid_errors(err.body)
                # Slots free only as held batches pass their send time, often after this
                # batch's cancel window: final, so no retry ends up sending a second copy.
                if int(err.status_code) == 400 and "max limit reached" in detail:
                    raise ApplicationError(
                        f"SendGrid would not cancel batch {batch_id}: 400 {detail} "
                        "(it holds 10 cancellations at once)",
                        type=CANCELLATIONS_FULL,
                        non_retryable=True,
                    ) from None
                raise

        try:
            self._call(
                f"cancel batch {batch_id}",
                cancel,
                refusal_retries=True,
                longest_wait=MAX_CANCEL_RETRY_AFTER,
            )
        except ApplicationError:
            # Already cancelled (an earlier retry got this far) reads as a refusal.
            if self._withdrawn(batch_id):
                return
            raise

    def _withdrawn(self, batch_id: str) -> bool:
        scheduled = self._api.client.user.scheduled_sends
        response = self._call(
            f"look up batch {batch_id}",
            lambda: scheduled._(batch_id).get(),
            longest_wait=MAX_CANCEL_RETRY_AFTER,
        )
        try:
            statuses = json.loads(response.body or b"[]")
        except ValueError:
            return False
        return any(
            isinstance(entry, dict) and entry.get("status") == "cancel" for entry in statuses
        )

    def forget_withdrawal(self, batch_id: str) -> None:
        scheduled = self._api.client.user.scheduled_sends

        def delete() -> Any:
            try:
                return scheduled._(batch_id).delete()
            except HTTPError as err:
                # Not there: another send forgot it first, which is what we wanted.
                if int(err.status_code) == 404:
                    return None
                raise

        self._call(f"forget batch {batch_id}", delete)

    def _send(self, body: dict[str, Any], email: OutgoingEmail) -> str:
        response = self._call("send", lambda: self._api.send(body))
        provider_id = response.headers.get("X-Message-Id") if response.headers else None
        # Sandbox mode answers 200 without an id: keep our own so the ledger has one.
        return str(provider_id) if provider_id else email.message_id

    def _call(
        self,
        what: str,
        request: Any,
        *,
        refusal_retries: bool = False,
        longest_wait: timedelta = MAX_RETRY_AFTER,
    ) -> Any:
        """One API request with failures sorted: 429, 5xx and the network are worth a
        retry (after a 429's asked-for pause, at most `longest_wait`); another 4xx is a
        refusal (final unless `refusal_retries`)."""
        try:
            return request()
        except HTTPError as err:
            status = int(err.status_code)
            detail = f"{status} {_sendgrid_errors(err.body)}"
            if what != "send":
                detail = f"{what}: {detail}"
            if status == 429:
                wait = _retry_after(err.headers, time.time(), longest_wait)
                error = _unavailable("SendGrid", detail, answered=True)
                if wait is not None:
                    # Sooner is refused again, later wastes time: wait as long as asked.
                    error = ProviderAnswered(
                        error.message,
                        type=MAIL_UNAVAILABLE,
                        next_retry_delay=wait,
                    )
                raise error from None
            if status >= 500 or refusal_retries:
                raise _unavailable("SendGrid", detail, answered=True) from None
            raise _refused("SendGrid", detail, answered=True) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            # Timeouts and refused or dropped connections: the message may be sent later.
            reason = getattr(err, "reason", err)
            raise _unavailable("SendGrid", f"{type(err).__name__}: {reason}") from None


class SmtpMailer:
    """Sends over SMTP: implicit TLS (`use_tls`, port 465) or STARTTLS, with optional auth."""

    provider = "smtp"

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        username: str | None = None,
        password: SecretStr | None = None,
        starttls: bool = True,
        use_tls: bool = False,
        timeout: float = 10,
        ssl_context: ssl.SSLContext | None = None,
        unsubscribe_url: str | None = None,
        unsubscribe_mailto: str | None = None,
    ) -> None:
        if starttls and use_tls:
            raise ValueError("choose STARTTLS or implicit TLS, not both")
        if (username is None) != (password is None):
            raise ValueError("SMTP auth needs both a username and a password")
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.starttls = starttls
        self.use_tls = use_tls
        self.timeout = timeout
        self._ssl_context = ssl_context
        self.unsubscribe_url = unsubscribe_url
        self.unsubscribe_mailto = unsubscribe_mailto

    def __repr__(self) -> str:
        return (
            f"SmtpMailer(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"starttls={self.starttls}, use_tls={self.use_tls})"
        )

    def _connect(self) -> smtplib.SMTP:
        context = self._ssl_context or ssl.create_default_context()
        if self.use_tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.starttls:
            try:
                smtp.starttls(context=context)
            except BaseException:
                smtp.close()
                raise
        return smtp

    def send(self, email: OutgoingEmail) -> str:
        where = f"SMTP {self.host}:{self.port}"
        unsubscribe = list_unsubscribe(email, self.unsubscribe_url, self.unsubscribe_mailto)
        message = email.mime(unsubscribe)
        try:
            with self._connect() as smtp:
                if self.username is not None and self._password is not None:
                    smtp.login(self.username, self._password.get_secret_value())
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as err:
            # One recipient per message: its reply decides.
            code, reply = next(iter(err.recipients.values()))
            raise _smtp_reply(where, code, reply) from None
        except smtplib.SMTPResponseException as err:
            raise _smtp_reply(where, err.smtp_code, err.smtp_error) from None
        except smtplib.SMTPNotSupportedError as err:
            # The server lacks STARTTLS or AUTH: a configuration problem retries cannot fix.
            raise _refused(where, str(err)) from None
        except (smtplib.SMTPException, OSError) as err:
            # Dropped connections, refused connections, timeouts.
            raise _unavailable(where, f"{type(err).__name__}: {err}") from None
        return email.message_id


def _smtp_reply(where: str, code: int, reply: bytes | str) -> ApplicationError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    detail = f"{code} {text}"[:PROVIDER_MESSAGE_CHARS]
    # 4xx replies are transient by definition (RFC 5321); 5xx are final.
    if 400 <= code < 500:
        return _unavailable(where, detail)
    return _refused(where, detail)
