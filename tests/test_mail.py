"""send_email: the right people get each email once, in their language, from the outbox."""

from __future__ import annotations

import email
from email.message import Message
from email.policy import default as default_policy
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.mail import MailActivities
from emails.mailers import OutboxMailer
from emails.render import OutgoingEmail, build_template_environment, render_email
from models.activity_io import SendEmailInput
from models.handoff import Contact, CustomerHandoff, Role
from models.tables import CustomerContact, EmailLedgerEntry
from records.database import Database
from testkit.factories import SENDER, TEMPLATES, make_handoff, make_mail_activities, store_customer
from tests.support.mail import WORKFLOW_CONTEXTS, part


class FlakyMailer:
    """Refuses the first message, like a provider having a bad minute."""

    def __init__(self, inner: OutboxMailer) -> None:
        self.inner = inner
        self.calls = 0

    def send(self, email: OutgoingEmail) -> str:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("provider unavailable")
        return self.inner.send(email)


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def mail(database: Database, outbox: Path) -> MailActivities:
    return make_mail_activities(database, OutboxMailer(outbox))


@pytest.fixture
def activity_env() -> ActivityEnvironment:
    return ActivityEnvironment()


def add_customer(database: Database, handoff: CustomerHandoff) -> None:
    store_customer(database, handoff)


def read_outbox(outbox: Path) -> list[Message]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=default_policy)
        for path in sorted(outbox.glob("*.eml"))
    ]


def test_one_eml_per_recipient_and_a_retry_sends_nothing_more(
    mail: MailActivities, outbox: Path, activity_env: ActivityEnvironment
) -> None:
    request = SendEmailInput(
        ledger_key="failed:acme",
        customer_id="acme",
        template="onboarding_failed",
        to=["lead@liftoff.example", "CSM@liftoff.example", "lead@liftoff.example"],
        context=WORKFLOW_CONTEXTS["onboarding_failed"],
    )

    first = activity_env.run(mail.send_email, request)
    retry = activity_env.run(mail.send_email, request)

    assert first.sent == ["lead@liftoff.example", "csm@liftoff.example"]
    assert retry.sent == []
    assert retry.already_sent == ["lead@liftoff.example", "csm@liftoff.example"]
    messages = read_outbox(outbox)
    assert sorted(str(m["To"]) for m in messages) == ["csm@liftoff.example", "lead@liftoff.example"]
    message = messages[0]
    assert message["Subject"] == "[Liftoff] Onboarding failed: Acme Logistics"
    assert message["From"] == SENDER
    assert message["Message-ID"]
    text = part(message, "text/plain")
    assert "Subject:" not in text
    assert "Deadline of 120 days passed in stage adoption." in text
    assert "Acme Logistics" in part(message, "text/html")
    assert not list(outbox.glob(".*.tmp")), "no temp files left behind"


def test_role_recipients_are_the_subscribed_contacts_holding_the_role(
    database: Database, mail: MailActivities, outbox: Path, activity_env: ActivityEnvironment
) -> None:
    handoff = make_handoff(
        contacts=[
            Contact(email="admin1@acme.example", name="Ari Admin", role=Role.ADMINISTRATOR),
            Contact(email="admin2@acme.example", name="Bo Admin", role=Role.ADMINISTRATOR),
            Contact(email="gone@acme.example", name="Gil Gone", role=Role.ADMINISTRATOR),
            Contact(email="boss@acme.example", name="Dana Boss", role=Role.DECISION_MAKER),
        ]
    )
    add_customer(database, handoff)
    with database.session() as session:
        session.exec(
            update(CustomerContact)
            .where(col(CustomerContact.email) == "gone@acme.example")
            .values(unsubscribed=True)
        )

    result = activity_env.run(
        mail.send_email,
        SendEmailInput(
            ledger_key="stall:1:proposal",
            customer_id=handoff.customer_id,
            template="stall_proposal",
            to_role=Role.ADMINISTRATOR,
            context=WORKFLOW_CONTEXTS["stall_proposal"],
        ),
    )

    assert result.sent == ["admin1@acme.example", "admin2@acme.example"]
    assert sorted(str(m["To"]) for m in read_outbox(outbox)) == [
        "admin1@acme.example",
        "admin2@acme.example",
    ]


def test_no_recipients_sends_nothing_and_says_why(
    database: Database, mail: MailActivities, outbox: Path, activity_env: ActivityEnvironment
) -> None:
    handoff = make_handoff(
        contacts=[Contact(email="boss@acme.example", name="Dana Boss", role=Role.DECISION_MAKER)]
    )
    add_customer(database, handoff)

    result = activity_env.run(
        mail.send_email,
        SendEmailInput(
            ledger_key="stall:1:proposal",
            customer_id=handoff.customer_id,
            template="stall_proposal",
            to_role=Role.ADMINISTRATOR,
            context=WORKFLOW_CONTEXTS["stall_proposal"],
        ),
    )

    assert result.sent == []
    assert result.skipped_reason is not None
    assert "administrator" in result.skipped_reason
    assert read_outbox(outbox) == []


