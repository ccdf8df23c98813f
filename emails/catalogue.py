"""The template catalogue: every email a playbook makes the workflow send, with
sample data, so a playbook and its templates can be checked before any customer
depends on them (`liftoff playbook validate`, `liftoff email preview`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

import jinja2
import jinja2.meta
from pydantic import BaseModel, JsonValue
from temporalio.exceptions import ApplicationError

import emails.contexts as contexts
from emails.render import DEFAULT_LOCALE, RenderedEmail, pick_template, render_email
from emails.survey_links import SCORE_LINKS, SurveyLinks
from models.handoff import Locale, Role
from models.playbook import CampaignStep, ChoosePurposeStep, Playbook, Purpose, Touchpoint

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


# Signs the sample's score links: a preview shows links as recipients get them.
SAMPLE_SURVEY_LINKS = SurveyLinks("sample-secret-" + "x" * 32, "https://liftoff.example")


def _sample_customer(locale: str) -> str:
    return SAMPLE_CUSTOMER_NAMES.get(locale, SAMPLE_CUSTOMER_NAMES[DEFAULT_LOCALE])


@dataclass(frozen=True)
class EmailSample:
    """One email as the workflow would send it: template, recipient role, locale, context."""

    template: str
    role: Role | None
    locale: str
    context: dict[str, JsonValue]
    # Set for purpose steps; `step` alone is "campaign.choose_purpose" or "surveys.<touchpoint>".
    purpose: str | None = None
    step: str | None = None
    # Set for surveys: the survey's text differs per touchpoint.
    touchpoint: Touchpoint | None = None

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
        """A file name for a preview: purpose and step (or template and touchpoint), role
        and locale, dot-separated."""
        if self.purpose:
            head = [self.purpose, self.step]
        else:
            head = [self.template, self.touchpoint.value if self.touchpoint else None]
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
        context=contexts.step_context(
            customer, purpose, step, locale, SAMPLE_KEY_ACTIONS_LAST_WEEK
        ),
        purpose=purpose.id,
        step=step.id,
    )


def choose_purpose_sample(
    playbook: Playbook, choose: ChoosePurposeStep, role: Role, locale: str
) -> EmailSample:
    context = contexts.choose_purpose_context(_sample_customer(locale), playbook.purposes, locale)
    return EmailSample(
        choose.template,
        role,
        locale,
        context,  # The playbook section that defines it.
        step="campaign.choose_purpose",
    )


def workflow_sample(playbook: Playbook, template: str, locale: str) -> EmailSample:
    """One of WORKFLOW_EMAILS with the context the workflow gives it."""
    customer = _sample_customer(locale)
    context: dict[str, JsonValue]
    if template == contexts.STALL_PROPOSAL:
        titles = [purpose.title_in(locale) for purpose in playbook.purposes[:2]]
        context = contexts.stall_proposal(customer_name=customer, purpose_titles=titles)
    elif template == contexts.TASK_ASSIGNED:
        context = contexts.task_assigned(
            customer_name=customer,
            customer_id=SAMPLE_CUSTOMER_ID,
            task_id=f"{SAMPLE_CUSTOMER_ID}-3",
            kind="stall_follow_up",
            title="Usage stalled: reach out to the customer",
            due_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
            assignee=SAMPLE_CSM,
        )
    elif template == contexts.ONBOARDING_FAILED:
        context = contexts.onboarding_failed(
            customer_name=customer,
            customer_id=SAMPLE_CUSTOMER_ID,
            deadline_days=playbook.deadline.days,
            stage="adoption",
        )
    else:
        raise ValueError(f"{template} is not sent by the workflow outside the campaign")
    return EmailSample(template, WORKFLOW_EMAILS[template], locale, context)


def survey_sample(
    playbook: Playbook, touchpoint: Touchpoint, role: Role, locale: str
) -> EmailSample:
    """A survey as the workflow queues it (workflows/surveys.py), with the score links
    the mail activity adds for its recipient."""
    if playbook.surveys is None:
        raise ValueError("the playbook sends no survey")
    context = contexts.survey_context(
        customer_name=_sample_customer(locale),
        customer_id=SAMPLE_CUSTOMER_ID,
        touchpoint=touchpoint.value,
        valid_for=playbook.surveys.valid_for,
    )
    links = SAMPLE_SURVEY_LINKS.score_links(
        context[contexts.SURVEY],  # type: ignore[arg-type]
        role.value,
        SAMPLE_RECIPIENT,
    )
    return EmailSample(
        playbook.surveys.template,
        role,
        locale,
        {**context, SCORE_LINKS: links},
        step=f"surveys.{touchpoint.value}",
        touchpoint=touchpoint,
    )


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
    if playbook.surveys is not None:
        samples += [
            survey_sample(playbook, touchpoint, role, locale)
            for touchpoint, roles in playbook.surveys.touchpoints.items()
            for role in roles
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
        chosen = pick_template(templates, sample.template, sample.locale, ext, role, fallback=False)
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
