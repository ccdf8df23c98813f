"""Opt-out per email category: a contact leaves one kind of email and keeps the others.

Links are signed per contact and category and refused when changed or expired; the send
activity skips a category the recipient left (ledger "opted_out") and nobody else, and
never operational mail; the workflow's timeline says who was left out; the one-click
POST (RFC 8058) and the preference page (en/ja) write the store, and SendGrid's group
events land in the same store; the CSM sees each contact's opt-outs."""

from __future__ import annotations

import email
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from pydantic import SecretStr
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from api.app import create_app
from api.dashboard.i18n import Translator
from api.dashboard.render import Formatter
from api.dashboard.timeline import sentence
from api.services import Services
from emails.mailers import OutboxMailer, SendGridMailer, SmtpMailer
from emails.opt_out_links import MAX_TOKEN_CHARS, LinkExpired, LinkRefused, OptOutLinks
from emails.survey_links import SurveyLinks
from models import limits
from models.activity_io import SendEmailInput
from models.email_categories import EmailCategory
from models.events import Cancelled
from models.tables import CustomerContact, EmailLedgerEntry, EmailOptOut
from records.database import Database
from records.email_events import process_events
from records.email_opt_outs import Source, choices_of, opt_outs_of, set_choice
from records.reports import TimelineRow
from records.tokens import TokenRole
from testkit.factories import (
    PUBLIC_URL,
    SURVEY_SECRET,
    make_handoff,
    make_mail_activities,
    make_playbook,
    store_customer,
)
from testkit.sendgrid import SendGridServer
from tests.support.api_harness import ApiHarness
from tests.support.mail import WORKFLOW_CONTEXTS
from tests.support.workflow_harness import Harness, save_history, through_training, until_sent

BASE_URL = "http://liftoff.test"
ADMIN = "admin@acme.example"
BOSS = "boss@acme.example"
USER = "user@acme.example"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
YEAR = limits.OPT_OUT_LINK_DAYS * 86_400


def links(clock: float | None = None) -> OptOutLinks:
    return OptOutLinks(
        SURVEY_SECRET, PUBLIC_URL, clock=(lambda: clock) if clock is not None else time.time
    )


def a_token(
    signer: OptOutLinks | None = None,
    *,
    customer_id: str = "acme",
    email: str = ADMIN,
    category: EmailCategory = EmailCategory.STEP,
) -> str:
    return (signer or links()).token(customer_id=customer_id, email=email, category=category)


def choose(
    database: Database,
    category: EmailCategory,
    opted_out: bool,
    *,
    email: str = ADMIN,
    customer_id: str = "acme",
    at: datetime | None = None,
) -> bool:
    with database.session() as session:
        return set_choice(
            session,
            customer_id=customer_id,
            email=email,
            category=category,
            opted_out=opted_out,
            at=at or datetime.now(UTC),
            source=Source.PREFERENCE_PAGE,
        )


def read_outbox(outbox: Path) -> list[Message]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=default_policy)
        for path in sorted(outbox.glob("*.eml"))
    ]


def ledger_status(database: Database, ledger_key: str, recipient: str) -> str:
    with database.session() as session:
        row = session.get(EmailLedgerEntry, ("acme", ledger_key, recipient))
    assert row is not None
    return row.status


def token_of(header: str) -> str:
    """The token of a `List-Unsubscribe: <https://.../u/<token>>` header."""
    assert header.startswith(f"<{PUBLIC_URL}/u/") and header.endswith(">"), header
    return header[len(f"<{PUBLIC_URL}/u/") : -1]


# Links


