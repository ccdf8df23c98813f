"""Email figures for `make bench`: templates rendered, and emails handed to SendGrid, per second.

Rendering: every shipped template in templates/email, in each locale and role
variant it ships in, through `activities.mail.render_email` with one jinja2
Environment, so compiled templates are cached as in the worker and the figure
covers whatever rendering does (layout, CSS, ...). One render is one email: its
text part (with the subject) and its HTML part. Sample contexts come from the
shipped playbook through the workflow's own helpers (workflows/campaign.py);
the workflow's notices (tasks, failure, stall proposal) copy what
workflows/onboarding.py sends.

Sending: `MailActivities.send_email`, run in an activity context, with the real
`sendgrid` client against the loopback SendGrid the tests use too
(testkit/sendgrid.py) and the exactly-once ledger on a SQLite database in a
temporary directory: one task email to one recipient per call, each under a
distinct ledger key, one after the other. The loopback server runs in this
process and checks each body against SendGrid's schema, so its work is in the
figure too; a real provider adds network latency.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import JsonValue, SecretStr
from temporalio.testing import ActivityEnvironment

from emails.catalogue import WORKFLOW_EMAILS, survey_sample, workflow_sample
from emails.contexts import choose_purpose_context, step_context
from emails.mailers import SendGridMailer
from emails.render import build_template_environment, render_email
from models.activity_io import SendEmailInput
from models.playbook import CampaignStep, Playbook, Purpose
from records.database import Database
from records.playbooks import load_playbook
from testkit.factories import REPO, TEMPLATES, make_mail_activities
from testkit.sendgrid import serve

PLAYBOOK = REPO / "playbooks" / "default.toml"
CUSTOMER_NAME = "Acme Logistics"
RECIPIENT = "someone@acme.example"
# Below the nudge's threshold, so the sample reads like an email that goes out.
KEY_ACTIONS_LAST_WEEK = 3
DEFAULT_SENDS = 500
# Rendering repeats every template for at least this long.
RENDER_SECONDS = 1.0
SEND_TEMPLATE = "task_assigned"


@dataclass(frozen=True)
class ShippedTemplate:
    name: str
    role: str | None
    locale: str

    @property
    def label(self) -> str:
        return ".".join(part for part in (self.name, self.role, self.locale) if part)


@dataclass
class MailFigures:
    templates: int  # (template, role, locale) variants rendered
    renders: int
    render_seconds: float
    sends: int
    send_seconds: float
    # What the loopback SendGrid accepted: equals `sends` when nothing was lost.
    accepted: int

    @property
    def renders_per_second(self) -> float:
        return self.renders / self.render_seconds if self.render_seconds else 0.0

    @property
    def sends_per_second(self) -> float:
        return self.sends / self.send_seconds if self.send_seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "renders_per_second": self.renders_per_second,
            "sends_per_second": self.sends_per_second,
        }


def shipped_templates(directory: Path = TEMPLATES) -> list[ShippedTemplate]:
    """Every `<name>[.<role>].<locale>.txt` with its .html twin; the layout is not an email."""
    found = []
    for text in sorted(directory.glob("*.txt")):
        parts = text.name.split(".")
        if len(parts) not in (3, 4) or not text.with_suffix(".html").exists():
            raise ValueError(f"unexpected email template file name: {text.name}")
        role = parts[1] if len(parts) == 4 else None
        found.append(ShippedTemplate(parts[0], role, parts[-2]))
    return found


def _campaign_step(playbook: Playbook, template: ShippedTemplate) -> tuple[Purpose, CampaignStep]:
    """A playbook step sending this template (to this role); one with a note if any."""
    steps = [
        (purpose, step)
        for purpose in playbook.purposes
        for step in purpose.steps
        if step.template == template.name
        and (template.role is None or template.role in {role.value for role in step.roles})
    ]
    if not steps:
        raise LookupError(
            f"no sample context for {template.label}: no step of {PLAYBOOK.name} sends it; "
            "add the workflow's context to bench/mail_bench.py"
        )
    # A note is extra text the template renders; prefer the sample that has one.
    return max(steps, key=lambda found: bool(found[1].note.get(template.locale)))


def sample_context(template: ShippedTemplate, playbook: Playbook) -> dict[str, JsonValue]:
    """What the workflow sends with this template, plus the recipient send_email adds."""
    choose = playbook.campaign.choose_purpose if playbook.campaign else None
    context: dict[str, JsonValue]
    if template.name in WORKFLOW_EMAILS:
        context = workflow_sample(playbook, template.name, template.locale).context
    elif choose is not None and template.name == choose.template:
        context = choose_purpose_context(CUSTOMER_NAME, playbook.purposes, template.locale)
    elif playbook.surveys is not None and template.name == playbook.surveys.template:
        # The survey after kickoff, to its first role, score links signed as for a recipient.
        touchpoint, roles = next(iter(playbook.surveys.touchpoints.items()))
        context = survey_sample(playbook, touchpoint, roles[0], template.locale).context
    else:
        purpose, step = _campaign_step(playbook, template)
        context = step_context(CUSTOMER_NAME, purpose, step, template.locale, KEY_ACTIONS_LAST_WEEK)
    return {**context, "recipient": RECIPIENT}


def measure_rendering(min_seconds: float = RENDER_SECONDS) -> tuple[int, int, float]:
    """(variants, renders, seconds): every variant, over and over, for min_seconds."""
    environment = build_template_environment(TEMPLATES)
    playbook = load_playbook(PLAYBOOK)
    work = [(template, sample_context(template, playbook)) for template in shipped_templates()]
    if not work:
        raise RuntimeError(f"no email templates in {TEMPLATES}")

    def render_all() -> None:
        for template, context in work:
            render_email(environment, template.name, template.locale, context, role=template.role)

    render_all()  # compiles every template once, outside the measurement
    renders = 0
    started = time.perf_counter()
    elapsed = 0.0
    while elapsed < min_seconds:
        render_all()
        renders += len(work)
        elapsed = time.perf_counter() - started
    return len(work), renders, elapsed


def measure_sending(sends: int = DEFAULT_SENDS) -> tuple[int, float, int]:
    """(sends, seconds, accepted) through send_email, ledger on, to the loopback SendGrid."""
    context = workflow_sample(load_playbook(PLAYBOOK), SEND_TEMPLATE, "en").context
    activity = ActivityEnvironment()
    with tempfile.TemporaryDirectory(prefix="liftoff-mail-bench-") as scratch, serve() as server:
        database = Database(f"sqlite:///{Path(scratch) / 'ledger.db'}")
        database.migrate()
        try:
            mailer = SendGridMailer(SecretStr(server.api_key), host=server.url)
            mail = make_mail_activities(database, mailer)

            def send(key: str) -> None:
                email = SendEmailInput(
                    ledger_key=key,
                    customer_id="bench",
                    template=SEND_TEMPLATE,
                    to=[RECIPIENT],
                    context=context,
                )
                result = activity.run(mail.send_email, email)
                if result.sent != [RECIPIENT]:
                    raise RuntimeError(f"{key} was not sent: {result}")

            send("bench:warm-up")  # connections, compiled templates: not counted
            started = time.perf_counter()
            for index in range(sends):
                send(f"bench:{index}")
            elapsed = time.perf_counter() - started
        finally:
            database.dispose()
        return sends, elapsed, len(server.accepted) - 1


def run_mail_bench(sends: int = DEFAULT_SENDS) -> MailFigures:
    if sends < 1:
        raise ValueError(f"sends must be at least 1, not {sends}")
    templates, renders, render_seconds = measure_rendering()
    sent, send_seconds, accepted = measure_sending(sends)
    return MailFigures(templates, renders, render_seconds, sent, send_seconds, accepted)


def format_mail_report(figures: MailFigures) -> str:
    rows = [
        ("templates rendered per second (HTML + text)", f"{figures.renders_per_second:,.0f}"),
        (
            f"  renders of {figures.templates} template variants in {figures.render_seconds:.1f} s",
            f"{figures.renders:,}",
        ),
        ("emails handed to loopback SendGrid per second", f"{figures.sends_per_second:,.0f}"),
        ("  sends / accepted by the server", f"{figures.sends} / {figures.accepted}"),
        ("  time per send (ms)", f"{figures.send_seconds / figures.sends * 1000:.2f}"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [
        "Email: render_email over every shipped template, locale and role variant, one",
        "jinja2 Environment; then send_email, one recipient each, ledger on SQLite in a",
        "temporary directory, through the sendgrid client to the schema-checking",
        "loopback server (same process).",
        "",
    ]
    lines += [f"{label:{width}}  {value:>12}" for label, value in rows]
    return "\n".join(lines)
