"""Commands on playbook files and the emails they make the workflow send."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cli.errors import EXIT_BAD_INPUT, EXIT_OK, BadInput
from cli.inputs import output_directory, read_playbook
from cli.output import to_json
from models.handoff import Role
from models.playbook import Playbook, Touchpoint
from settings import Settings

if TYPE_CHECKING:
    import jinja2

    from emails.catalogue import EmailSample


def _templates(directory: Path | None, settings: Settings) -> jinja2.Environment:
    from emails.render import build_template_environment

    directory = directory or settings.templates_dir
    if not directory.is_dir():
        raise BadInput(f"{directory}: no such templates directory")
    return build_template_environment(directory)


async def cmd_playbook_validate(args: argparse.Namespace, settings: Settings) -> int:
    """The file, then every email it makes the workflow send, rendered in every locale."""
    from emails.catalogue import check_templates, email_catalogue

    playbook = read_playbook(args.file)
    problems = check_templates(_templates(args.templates, settings), playbook)
    emails = len(email_catalogue(playbook))
    if args.json:
        print(
            to_json(
                {
                    "ok": not problems,
                    "name": playbook.name,
                    "version": playbook.version,
                    "emails_checked": emails,
                    "problems": [problem.model_dump() for problem in problems],
                }
            )
        )
    elif not problems:
        print(
            f"ok: {playbook.name} {playbook.version}, {len(playbook.purposes)} purposes, "
            f"{len(playbook.completion_criteria)} completion criteria, "
            f"{emails} emails rendered"
        )
    for problem in problems:
        print(f"{args.file}: {problem.line()}", file=sys.stderr)
    return EXIT_BAD_INPUT if problems else EXIT_OK


def _preview_samples(args: argparse.Namespace, playbook: Playbook) -> list[EmailSample]:
    """The emails `email preview` asked for; every refusal names what there is instead."""
    from emails.catalogue import (
        LOCALES,
        WORKFLOW_EMAILS,
        choose_purpose_sample,
        step_sample,
        survey_sample,
        workflow_sample,
    )

    if args.locale is not None and args.locale not in LOCALES:
        raise BadInput(f"unknown locale {args.locale!r}: expected one of {', '.join(LOCALES)}")
    locales = [args.locale] if args.locale else list(LOCALES)
    role: Role | None = None
    if args.role is not None:
        if args.role not in Role.__members__.values():
            roles = ", ".join(r.value for r in Role)
            raise BadInput(f"unknown role {args.role!r}: expected one of {roles}")
        role = Role(args.role)
    if args.step is not None and args.purpose is None:
        raise BadInput("--step goes with --purpose")

    def roles_of(offered: Sequence[Role], what: str) -> list[Role]:
        if role is None:
            return list(offered)
        if role not in offered:
            names = ", ".join(r.value for r in offered)
            raise BadInput(f"{what} goes to {names}, not {role.value}")
        return [role]

    if args.template is not None:
        if args.template not in WORKFLOW_EMAILS:
            raise BadInput(
                f"unknown template {args.template!r}: expected one of "
                f"{', '.join(WORKFLOW_EMAILS)} (campaign steps: --purpose and --step; "
                "surveys: --survey)"
            )
        to = WORKFLOW_EMAILS[args.template]
        if role is not None and role != to:
            who = to.value if to else "the CSM or the leader"
            raise BadInput(f"{args.template} goes to {who}, not {role.value}")
        return [workflow_sample(playbook, args.template, locale) for locale in locales]
    if args.choose_purpose:
        choose = playbook.campaign.choose_purpose if playbook.campaign else None
        if choose is None:
            raise BadInput(f"{playbook.name} does not ask customers to choose a purpose")
        return [
            choose_purpose_sample(playbook, choose, r, locale)
            for r in roles_of(choose.roles, "campaign.choose_purpose")
            for locale in locales
        ]
    if args.survey is not None:
        if playbook.surveys is None:
            raise BadInput(f"{playbook.name} sends no survey")
        asked = {
            touchpoint.value: roles for touchpoint, roles in playbook.surveys.touchpoints.items()
        }
        if args.survey not in asked:
            raise BadInput(
                f"unknown survey {args.survey!r}: the playbook surveys at {', '.join(asked)}"
            )
        touchpoint = Touchpoint(args.survey)
        return [
            survey_sample(playbook, touchpoint, r, locale)
            for r in roles_of(asked[args.survey], f"the {args.survey} survey")
            for locale in locales
        ]
    purpose = playbook.purpose(args.purpose)
    if purpose is None:
        offered = ", ".join(p.id for p in playbook.purposes)
        raise BadInput(f"unknown purpose {args.purpose!r}: the playbook offers {offered}")
    steps = ", ".join(s.id for s in purpose.steps) or "none"
    if args.step is None:
        raise BadInput(f"--purpose needs --step: purpose {purpose.id} has steps {steps}")
    step = next((s for s in purpose.steps if s.id == args.step), None)
    if step is None:
        raise BadInput(f"unknown step {args.step!r}: purpose {purpose.id} has steps {steps}")
    return [
        step_sample(purpose, step, r, locale)
        for r in roles_of(step.roles, f"step {step.id} of purpose {purpose.id}")
        for locale in locales
    ]


async def cmd_email_preview(args: argparse.Namespace, settings: Settings) -> int:
    """Renders as the worker would (English standing in for a missing translation)."""
    from temporalio.exceptions import ApplicationError

    from emails.catalogue import SAMPLE_RECIPIENT
    from emails.render import compose_message

    playbook = read_playbook(args.playbook or settings.playbook)
    samples = _preview_samples(args, playbook)
    templates = _templates(args.templates, settings)
    output_directory(args.out)
    rendered = []
    for sample in samples:
        try:
            rendered.append((sample, sample.render(templates)))
        except ApplicationError as err:
            raise BadInput(f"{sample.where}: {err.message}") from None
    # Everything rendered before the first file is written: a refusal leaves no files.
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for sample, email in rendered:
        stem = args.out / sample.file_stem
        message = compose_message(email, sender=settings.mail_from, recipient=SAMPLE_RECIPIENT)
        paths = {
            "txt": stem.with_name(f"{stem.name}.txt"),
            "html": stem.with_name(f"{stem.name}.html"),
            "eml": stem.with_name(f"{stem.name}.eml"),
        }
        paths["txt"].write_text(f"Subject: {email.subject}\n\n{email.text}", encoding="utf-8")
        paths["html"].write_text(email.html, encoding="utf-8")
        paths["eml"].write_bytes(message.as_bytes())
        written.append({"email": sample.where, "subject": email.subject, **paths})
        if not args.json:
            print("\n".join(str(path) for path in paths.values()))
    if args.json:
        print(to_json([{k: str(v) for k, v in entry.items()} for entry in written]))
    return EXIT_OK