def test_a_link_names_contact_and_category_and_a_changed_expired_or_foreign_one_is_refused() -> (
    None
):
    token = a_token(category=EmailCategory.PROPOSAL, email=" Admin@Acme.example ")
    claim = links().read(token)
    assert (claim.customer_id, claim.email, claim.category) == (
        "acme",
        ADMIN,
        EmailCategory.PROPOSAL,
    )
    with pytest.raises(LinkRefused):
        links().read(token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
    with pytest.raises(LinkRefused):  # another secret signed it
        OptOutLinks("another-secret-" + "o" * 32, PUBLIC_URL).read(token)
    with pytest.raises(LinkRefused):
        links().read("x" * (MAX_TOKEN_CHARS + 1))
    # A survey's score link is signed with the same secret but cannot stand for this one.
    survey = SurveyLinks(SURVEY_SECRET, PUBLIC_URL).token(
        customer_id="acme",
        touchpoint="after_kickoff",
        role="administrator",
        email=ADMIN,
        score=0,
        valid_seconds=3600,
    )
    with pytest.raises(LinkRefused):
        links().read(survey)
    # Valid for a year, refused after.
    old = a_token(links(time.time() - YEAR + 60))
    assert links().read(old).email == ADMIN
    with pytest.raises(LinkExpired):
        links().read(a_token(links(time.time() - YEAR - 60)))
    # Operational mail has no link at all.
    with pytest.raises(ValueError, match="no unsubscribe link"):
        a_token(category=EmailCategory.OPERATIONAL)


# The store, on SQLite and PostgreSQL


def test_a_choice_stands_until_a_newer_one_and_a_late_older_change_does_not_undo_it(
    database: Database,
) -> None:
    store_customer(database, make_handoff(customer_id="acme"))
    now = datetime.now(UTC)
    assert choose(database, EmailCategory.SURVEY, True, at=now)
    # An unsubscribe event SendGrid delivered late, older than the choice: nothing.
    assert not choose(database, EmailCategory.SURVEY, False, at=now - timedelta(minutes=5))
    assert choices_of(database, "acme", "ADMIN@acme.example") == {
        EmailCategory.STEP: False,
        EmailCategory.PROPOSAL: False,
        EmailCategory.SURVEY: True,
    }
    # A newer resubscribe stands, and the row is kept to show it happened.
    assert choose(database, EmailCategory.SURVEY, False, at=now + timedelta(minutes=5))
    [row] = opt_outs_of(database, "acme")
    assert (row.email, row.category, row.opted_out) == (ADMIN, "survey", False)
    assert choices_of(database, "acme", ADMIN)[EmailCategory.SURVEY] is False
    with pytest.raises(ValueError, match="cannot be opted out of"):
        choose(database, EmailCategory.OPERATIONAL, True)


# The send activity, on SQLite and PostgreSQL


def test_an_opted_out_category_is_skipped_for_that_contact_only_and_operational_mail_never(
    database: Database, tmp_path: Path
) -> None:
    store_customer(database, make_handoff(customer_id="acme"))
    outbox = tmp_path / "outbox"
    mail = make_mail_activities(database, OutboxMailer(outbox), opt_out_links=links())
    env = ActivityEnvironment()
    choose(database, EmailCategory.PROPOSAL, True)

    def send(ledger_key: str, template: str, category: EmailCategory, to: list[str]) -> Any:
        return env.run(
            mail.send_email,
            SendEmailInput(
                ledger_key=ledger_key,
                customer_id="acme",
                template=template,
                to=to,
                context=WORKFLOW_CONTEXTS[template],
                category=category,
            ),
        )

    proposal = send("stall:1:proposal", "stall_proposal", EmailCategory.PROPOSAL, [ADMIN, BOSS])
    assert (proposal.sent, proposal.opted_out) == ([BOSS], [ADMIN])
    assert ledger_status(database, "stall:1:proposal", ADMIN) == "opted_out"
    [to_boss] = read_outbox(outbox)
    assert to_boss["To"] == BOSS and to_boss["X-Liftoff-Category"] == "proposal"
    assert to_boss["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    claim = links().read(token_of(str(to_boss["List-Unsubscribe"])))
    assert (claim.email, claim.category) == (BOSS, EmailCategory.PROPOSAL)

    # The same contact still gets the categories they did not leave.
    step = send("campaign:A:welcome:administrator", "stall_proposal", EmailCategory.STEP, [ADMIN])
    assert (step.sent, step.opted_out) == ([ADMIN], [])

    # Operational mail: no link, and sent whatever the contact left.
    for category in (EmailCategory.STEP, EmailCategory.SURVEY):
        choose(database, category, True)
    task = send("task:acme-1", "task_assigned", EmailCategory.OPERATIONAL, [ADMIN])
    assert task.sent == [ADMIN]
    operational = read_outbox(outbox)[-1]
    assert operational["X-Liftoff-Category"] == "operational"
    assert operational["List-Unsubscribe"] is None

    # Rejoined before a retry: the row left "opted_out" is sent then, once.
    choose(database, EmailCategory.PROPOSAL, False)
    again = send("stall:1:proposal", "stall_proposal", EmailCategory.PROPOSAL, [ADMIN, BOSS])
    assert (again.sent, again.already_sent, again.opted_out) == ([ADMIN], [BOSS], [])
    assert ledger_status(database, "stall:1:proposal", ADMIN) == "sent"
    assert [str(m["To"]) for m in read_outbox(outbox)] == [BOSS, ADMIN, ADMIN, ADMIN]


# What the mailers put on the wire


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTPServer, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def test_smtp_and_sendgrid_carry_the_signed_one_click_link_and_operational_mail_none(
    sqlite_database: Database, smtp_server: tuple[Mailbox, int]
) -> None:
    store_customer(sqlite_database, make_handoff(customer_id="acme"))
    mailbox, port = smtp_server
    # A target configured before Liftoff served its own: ours wins, and operational mail
    # gets neither.
    configured = "https://crm.example/unsubscribe?who={recipient}"
    smtp = SmtpMailer("127.0.0.1", port, starttls=False, timeout=5, unsubscribe_url=configured)
    mail = make_mail_activities(sqlite_database, smtp, opt_out_links=links())
    env = ActivityEnvironment()
    for key, template, category in [
        ("survey:after_kickoff:administrator", "stall_proposal", EmailCategory.SURVEY),
        ("task:acme-1", "task_assigned", EmailCategory.OPERATIONAL),
    ]:
        env.run(
            mail.send_email,
            SendEmailInput(
                ledger_key=key,
                customer_id="acme",
                template=template,
                to=[ADMIN],
                context=WORKFLOW_CONTEXTS[template],
                category=category,
            ),
        )
    survey, task = mailbox.messages
    assert survey["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    claim = links().read(token_of(str(survey["List-Unsubscribe"])))
    assert (claim.customer_id, claim.email, claim.category) == ("acme", ADMIN, "survey")
    assert task["List-Unsubscribe"] is None and task["List-Unsubscribe-Post"] is None

    # SendGrid: the same headers in v3's `headers`, the category in custom_args (it comes
    # back on group events).
    sendgrid = SendGridMailer(SecretStr("SG.test"), unsubscribe_url=configured)
    composed = mail._compose(  # the message as the activity hands it to any mailer
        SendEmailInput(
            ledger_key="survey:after_kickoff:administrator",
            customer_id="acme",
            template="stall_proposal",
            to=[ADMIN],
            context=WORKFLOW_CONTEXTS["stall_proposal"],
            category=EmailCategory.SURVEY,
        ),
        ADMIN,
    )
    body = sendgrid.request_body(composed)
    assert body["custom_args"]["category"] == "survey"
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert links().read(token_of(body["headers"]["List-Unsubscribe"])).email == ADMIN
    operational = mail._compose(
        SendEmailInput(
            ledger_key="task:acme-1",
            customer_id="acme",
            template="task_assigned",
            to=[ADMIN],
            context=WORKFLOW_CONTEXTS["task_assigned"],
            category=EmailCategory.OPERATIONAL,
        ),
        ADMIN,
    )
    assert "headers" not in sendgrid.request_body(operational)


def test_sendgrid_takes_the_link_and_a_scheduled_copy_is_withdrawn_when_the_contact_leaves(
    database: Database, sendgrid_server: SendGridServer
) -> None:
    store_customer(database, make_handoff(customer_id="acme"))
    mailer = SendGridMailer(
        SecretStr(sendgrid_server.api_key),
        host=sendgrid_server.url,
        send_delay=timedelta(minutes=15),
    )
    mail = make_mail_activities(database, mailer, opt_out_links=links())
    request = SendEmailInput(
        ledger_key="campaign:A:welcome:administrator",
        customer_id="acme",
        template="stall_proposal",
        to=[ADMIN],
        context=WORKFLOW_CONTEXTS["stall_proposal"],
        category=EmailCategory.STEP,
    )
    # SendGrid took the message (its v3 schema checked by the loopback) and the worker
    # never heard; the contact leaves step emails before the retry.
    sendgrid_server.drop_after_accept_next()
    with pytest.raises(ApplicationError):
        ActivityEnvironment().run(mail.send_email, request)
    [first] = sendgrid_server.accepted
    assert first["custom_args"]["category"] == "step"
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert links().read(token_of(first["headers"]["List-Unsubscribe"])).email == ADMIN
    choose(database, EmailCategory.STEP, True)

    retried = ActivityEnvironment().run(mail.send_email, request)

    assert (retried.sent, retried.opted_out) == ([], [ADMIN])
    assert sendgrid_server.cancelled == {first["batch_id"]}
    assert ledger_status(database, request.ledger_key, ADMIN) == "opted_out"


# The workflow: the campaign skips the category and the timeline says so


async def test_the_campaign_skips_a_contacts_left_category_and_the_timeline_says_so(
    h: Harness,
) -> None:
    handoff = make_handoff(purposes=["A"])
    choose(h.database, EmailCategory.STEP, True, customer_id=handoff.customer_id)
    handle = await h.start(handoff, make_playbook(campaign=True, surveys=True))
    await through_training(h, handle)
    await until_sent(h, handle, "A:welcome")
    status = await h.status(handle)

    received = {(str(m["To"]), str(m["X-Liftoff-Ledger-Key"])) for m in h.emails()}
    assert (BOSS, "campaign:A:welcome:decision_maker") in received
    assert (USER, "campaign:A:welcome:end_user") in received
    assert (ADMIN, "campaign:A:welcome:administrator") not in received
    # Other categories still reach the same contact.
    assert (ADMIN, "survey:after_kickoff:administrator") in received
    # The kickoff step may have been due too, by the clock's time of day: read the welcome's.
    [entry] = [
        e
        for e in h.timeline(handoff.customer_id)
        if e.kind == "email_opted_out" and ":A:welcome:" in e.summary
    ]
    assert entry.summary == (
        f"not sent: {ADMIN} opted out of step emails (campaign:A:welcome:administrator)"
    )
    assert entry.details["recipients"] == [ADMIN] and entry.details["category"] == "step"
    assert status.state.failures == []
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("campaign_step_opted_out", (await handle.fetch_history()).to_json())


def test_the_timeline_entry_reads_in_the_pages_language() -> None:
    row = TimelineRow(
        seq=9,
        at=datetime.now(UTC),
        kind="email_opted_out",
        stage="adoption",
        summary="not sent: ...",
        details={"recipients": [ADMIN], "category": "proposal", "ledger_key": "stall:1:proposal"},
    )
    now = datetime.now(UTC)
    assert sentence(row, Formatter(Translator("en"), now)) == (
        f"Not sent: {ADMIN} opted out of proposals"
    )
    assert sentence(row, Formatter(Translator("ja"), now)) == (
        f"未送信：{ADMIN} は提案の配信を停止しています"
    )


# The one-click POST and the preference page, on SQLite and PostgreSQL


@pytest.fixture
async def web(database: Database) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    services = Services(
        None,  # type: ignore[arg-type]  # these routes never ask Temporal
        database,
        make_playbook(),
        opt_out_links=links(),
    )
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client, database


def ticked(page: str) -> dict[str, bool]:
    found: dict[str, bool] = {}
    for category in ("step", "proposal", "survey"):
        start = page.index(f'data-category="{category}"')
        found[category] = " checked" in page[start : page.index(">", start)]
    return found


async def test_one_click_post_leaves_only_its_category_answering_200_without_redirect(
    web: tuple[httpx.AsyncClient, Database],
) -> None:
    client, database = web
    store_customer(database, make_handoff(customer_id="acme"))
    token = a_token(category=EmailCategory.PROPOSAL)

    # A mail scanner fetching the link changes nothing.
    shown = await client.get(f"/u/{token}")
    assert shown.status_code == 200 and ticked(shown.text) == dict.fromkeys(
        ticked(shown.text), True
    )
    assert opt_outs_of(database, "acme") == []

    # As a mailbox provider posts it: no cookie, no origin (or its own), form-encoded or
    # multipart.
    clicked = await client.post(f"/u/{token}", data=ONE_CLICK)
    assert clicked.status_code == 200 and "location" not in clicked.headers
    assert "no longer receive Suggestions when usage stalls" in clicked.text
    assert choices_of(database, "acme", ADMIN) == {
        EmailCategory.STEP: False,
        EmailCategory.PROPOSAL: True,
        EmailCategory.SURVEY: False,
    }
    survey_token = a_token(category=EmailCategory.SURVEY)
    multipart = await client.post(
        f"/u/{survey_token}",
        files={"List-Unsubscribe": (None, "One-Click")},
        headers={"Origin": "https://mail.example"},
    )
    assert multipart.status_code == 200
    [proposal, survey] = opt_outs_of(database, "acme")
    assert (proposal.category, proposal.opted_out, proposal.source) == (
        "proposal",
        True,
        "one_click",
    )
    assert (survey.category, survey.opted_out) == ("survey", True)


async def test_the_preference_page_speaks_the_customers_language_and_resubscribes(
    web: tuple[httpx.AsyncClient, Database],
) -> None:
    client, database = web
    store_customer(database, make_handoff(customer_id="sakura", locale="ja", name="株式会社さくら"))
    choose(database, EmailCategory.STEP, True, customer_id="sakura")
    token = a_token(customer_id="sakura")

    page = await client.get(f"/u/{token}")
    assert page.status_code == 200
    assert "メール配信設定" in page.text and "株式会社さくら" in page.text
    assert ticked(page.text) == {"step": False, "proposal": True, "survey": True}
    # Operational mail has no checkbox, and the page says why.
    assert 'value="operational"' not in page.text and "配信停止の対象外" in page.text
    assert "<style" not in page.text and " style=" not in page.text
    assert "form-action 'self'" in page.headers["content-security-policy"]
    english = await client.get(f"/u/{token}", params={"lang": "en"})
    assert "Email preferences" in english.text
    # Saving keeps the language the reader switched to.
    assert f'action="/u/{token}?lang=en"' in english.text
    assert f'action="/u/{token}"' in page.text

    # Rejoin step emails, leave surveys: one save.
    saved = await client.post(
        f"/u/{token}", data={"choices": "1", "subscribed": ["step", "proposal"]}
    )
    assert saved.status_code == 200 and "設定を保存しました" in saved.text
    assert ticked(saved.text) == {"step": True, "proposal": True, "survey": False}
    assert choices_of(database, "sakura", ADMIN) == {
        EmailCategory.STEP: False,
        EmailCategory.PROPOSAL: False,
        EmailCategory.SURVEY: True,
    }


async def test_a_tampered_expired_or_unreadable_request_is_refused_with_a_page_changing_nothing(
    web: tuple[httpx.AsyncClient, Database],
) -> None:
    client, database = web
    store_customer(database, make_handoff(customer_id="acme"))
    token = a_token()
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    expired = a_token(links(time.time() - YEAR - 60))
    for method in ("GET", "POST"):
        bad = await client.request(method, f"/u/{tampered}", data=ONE_CLICK)
        assert bad.status_code == 400 and "This link does not work" in bad.text
        gone = await client.request(method, f"/u/{expired}", data=ONE_CLICK)
        assert gone.status_code == 410 and "Unsubscribe links stay valid for a year" in gone.text
        long = await client.request(method, f"/u/{'x' * (MAX_TOKEN_CHARS + 1)}", data=ONE_CLICK)
        assert long.status_code == 400
    japanese = await client.get(f"/u/{expired}", headers={"Accept-Language": "ja"})
    assert "有効期限が切れています" in japanese.text
    # Signed by us for a customer this database never held.
    assert (await client.get(f"/u/{a_token(customer_id='nobody')}")).status_code == 400
    # A post that is neither one-click nor the page's form, or names no category we know.
    assert (await client.post(f"/u/{token}", data={"List-Unsubscribe": "yes"})).status_code == 400
    unknown = await client.post(f"/u/{token}", data={"choices": "1", "subscribed": ["operational"]})
    assert unknown.status_code == 400
    # Bodies are bounded before they are read.
    huge = await client.post(f"/u/{token}", data={"choices": "1", "x": "y" * 10_000})
    assert huge.status_code == 413
    assert opt_outs_of(database, "acme") == []


async def test_without_the_secret_the_page_says_unsubscribing_is_not_set_up(
    database: Database,
) -> None:
    services = Services(None, database, make_playbook())  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        page = await client.post(f"/u/{a_token()}", data=ONE_CLICK)
    assert page.status_code == 503 and "LIFTOFF_SURVEY_SECRET" in page.text


# SendGrid's group events, on SQLite and PostgreSQL


def group_event(kind: str, at: datetime, *, category: str = "proposal", n: int = 0) -> Any:
    return {
        "event": kind,
        "email": "Admin@acme.example",
        "timestamp": int(at.timestamp()),
        "sg_event_id": f"{kind}-{n}",
        "customer_id": "acme",
        "ledger_key": "stall:1:proposal",
        "category": category,
        "asm_group_id": 101,
    }


def test_sendgrid_group_unsubscribe_and_resubscribe_map_onto_the_same_store(
    database: Database,
) -> None:
    store_customer(database, make_handoff(customer_id="acme"))
    now = datetime.now(UTC).replace(microsecond=0)

    def deliver(*events: Any) -> Any:
        return process_events(
            database,
            json.dumps(list(events)).encode(),
            signature=None,
            timestamp=None,
            public_key=None,
        )

    left = deliver(group_event("group_unsubscribe", now))
    assert left.opted_out == [f"{ADMIN}: proposal"] and left.suppressed == []
    assert choices_of(database, "acme", ADMIN)[EmailCategory.PROPOSAL] is True
    back = deliver(group_event("group_resubscribe", now + timedelta(minutes=1), n=1))
    assert back.resubscribed == [f"{ADMIN}: proposal"]
    # An unsubscribe older than the resubscribe, delivered late: nothing changes.
    late = deliver(group_event("group_unsubscribe", now - timedelta(minutes=1), n=2))
    assert late.opted_out == [] and late.recorded == 1
    [row] = opt_outs_of(database, "acme")
    assert (row.opted_out, row.source) == (False, "sendgrid")
    # The contact was never suppressed: other categories go on.
    with database.session() as session:
        contact = session.exec(select(CustomerContact).where(CustomerContact.email == ADMIN)).one()
    assert not contact.unsubscribed
    # A message sent before categories existed: a group unsubscribe suppresses, as before.
    legacy = deliver(group_event("group_unsubscribe", now, category="", n=3))
    assert legacy.suppressed == [ADMIN] and legacy.opted_out == []


# The CSM sees each contact's opt-outs on the customer's page


async def test_the_csm_sees_each_contacts_opt_outs_on_the_customers_page(api: ApiHarness) -> None:
    csm = f"csm-{uuid.uuid4().hex[:8]}@liftoff.example"
    handoff = make_handoff(csm=csm)
    await api.services.onboarding.start(handoff, make_playbook())
    await api.past_handoff(handoff.customer_id, timeout=30.0)
    for category in (EmailCategory.SURVEY, EmailCategory.PROPOSAL):
        choose(api.database, category, True, customer_id=handoff.customer_id)
    choose(api.database, EmailCategory.STEP, False, customer_id=handoff.customer_id, email=BOSS)

    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        page = (await browser.get(f"/customers/{handoff.customer_id}")).text
        japanese = (await browser.get(f"/customers/{handoff.customer_id}?lang=ja")).text
    admin = page[page.index(f'data-contact="{ADMIN}"') :]
    admin = admin[: admin.index("</li>")]
    assert 'data-opted-out="proposal survey"' in admin
    assert "opted out of: proposals, surveys" in admin
    boss = page[page.index(f'data-contact="{BOSS}"') :]
    assert "opted out" not in boss[: boss.index("</li>")]  # resubscribed counts as in
    assert "配信停止：提案, アンケート" in japanese


def test_the_store_holds_one_row_per_contact_and_category(database: Database) -> None:
    store_customer(database, make_handoff(customer_id="acme"))
    for category in (EmailCategory.STEP, EmailCategory.STEP, EmailCategory.SURVEY):
        choose(database, category, True)
    with database.session() as session:
        rows = session.exec(select(EmailOptOut)).all()
    assert sorted((r.email, r.category) for r in rows) == [(ADMIN, "step"), (ADMIN, "survey")]