def test_japanese_customer_gets_the_japanese_template(
    database: Database, mail: MailActivities, outbox: Path, activity_env: ActivityEnvironment
) -> None:
    handoff = make_handoff(name="株式会社アクメ", locale="ja")
    add_customer(database, handoff)

    activity_env.run(
        mail.send_email,
        SendEmailInput(
            ledger_key="stall:1:proposal",
            customer_id=handoff.customer_id,
            template="stall_proposal",
            locale="ja",
            to_role=Role.ADMINISTRATOR,
            context={**WORKFLOW_CONTEXTS["stall_proposal"], "customer_name": "株式会社アクメ"},
        ),
    )

    [message] = read_outbox(outbox)
    assert message["Subject"] == "【ご活用のご提案】株式会社アクメ様"
    assert "ご利用いただき" in part(message, "text/plain")
    assert '<html lang="ja">' in part(message, "text/html")


def test_missing_locale_falls_back_to_english(
    database: Database, outbox: Path, tmp_path: Path, activity_env: ActivityEnvironment
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "welcome.en.txt").write_text("Subject: Welcome {{ recipient }}\nHi.\n")
    (templates / "welcome.en.html").write_text("<p>Hi.</p>\n")
    mail = make_mail_activities(database, OutboxMailer(outbox), templates=templates)

    activity_env.run(
        mail.send_email,
        SendEmailInput(
            ledger_key="welcome",
            customer_id="acme",
            template="welcome",
            locale="ja",
            to=["admin@acme.example"],
        ),
    )

    [message] = read_outbox(outbox)
    assert message["Subject"] == "Welcome admin@acme.example"


def test_html_part_escapes_customer_supplied_text(
    mail: MailActivities, outbox: Path, activity_env: ActivityEnvironment
) -> None:
    activity_env.run(
        mail.send_email,
        SendEmailInput(
            ledger_key="failed:acme",
            customer_id="acme",
            template="onboarding_failed",
            to=["lead@liftoff.example"],
            context={**WORKFLOW_CONTEXTS["onboarding_failed"], "customer_name": "<b>A&B</b>"},
        ),
    )

    [message] = read_outbox(outbox)
    html = part(message, "text/html")
    assert "&lt;b&gt;A&amp;B&lt;/b&gt;" in html
    assert "<b>A&B</b>" not in html
    assert "<b>A&B</b>" in part(message, "text/plain")


def test_failed_send_is_retried_and_delivered_once(
    database: Database, outbox: Path, activity_env: ActivityEnvironment
) -> None:
    mailer = FlakyMailer(OutboxMailer(outbox))
    mail = make_mail_activities(database, mailer)
    request = SendEmailInput(
        ledger_key="task:acme-1",
        customer_id="acme",
        template="task_assigned",
        to=["csm@liftoff.example"],
        context=WORKFLOW_CONTEXTS["task_assigned"],
    )

    with pytest.raises(ConnectionError):
        activity_env.run(mail.send_email, request)
    with database.session() as session:
        [pending] = session.exec(select(EmailLedgerEntry)).all()
    assert pending.status == "sending"
    assert pending.error is not None and "provider unavailable" in pending.error

    retried = activity_env.run(mail.send_email, request)
    activity_env.run(mail.send_email, request)

    assert retried.sent == ["csm@liftoff.example"]
    assert len(read_outbox(outbox)) == 1
    with database.session() as session:
        [entry] = session.exec(select(EmailLedgerEntry)).all()
    assert entry.status == "sent"
    assert entry.message_id and entry.sent_at is not None


def test_same_step_for_two_customers_reaches_a_shared_contact_twice(
    mail: MailActivities, outbox: Path, activity_env: ActivityEnvironment
) -> None:
    for customer in ("acme", "globex"):
        activity_env.run(
            mail.send_email,
            SendEmailInput(
                ledger_key="stall:1:proposal",
                customer_id=customer,
                template="stall_proposal",
                to=["consultant@partner.example"],
                context=WORKFLOW_CONTEXTS["stall_proposal"],
            ),
        )

    assert len(read_outbox(outbox)) == 2


def test_unknown_template_fails_for_good(
    mail: MailActivities, activity_env: ActivityEnvironment
) -> None:
    with pytest.raises(ApplicationError) as failure:
        activity_env.run(
            mail.send_email,
            SendEmailInput(ledger_key="x", customer_id="acme", template="nope", to=["a@b.example"]),
        )
    assert failure.value.non_retryable
    assert "nope.en.txt" in str(failure.value)


@pytest.mark.parametrize("locale", ["en", "ja"])
@pytest.mark.parametrize("template", sorted(WORKFLOW_CONTEXTS))
def test_every_shipped_template_renders_with_the_workflows_context(
    template: str, locale: str, tmp_path: Path
) -> None:
    environment = build_template_environment(TEMPLATES)
    context = {**WORKFLOW_CONTEXTS[template], "recipient": "someone@acme.example"}
    for ext in ("txt", "html"):
        assert (TEMPLATES / f"{template}.{locale}.{ext}").is_file()
    text = environment.get_template(f"{template}.{locale}.txt").render(context)
    html = environment.get_template(f"{template}.{locale}.html").render(context)

    subject = text.splitlines()[0]
    assert subject.startswith("Subject: ")
    assert "Acme Logistics" in text
    assert f'<html lang="{locale}">' in html
    assert "Acme Logistics" in html
    if "purpose_title" in context:
        assert context["purpose_title"] in subject
    if "purposes_offered" in context:
        for body in (text, html):
            assert "Digitise incoming documents" in body and "Approve expenses online" in body


