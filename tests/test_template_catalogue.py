"""The template catalogue: every email a playbook makes the workflow send, checked before
any customer depends on it (what `liftoff playbook validate` reports)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emails.catalogue import LOCALES, WORKFLOW_EMAILS, check_templates, email_catalogue
from emails.render import build_template_environment
from models.handoff import Role
from models.playbook import CampaignStep, Playbook, Purpose
from records.playbooks import load_playbook
from testkit.factories import REPO

SHIPPED_TEMPLATES = REPO / "templates" / "email"
SHIPPED_PLAYBOOKS = sorted((REPO / "playbooks").glob("*.toml"))


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A copy of the shipped templates that a test may break."""
    directory = tmp_path / "templates"
    shutil.copytree(SHIPPED_TEMPLATES, directory)
    return directory


def one_step_playbook(template: str = "welcome_pack") -> Playbook:
    """The shipped playbook with one purpose and one step to administrators and end users."""
    step = CampaignStep(id="welcome", template=template, roles=[Role.ADMINISTRATOR, Role.END_USER])
    purpose = Purpose(
        id="A",
        title="Digitise incoming documents",
        key_action="document_scanned",
        outcome="Share of incoming documents digitised",
        goal_key_actions=30,
        steps=[step],
    )
    shipped = load_playbook(REPO / "playbooks" / "default.toml")
    return shipped.model_copy(update={"purposes": [purpose]})


def write(directory: Path, name: str, text: str, html: str = "<p>{{ customer_name }}</p>") -> None:
    (directory / f"{name}.txt").write_text(text, encoding="utf-8")
    (directory / f"{name}.html").write_text(
        '{% extends "layout.html" %}{% block content %}' + html + "{% endblock %}",
        encoding="utf-8",
    )


def problems(templates: Path, playbook: Playbook) -> list[str]:
    return [p.line() for p in check_templates(build_template_environment(templates), playbook)]


@pytest.mark.parametrize("path", SHIPPED_PLAYBOOKS, ids=lambda path: path.name)
def test_shipped_playbooks_render_every_email_in_every_locale(path: Path) -> None:
    playbook = load_playbook(path)

    assert problems(SHIPPED_TEMPLATES, playbook) == []

    catalogue = email_catalogue(playbook)
    steps = {(s.purpose, s.step, s.role, s.locale) for s in catalogue if s.purpose}
    assert steps == {
        (purpose.id, step.id, role, locale)
        for purpose in playbook.purposes
        for step in purpose.steps
        for role in step.roles
        for locale in LOCALES
    }
    others = {(s.template, s.locale) for s in catalogue if s.purpose is None}
    assert {(t, locale) for t in WORKFLOW_EMAILS for locale in LOCALES} <= others
    if playbook.campaign and playbook.campaign.choose_purpose:
        assert ("choose_purpose", "ja") in others


def test_a_missing_template_names_purpose_step_role_locale_and_files(templates: Path) -> None:
    found = problems(templates, one_step_playbook())

    assert len(found) == 4  # two roles, two locales
    assert (
        "purpose A, step welcome, role administrator, locale ja, template welcome_pack: "
        "no email template welcome_pack.administrator.ja.txt or welcome_pack.ja.txt"
    ) in found
    assert (
        "purpose A, step welcome, role end_user, locale en, template welcome_pack: "
        "no email template welcome_pack.end_user.en.txt or welcome_pack.en.txt"
    ) in found


def test_a_missing_japanese_translation_is_not_hidden_by_english(templates: Path) -> None:
    write(templates, "welcome_pack.en", "Subject: Welcome {{ customer_name }}\nHello.\n")
    # The administrators' own Japanese wording exists; end users have none.
    write(templates, "welcome_pack.administrator.ja", "Subject: ようこそ {{ customer_name }}\n")

    assert problems(templates, one_step_playbook()) == [
        "purpose A, step welcome, role end_user, locale ja, template welcome_pack: "
        "no ja translation: no email template welcome_pack.end_user.ja.txt or welcome_pack.ja.txt"
    ]


