"""Playbook versions: list the ones recorded, diff two, and migrate running customers
from one to another (a dry run first)."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import TYPE_CHECKING

from cli import connections
from cli.errors import EXIT_BAD_INPUT, EXIT_OK, BadInput
from cli.inputs import read_playbook
from cli.output import table, to_json, when
from settings import Settings

if TYPE_CHECKING:
    from models.migration import MigrationPlan
    from models.playbook import Playbook


async def cmd_playbook_list(args: argparse.Namespace, settings: Settings) -> int:
    from records.playbook_versions import list_versions

    with connections.database(settings) as database:
        versions = list_versions(database)
    if args.json:
        print(
            to_json(
                [vars(row) | {"first_used_at": row.first_used_at.isoformat()} for row in versions]
            )
        )
        return EXIT_OK
    if not versions:
        print("no playbook version recorded yet: one is recorded when it starts a customer")
        return EXIT_OK
    rows = [["VERSION", "NAME", "HASH", "FIRST USED", "ONGOING", "ENDED", "FROM"]]
    rows += [
        [
            row.version,
            row.name,
            row.content_hash[:12],
            when(row.first_used_at),
            str(row.ongoing),
            str(row.ended),
            row.source,
        ]
        for row in versions
    ]
    print("\n".join(table(rows)))
    return EXIT_OK


async def cmd_playbook_diff(args: argparse.Namespace, settings: Settings) -> int:
    from models.playbook_diff import differences

    old, new = _playbook(args.old, settings), _playbook(args.new, settings)
    found = differences(old, new)
    if args.json:
        print(to_json({"from": old.version, "to": new.version, "differences": found}))
    elif not found:
        print(f"{old.version} and {new.version} are the same playbook")
    else:
        print(f"{old.name} {old.version} → {new.name} {new.version}: {len(found)} difference(s)")
        for line in found:
            print(f"  {line}")
    return EXIT_OK


def _playbook(spec: str, settings: Settings) -> Playbook:
    """A playbook file, or a version recorded in the database (by version or hash)."""
    if spec.endswith(".toml") or Path(spec).is_file():
        return read_playbook(Path(spec))
    from models.playbook import PlaybookError
    from records.playbook_versions import find_version

    with connections.database(settings) as database:
        try:
            return find_version(database, spec)
        except PlaybookError as err:
            raise BadInput(str(err)) from None


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from models.errors import describe
    from models.migration import MigrationRequest
    from models.playbook import PlaybookError
    from records.customer_lists import Filters, customer_ids
    from records.playbook_versions import check_recorded, check_version, record_version

    chosen = sum([bool(args.customer), args.from_version is not None, args.all])
    if chosen != 1:
        raise BadInput("migrate takes one of --customer ID (repeatable), --from-version V or --all")
    playbook = _playbook(args.to, settings)
    try:
        request = MigrationRequest(
            playbook=playbook, reason=args.reason, requested_by=args.by or operator_name()
        )
    except ValidationError as err:
        raise BadInput(f"migrate: {describe(err)}") from None
    with connections.database(settings) as database:
        if args.customer:
            ids = list(dict.fromkeys(args.customer))
        else:
            cohort = Filters(ended=False, playbook_version=args.from_version)
            ids = customer_ids(database, cohort)
        try:
            if args.from_version is not None:
                check_recorded(database, args.from_version)
            # The dry run refuses what applying would.
            if args.dry_run:
                check_version(database, playbook)
            else:
                record_version(database, playbook, str(args.to))
        except PlaybookError as err:
            raise BadInput(str(err)) from None
    client = await connections.onboarding_client(settings)
    plans = await client.migrate_each(ids, request, dry_run=args.dry_run)
    refused = [plan for plan in plans if plan.refused is not None]
    if args.json:
        print(to_json(plans))
    else:
        for plan in plans:
            print(_plan_lines(plan, verbose=args.dry_run))
        verb = "would move" if args.dry_run else "moved"
        print(
            f"{len(plans) - len(refused)} {verb} to {playbook.version}, {len(refused)} refused"
            + ("; nothing changed (dry run)" if args.dry_run else "")
        )
    return EXIT_BAD_INPUT if refused else EXIT_OK


def operator_name() -> str:
    try:
        return f"{getpass.getuser()} (CLI)"
    except (KeyError, OSError):
        return "CLI"


def _plan_lines(plan: MigrationPlan, *, verbose: bool) -> str:
    head = f"{plan.customer_id}: {plan.from_version} → {plan.to_version}: {plan.summary()}"
    if not verbose or plan.refused is not None:
        return head
    lines = [head]
    for timer in plan.timers:
        stage = f" ({timer.stage.value})" if timer.stage else ""
        overdue = ": overdue, fires at once" if timer.overdue else ""
        moved = f"{when(timer.before)} → {when(timer.after)}"
        lines.append(f"  timer {timer.kind.value}{stage}: {moved}{overdue}")
    for step in plan.steps:
        at = f" at {when(step.at)}" if step.at else ""
        lines.append(f"  step {step.ref}: {step.change.replace('_', ' ')}{at}")
    for criterion in plan.criteria:
        lines.append(
            f"  criterion {criterion.criterion} last week: {_met(criterion.before)} → "
            f"{_met(criterion.after)}"
        )
    return "\n".join(lines)


def _met(value: bool | None) -> str:
    return "not in this version" if value is None else "met" if value else "not met"
