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

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol, get_args

import css_inline
import jinja2
import jinja2.meta
from pydantic import BaseModel, JsonValue
from sqlalchemy import update
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

import workflows.campaign as campaign
import workflows.notices as notices
from activities.database import Database, insert_ignore
from models.activity_io import SendEmailInput, SendEmailResult
from models.handoff import Locale, Role
from models.playbook import CampaignStep, ChoosePurposeStep, Playbook, Purpose
from models.tables import CustomerContact, EmailLedgerEntry, utc_now

DEFAULT_LOCALE = "en"
SUBJECT_PREFIX = "Subject:"
# The error type of a message a provider refused for good (see activities/mailers.py).
MAIL_REFUSED = "MailRefused"


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> str:
        """Hand the message to the provider; returns its message id."""
        ...


class OutboxMailer:
    """Writes each message as one .eml file: the embedded default and the tests' mailbox."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def send(self, message: EmailMessage) -> str:
        if message["Message-ID"] is None:
            message["Message-ID"] = make_msgid(domain="liftoff.local")
        message_id = str(message["Message-ID"])
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


def build_template_environment(directory: Path) -> jinja2.Environment:
    """One environment per process: templates are compiled once and cached.

    HTML is autoescaped, and a variable the context lacks is an error, never blank.
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _template_error(name: str, err: jinja2.TemplateError) -> ApplicationError:
    """Retrying cannot mend a template: the send fails for good, naming file and line."""
    if isinstance(err, jinja2.TemplateSyntaxError):
        where = f"{err.name or name}, line {err.lineno}"
    else:
        # Jinja rewrites the traceback so that template frames carry the template's
        # file and line; the innermost one is where the error is.
        where = name
        tb = err.__traceback__
        while tb is not None:
            if "__jinja_exception__" in tb.tb_frame.f_globals:
                where = f"{Path(tb.tb_frame.f_code.co_filename).name}, line {tb.tb_lineno}"
            tb = tb.tb_next
    message = (
        f"uses the missing template {err.name}"
        if isinstance(err, jinja2.TemplateNotFound)
        else err.message or type(err).__name__
    )
    return ApplicationError(
        f"email template {where}: {message}", type="TemplateError", non_retryable=True
    )


def _pick(
    templates: jinja2.Environment,
    template: str,
    locale: str,
    ext: str,
    role: str | None,
    *,
    fallback: bool = True,
) -> jinja2.Template:
    """The role's own wording first, then the template every role shares; English last,
    unless `fallback` is off (checking a translation must not accept the English one)."""
    names = []
    for language in dict.fromkeys([locale, DEFAULT_LOCALE] if fallback else [locale]):
        if role is not None:
            names.append(f"{template}.{role}.{language}.{ext}")
        names.append(f"{template}.{language}.{ext}")
    try:
        return templates.select_template(names)
    except jinja2.TemplateNotFound as err:
        # Retrying cannot make a template appear: fail the send for good.
        raise ApplicationError(
            f"no email template {' or '.join(names)}", type="TemplateNotFound", non_retryable=True
        ) from err
    except jinja2.TemplateError as err:
        raise _template_error(names[0], err) from err


def _render(chosen: jinja2.Template, context: Mapping[str, object]) -> str:
    try:
        return chosen.render(context)
    except jinja2.TemplateError as err:
        raise _template_error(chosen.name or "?", err) from err


def _inline_css(name: str, html: str) -> str:
    """Many mail clients drop <style> blocks: the layout's rules become style attributes.
    Rendering never reaches the network, so remote stylesheets are not fetched."""
    try:
        return css_inline.inline(html, load_remote_stylesheets=False)
    except css_inline.InlineError as err:
        raise ApplicationError(
            f"email template {name}: cannot inline its CSS: {err}",
            type="TemplateError",
            non_retryable=True,
        ) from err