@pytest.mark.parametrize(
    ("locale", "count", "says"),
    [
        ("en", 0, "was not recorded at all"),
        ("en", 1, "recorded 1 time,"),
        ("en", 3, "recorded 3 times,"),
        ("ja", 0, "ご利用がまだございませんでした"),
        ("ja", 3, "は3回と"),
    ],
)
def test_purpose_nudge_states_last_weeks_key_actions(locale: str, count: int, says: str) -> None:
    environment = build_template_environment(TEMPLATES)
    context = {**WORKFLOW_CONTEXTS["purpose_nudge"], "key_actions_last_week": count}
    text = environment.get_template(f"purpose_nudge.{locale}.txt").render(context)
    html = environment.get_template(f"purpose_nudge.{locale}.html").render(context)

    assert says in text and says in html
    assert "document scanned" in text and "document_scanned" not in text


class StyleCollector(HTMLParser):
    """Each element's tag and style attribute, and whether a <style> block is left."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, str]] = []
        self.style_blocks = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.style_blocks += tag == "style"
        self.elements.append((tag, dict(attrs).get("style") or ""))


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_html_part_carries_the_layouts_css_inline(locale: str) -> None:
    rendered = render_email(
        build_template_environment(TEMPLATES),
        "task_assigned",
        locale,
        {**WORKFLOW_CONTEXTS["task_assigned"], "recipient": "csm@liftoff.example"},
    )
    page = StyleCollector()
    page.feed(rendered.html)

    assert page.style_blocks == 0, "mail clients that drop <style> must lose nothing"
    styles = dict(page.elements)  # the first of each tag
    assert "background: #f5f6f8" in styles["body"]
    assert "max-width: 600px" in styles["div"]  # the card
    assert "border-collapse: collapse" in styles["table"]
    assert "text-align: left" in styles["th"]
    unstyled = [tag for tag, style in page.elements if tag in ("p", "td", "th") and not style]
    assert unstyled == []
    assert f'<html lang="{locale}">' in rendered.html


def test_environment_autoescapes_html_and_refuses_undefined_variables(tmp_path: Path) -> None:
    (tmp_path / "x.en.txt").write_text("Subject: {{ name }}\n{{ name }}\n")
    (tmp_path / "x.en.html").write_text("<p>{{ name }}</p>")
    templates = build_template_environment(tmp_path)

    rendered = render_email(templates, "x", "en", {"name": "<b>A&B</b>"})
    assert "&lt;b&gt;A&amp;B&lt;/b&gt;" in rendered.html
    assert rendered.text == "<b>A&B</b>\n"  # plain text is not escaped

    with pytest.raises(ApplicationError) as failure:
        render_email(templates, "x", "en", {})
    assert failure.value.non_retryable
    assert failure.value.message == "email template x.en.txt, line 1: 'name' is undefined"


def test_template_syntax_error_fails_for_good_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "x.en.txt").write_text("Subject: hi\n")
    (tmp_path / "x.en.html").write_text("<p>\n{% if %}</p>")

    with pytest.raises(ApplicationError) as failure:
        render_email(build_template_environment(tmp_path), "x", "en", {})

    assert failure.value.non_retryable
    assert failure.value.type == "TemplateError"
    assert failure.value.message.startswith("email template x.en.html, line 2: ")


def test_without_a_mailer_each_email_is_rendered_and_kept_on_the_ledger_and_goes_nowhere(
    database: Database, tmp_path: Path, activity_env: ActivityEnvironment
) -> None:
    # The simulator's mail: counted on the ledger like a sent one, never delivered,
    # and a template that cannot render still fails the send for good.
    mail = make_mail_activities(database, None)
    request = SendEmailInput(
        ledger_key="failed:acme",
        customer_id="acme",
        template="onboarding_failed",
        to=["lead@liftoff.example"],
        context=WORKFLOW_CONTEXTS["onboarding_failed"],
    )

    first = activity_env.run(mail.send_email, request)
    retry = activity_env.run(mail.send_email, request)

    assert first.sent == ["lead@liftoff.example"]
    assert retry.already_sent == ["lead@liftoff.example"]
    with database.session() as session:
        row = session.exec(select(EmailLedgerEntry)).one()
    assert (row.status, row.sent_at is not None, row.message_id) == ("sent", True, None)
    assert not list(tmp_path.rglob("*.eml"))

    broken = request.model_copy(update={"ledger_key": "failed:acme:2", "context": {}})
    with pytest.raises(ApplicationError) as failure:
        activity_env.run(mail.send_email, broken)
    assert failure.value.non_retryable
    assert failure.value.type == "TemplateError"
