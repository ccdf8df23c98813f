"""send_email through SmtpMailer, against a real aiosmtpd server on loopback."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.mail import MailActivities
from emails.mailers import MAIL_REFUSED, MAIL_UNAVAILABLE, SmtpMailer
from models.activity_io import SendEmailInput
from models.tables import EmailLedgerEntry
from records.database import Database
from testkit.factories import SENDER, make_mail_activities
from tests.support.mail import WORKFLOW_CONTEXTS, part

USERNAME = "liftoff"
PASSWORD = "smtp-test-password"

REQUEST = SendEmailInput(
    ledger_key="task:acme-1",
    customer_id="acme",
    template="task_assigned",
    to=["csm@liftoff.example"],
    context=WORKFLOW_CONTEXTS["task_assigned"],
)


@dataclass
class Mailbox:
    """The aiosmtpd handler: records what it accepted, answers scripted replies."""

    messages: list[Message] = field(default_factory=list)
    rcpt_replies: deque[str] = field(default_factory=deque)
    data_replies: deque[str] = field(default_factory=deque)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, _: Any
    ) -> str:
        if self.rcpt_replies:
            return self.rcpt_replies.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTPServer, session: Session, envelope: Envelope
    ) -> str:
        if self.data_replies:
            return self.data_replies.popleft()
        assert isinstance(envelope.content, bytes)
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USERNAME.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(USERNAME)
        return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


def start(mailbox: Mailbox, **options: Any) -> Controller:
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    return controller


@pytest.fixture
def smtp_port(mailbox: Mailbox) -> Iterator[int]:
    """A plain server: no TLS, AUTH offered without TLS (a test convenience only)."""
    controller = start(mailbox, authenticator=mailbox.authenticate, auth_require_tls=False)
    try:
        yield controller.port
    finally:
        controller.stop()


def smtp_mail(database: Database, mailer: SmtpMailer) -> MailActivities:
    return make_mail_activities(database, mailer)


def plain_mailer(port: int, **options: Any) -> SmtpMailer:
    return SmtpMailer("127.0.0.1", port, starttls=False, timeout=5, **options)


def ledger(database: Database) -> EmailLedgerEntry:
    with database.session() as session:
        [entry] = session.exec(select(EmailLedgerEntry)).all()
    return entry


def test_message_is_delivered_with_text_and_html_parts_once(
    sqlite_database: Database, mailbox: Mailbox, smtp_port: int
) -> None:
    mail = smtp_mail(sqlite_database, plain_mailer(smtp_port))

    result = ActivityEnvironment().run(mail.send_email, REQUEST)
    ActivityEnvironment().run(mail.send_email, REQUEST)

    assert result.sent == ["csm@liftoff.example"]
    [message] = mailbox.messages
    assert message["To"] == "csm@liftoff.example"
    assert message["From"] == SENDER
    assert "Schedule the kickoff meeting" in part(message, "text/plain")
    assert "Schedule the kickoff meeting" in part(message, "text/html")
    assert ledger(sqlite_database).message_id == message["Message-ID"]


def test_auth_logs_in_with_the_configured_account(
    sqlite_database: Database, mailbox: Mailbox, smtp_port: int
) -> None:
    mailer = plain_mailer(smtp_port, username=USERNAME, password=SecretStr(PASSWORD))

    ActivityEnvironment().run(smtp_mail(sqlite_database, mailer).send_email, REQUEST)

    assert mailbox.logins == [USERNAME]
    assert len(mailbox.messages) == 1
    assert PASSWORD not in repr(mailer)


def test_a_wrong_password_is_refused_for_good(
    sqlite_database: Database, mailbox: Mailbox, smtp_port: int
) -> None:
    mailer = plain_mailer(smtp_port, username=USERNAME, password=SecretStr("wrong"))

    with pytest.raises(ApplicationError) as failure:
        ActivityEnvironment().run(smtp_mail(sqlite_database, mailer).send_email, REQUEST)

    assert failure.value.non_retryable
    assert "535" in failure.value.message
    assert mailbox.messages == []


def test_a_550_reply_is_permanent_and_recorded(
    sqlite_database: Database, mailbox: Mailbox, smtp_port: int
) -> None:
    mailbox.rcpt_replies.append("550 5.1.1 No such user here")

    with pytest.raises(ApplicationError) as failure:
        ActivityEnvironment().run(
            smtp_mail(sqlite_database, plain_mailer(smtp_port)).send_email, REQUEST
        )

    assert failure.value.non_retryable
    assert failure.value.type == MAIL_REFUSED
    assert "550 5.1.1 No such user here" in failure.value.message
    entry = ledger(sqlite_database)
    assert entry.status == "failed"
    assert entry.error is not None and "No such user here" in entry.error


def test_a_451_reply_is_retried_and_then_delivered_once(
    sqlite_database: Database, mailbox: Mailbox, smtp_port: int
) -> None:
    mail = smtp_mail(sqlite_database, plain_mailer(smtp_port))
    mailbox.data_replies.append("451 4.3.0 Try again later")

    with pytest.raises(ApplicationError) as failure:
        ActivityEnvironment().run(mail.send_email, REQUEST)
    assert not failure.value.non_retryable
    assert failure.value.type == MAIL_UNAVAILABLE
    assert "451 4.3.0 Try again later" in failure.value.message

    ActivityEnvironment().run(mail.send_email, REQUEST)
    ActivityEnvironment().run(mail.send_email, REQUEST)

    assert len(mailbox.messages) == 1
    assert ledger(sqlite_database).status == "sent"


def test_an_unreachable_server_is_retryable(sqlite_database: Database) -> None:
    mail = smtp_mail(sqlite_database, plain_mailer(free_port()))

    with pytest.raises(ApplicationError) as failure:
        ActivityEnvironment().run(mail.send_email, REQUEST)

    assert not failure.value.non_retryable
    assert ledger(sqlite_database).status == "sending"


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_starttls_then_auth_as_a_real_relay_requires(
    sqlite_database: Database, mailbox: Mailbox, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    controller = start(
        mailbox,
        tls_context=server_context,
        require_starttls=True,
        authenticator=mailbox.authenticate,
        auth_required=True,
    )
    try:
        mailer = SmtpMailer(
            "127.0.0.1",
            controller.port,
            username=USERNAME,
            password=SecretStr(PASSWORD),
            starttls=True,
            timeout=5,
            # Verification stays on; the test's own CA is the only thing swapped in.
            ssl_context=ssl.create_default_context(cafile=str(cert)),
        )
        ActivityEnvironment().run(smtp_mail(sqlite_database, mailer).send_email, REQUEST)
    finally:
        controller.stop()

    assert mailbox.logins == [USERNAME]
    assert len(mailbox.messages) == 1


def test_one_recipient_refused_for_good_does_not_stop_the_others(
    sqlite_database: Database, mailbox: Mailbox, smtp_port: int
) -> None:
    mail = smtp_mail(sqlite_database, plain_mailer(smtp_port))
    both = REQUEST.model_copy(update={"to": ["gone@acme.example", "csm@liftoff.example"]})
    mailbox.rcpt_replies.append("550 5.1.1 No such user here")

    with pytest.raises(ApplicationError) as failure:
        ActivityEnvironment().run(mail.send_email, both)
    assert failure.value.non_retryable
    assert "No such user here" in failure.value.message
    assert [str(m["To"]) for m in mailbox.messages] == ["csm@liftoff.example"]

    # A second run sends nobody anything: one was delivered, the other refused for good.
    with pytest.raises(ApplicationError):
        ActivityEnvironment().run(mail.send_email, both)
    assert len(mailbox.messages) == 1


def test_list_unsubscribe_names_the_recipient_and_offers_one_click(
    sqlite_database: Database, mailbox: Mailbox, smtp_port: int
) -> None:
    mailer = plain_mailer(
        smtp_port,
        unsubscribe_url="https://liftoff.example/unsubscribe?c={customer_id}&r={recipient}",
        unsubscribe_mailto="unsubscribe@liftoff.example",
    )
    ActivityEnvironment().run(smtp_mail(sqlite_database, mailer).send_email, REQUEST)

    [message] = mailbox.messages
    assert message["List-Unsubscribe"] == (
        "<mailto:unsubscribe@liftoff.example>, "
        "<https://liftoff.example/unsubscribe?c=acme&r=csm%40liftoff.example>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