def render_email(
    templates: jinja2.Environment,
    template: str,
    locale: str,
    context: Mapping[str, object],
    role: str | None = None,
    *,
    fallback: bool = True,
) -> RenderedEmail:
    """The subject is the text template's first `Subject:` line, removed from the body.

    `fallback=False` refuses to stand in English for a missing translation.
    """
    text_template = _pick(templates, template, locale, "txt", role, fallback=fallback)
    html_template = _pick(templates, template, locale, "html", role, fallback=fallback)
    text = _render(text_template, context)
    html = _inline_css(html_template.name or template, _render(html_template, context))
    subject = ""
    body: list[str] = []
    for line in text.splitlines():
        if not subject and line.startswith(SUBJECT_PREFIX):
            subject = line[len(SUBJECT_PREFIX) :].strip()
            continue
        body.append(line)
    if not subject:
        raise ApplicationError(
            f"email template {text_template.name} has no {SUBJECT_PREFIX} line",
            type="TemplateError",
            non_retryable=True,
        )
    return RenderedEmail(subject, "\n".join(body).strip() + "\n", html)


def compose_message(rendered: RenderedEmail, *, sender: str, recipient: str) -> EmailMessage:
    """The message as mail clients see it: plain text, with the HTML as its alternative."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(usegmt=True)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


# The template catalogue: every email a playbook makes the workflow send, with
# sample data, so a playbook and its templates can be checked before any customer
# depends on them (`liftoff playbook validate`, `liftoff email preview`).

LOCALES: tuple[str, ...] = get_args(Locale)
SAMPLE_CUSTOMER_ID = "acme"
SAMPLE_CUSTOMER_NAMES = {"en": "Acme Logistics", "ja": "株式会社アクメ物流"}
SAMPLE_RECIPIENT = "someone@acme.example"
SAMPLE_CSM = "csm@cs.example"
SAMPLE_KEY_ACTIONS_LAST_WEEK = 2
# The emails the workflow sends besides campaign steps, and the role they go to
# (None: explicit addresses, the CSM or the leader). Their contexts are built in
# workflows/onboarding.py (_climb_ladder, _open_task, _fail); `workflow_sample`
# mirrors them and must follow any change there.
WORKFLOW_EMAILS: dict[str, Role | None] = {
    "stall_proposal": Role.ADMINISTRATOR,
    "task_assigned": None,
    "onboarding_failed": None,
}


def _sample_customer(locale: str) -> str:
    return SAMPLE_CUSTOMER_NAMES.get(locale, SAMPLE_CUSTOMER_NAMES[DEFAULT_LOCALE])


@dataclass(frozen=True)
class EmailSample:
    """One email as the workflow would send it: template, recipient role, locale, context."""

    template: str
    role: Role | None
    locale: str
    context: dict[str, JsonValue]
    # Set for purpose steps; `step` alone is "campaign.choose_purpose".
    purpose: str | None = None
    step: str | None = None

    @property
    def where(self) -> str:
        parts = [f"purpose {self.purpose}"] if self.purpose else []
        if self.step:
            parts.append(f"step {self.step}" if self.purpose else self.step)
        if self.role:
            parts.append(f"role {self.role.value}")
        parts += [f"locale {self.locale}", f"template {self.template}"]
        return ", ".join(parts)

    @property
    def file_stem(self) -> str:
        """A file name for a preview: purpose, step, role and locale, dot-separated."""
        head = [self.purpose, self.step] if self.purpose else [self.template]
        role = self.role.value if self.role else None
        return ".".join(part for part in [*head, role, self.locale] if part)

    def render(self, templates: jinja2.Environment, *, fallback: bool = True) -> RenderedEmail:
        context = {**self.context, "recipient": SAMPLE_RECIPIENT}
        role = self.role.value if self.role else None
        return render_email(
            templates, self.template, self.locale, context, role=role, fallback=fallback
        )


def step_sample(purpose: Purpose, step: CampaignStep, role: Role, locale: str) -> EmailSample:
    customer = _sample_customer(locale)
    return EmailSample(
        template=step.template,
        role=role,
        locale=locale,
        context=campaign.step_context(
            customer, purpose, step, locale, SAMPLE_KEY_ACTIONS_LAST_WEEK
        ),
        purpose=purpose.id,
        step=step.id,
    )


def choose_purpose_sample(
    playbook: Playbook, choose: ChoosePurposeStep, role: Role, locale: str
) -> EmailSample:
    context = campaign.choose_purpose_context(_sample_customer(locale), playbook.purposes)
    return EmailSample(
        choose.template, role, locale, context, step=f"campaign.{campaign.CHOOSE_PURPOSE}"
    )


def workflow_sample(playbook: Playbook, template: str, locale: str) -> EmailSample:
    """One of WORKFLOW_EMAILS with the context the workflow gives it."""
    customer = _sample_customer(locale)
    context: dict[str, JsonValue]
    if template == notices.STALL_PROPOSAL:
        titles = [purpose.title for purpose in playbook.purposes[:2]]
        context = notices.stall_proposal(customer_name=customer, purpose_titles=titles)
    elif template == notices.TASK_ASSIGNED:
        context = notices.task_assigned(
            customer_name=customer,
            customer_id=SAMPLE_CUSTOMER_ID,
            task_id=f"{SAMPLE_CUSTOMER_ID}-3",
            kind="stall_follow_up",
            title="Usage stalled: reach out to the customer",
            due_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
            assignee=SAMPLE_CSM,
        )
    elif template == notices.ONBOARDING_FAILED:
        context = notices.onboarding_failed(
            customer_name=customer,
            customer_id=SAMPLE_CUSTOMER_ID,
            deadline_days=playbook.deadline.days,
            stage="adoption",
        )
    else:
        raise ValueError(f"{template} is not sent by the workflow outside the campaign")
    return EmailSample(template, WORKFLOW_EMAILS[template], locale, context)


def email_catalogue(playbook: Playbook) -> list[EmailSample]:
    """Every email the playbook can make the workflow send, in every locale."""
    samples = [
        step_sample(purpose, step, role, locale)
        for purpose in playbook.purposes
        for step in purpose.steps
        for role in step.roles
        for locale in LOCALES
    ]
    choose = playbook.campaign.choose_purpose if playbook.campaign else None
    if choose is not None:
        samples += [
            choose_purpose_sample(playbook, choose, role, locale)
            for role in choose.roles
            for locale in LOCALES
        ]
    samples += [
        workflow_sample(playbook, template, locale)
        for template in WORKFLOW_EMAILS
        for locale in LOCALES
    ]
    return samples


class TemplateProblem(BaseModel):
    """Why one email of the catalogue cannot be sent as written."""

    where: str
    template: str
    locale: str
    role: str | None
    purpose: str | None
    step: str | None
    message: str

    def line(self) -> str:
        return f"{self.where}: {self.message}"


def check_templates(templates: jinja2.Environment, playbook: Playbook) -> list[TemplateProblem]:
    """Render every email of the playbook strictly; one problem per email that fails.

    A missing translation counts (no English stand-in), and so does a variable the
    workflow's context lacks, even in a branch the sample data does not take.
    """
    problems = []
    for sample in email_catalogue(playbook):
        message = _sample_problem(templates, sample)
        if message is not None:
            problems.append(
                TemplateProblem(
                    where=sample.where,
                    template=sample.template,
                    locale=sample.locale,
                    role=sample.role.value if sample.role else None,
                    purpose=sample.purpose,
                    step=sample.step,
                    message=message,
                )
            )
    return problems


def _sample_problem(templates: jinja2.Environment, sample: EmailSample) -> str | None:
    try:
        sample.render(templates, fallback=False)
    except ApplicationError as err:
        if err.type == "TemplateNotFound" and sample.locale != DEFAULT_LOCALE:
            try:
                sample.render(templates)
            except ApplicationError:
                return err.message
            return f"no {sample.locale} translation: {err.message}"
        return err.message
    context_names = {*sample.context, "recipient"}
    role = sample.role.value if sample.role else None
    unknown: set[str] = set()
    for ext in ("txt", "html"):
        chosen = _pick(templates, sample.template, sample.locale, ext, role, fallback=False)
        unknown |= {
            f"{name} ({where})"
            for name, where in _names_used(templates, chosen.name or "").items()
            if name not in context_names
        }
    if unknown:
        return f"undefined variable(s), not in the workflow's context: {', '.join(sorted(unknown))}"
    return None


def _names_used(templates: jinja2.Environment, name: str) -> dict[str, str]:
    """Context variables a template and the templates it extends or includes read, in
    every branch: variable -> the first template that reads it."""
    used: dict[str, str] = {}
    todo, seen = [name], set()
    while todo and templates.loader is not None:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.add(current)
        source = templates.loader.get_source(templates, current)[0]
        tree = templates.parse(source)
        for variable in sorted(jinja2.meta.find_undeclared_variables(tree)):
            if variable not in templates.globals:
                used.setdefault(variable, current)
        todo += [ref for ref in jinja2.meta.find_referenced_templates(tree) if ref]
    return used


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