def test_an_undefined_variable_names_the_file_and_line(templates: Path) -> None:
    write(templates, "welcome_pack.en", "Subject: Welcome\nHello {{ customer_nmae }}.\n")
    write(templates, "welcome_pack.ja", "Subject: ようこそ {{ customer_name }}様\n")

    found = problems(templates, one_step_playbook())

    assert found == [
        f"purpose A, step welcome, role {role}, locale en, template welcome_pack: "
        "email template welcome_pack.en.txt, line 2: 'customer_nmae' is undefined"
        for role in ("administrator", "end_user")
    ]


def test_an_undefined_variable_in_a_branch_the_sample_skips_is_caught(templates: Path) -> None:
    branch = "{% if key_actions_last_week > 100 %}{{ bonus_offer }}{% endif %}"
    write(templates, "welcome_pack.en", f"Subject: Welcome\n{branch}\n")
    write(templates, "welcome_pack.ja", "Subject: ようこそ\n", html=f"<p>{branch}</p>")

    found = problems(templates, one_step_playbook())

    assert len(found) == 4
    assert all("undefined variable(s), not in the workflow's context: " in line for line in found)
    assert any("bonus_offer (welcome_pack.en.txt)" in line for line in found)
    assert any("bonus_offer (welcome_pack.ja.html)" in line for line in found)


def test_a_syntax_error_names_the_file_and_line(templates: Path) -> None:
    write(templates, "welcome_pack.en", "Subject: Welcome\n\n{% if %}\n")
    write(templates, "welcome_pack.ja", "Subject: ようこそ\n")

    found = problems(templates, one_step_playbook())

    assert len(found) == 2
    assert all("email template welcome_pack.en.txt, line 3: " in line for line in found)


def test_a_template_without_a_subject_line_is_refused(templates: Path) -> None:
    write(templates, "welcome_pack.en", "Welcome\n")
    write(templates, "welcome_pack.ja", "Subject: ようこそ\n")

    found = problems(templates, one_step_playbook())

    assert found[0].endswith("email template welcome_pack.en.txt has no Subject: line")


def test_the_workflows_own_emails_are_checked_too(templates: Path) -> None:
    (templates / "stall_proposal.ja.html").unlink()
    (templates / "onboarding_failed.en.txt").write_text("Subject: {{ nope }}\n", encoding="utf-8")
    for locale in LOCALES:
        write(templates, f"welcome_pack.{locale}", "Subject: {{ purpose_title }}\n")

    found = problems(templates, one_step_playbook())

    assert found == [
        "role administrator, locale ja, template stall_proposal: no ja translation: "
        "no email template stall_proposal.administrator.ja.html or stall_proposal.ja.html",
        "locale en, template onboarding_failed: "
        "email template onboarding_failed.en.txt, line 1: 'nope' is undefined",
    ]


def test_a_japanese_customers_emails_name_its_purposes_in_japanese() -> None:
    # The purpose titles came in English into Japanese emails.
    playbook = load_playbook(REPO / "playbooks" / "default.toml")
    environment = build_template_environment(SHIPPED_TEMPLATES)
    welcome = {
        sample.locale: sample.render(environment)
        for sample in email_catalogue(playbook)
        if sample.purpose == "A"
        and sample.role is Role.DECISION_MAKER
        and sample.step
        and sample.template.startswith("purpose_welcome")
    }
    assert "受取書類の電子化" in welcome["ja"].subject
    assert "Digitise incoming documents" in welcome["en"].subject
    offered = {
        sample.locale: sample.render(environment).text
        for sample in email_catalogue(playbook)
        if sample.template == "choose_purpose"
    }
    assert "経費のオンライン承認" in offered["ja"] and "Approve expenses online" in offered["en"]
    assert "Approve expenses online" not in offered["ja"]
