"""Commands on customers' onboarding in Temporal: start, record an event, status, list."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cli import connections
from cli.errors import EXIT_BAD_INPUT, EXIT_OK, BadInput
from cli.handoff_csv import read_handoff_csv
from cli.inputs import check_purposes, event_from_args, handoff_from_args, read_playbook
from cli.output import (
    emails_text,
    event_line,
    list_text,
    page_line,
    start_line,
    status_text,
    to_json,
)
from settings import Settings

if TYPE_CHECKING:
    from models.handoff import CustomerHandoff
    from models.playbook import Playbook
    from records.reports import EmailRow


async def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    playbook = read_playbook(args.playbook or settings.playbook)
    refused: list[str] = []
    if args.csv is not None:
        if args.customer_id is not None:
            raise BadInput("start takes either --csv FILE or one customer's options, not both")
        handoffs, refused = _csv_handoffs(args, playbook)
        if args.dry_run:
            return _dry_run(handoffs, refused)
    else:
        if args.dry_run or args.skip_invalid:
            raise BadInput("--dry-run and --skip-invalid go with --csv FILE")
        handoffs = [handoff_from_args(args)]
        check_purposes(handoffs[0], playbook)
    _record_version(playbook, args.playbook or settings.playbook, settings)
    client = await connections.onboarding_client(settings)
    results = []
    for handoff in handoffs:
        result = await client.start(handoff, playbook)
        results.append(result)
        if not args.json:
            print(start_line(result))
    if args.json:
        print(to_json(results if args.csv is not None else results[0]))
    elif len(results) > 1:
        started = sum(not r.already_running for r in results)
        print(f"{started} started, {len(results) - started} already running")
    for problem in refused:
        print(f"liftoff: not started: {problem}", file=sys.stderr)
    return EXIT_BAD_INPUT if refused else EXIT_OK


def _record_version(playbook: Playbook, path: object, settings: Settings) -> None:
    """Keeps the playbook in `liftoff playbook list`; a database out of reach costs only
    that (a migration to it records it too), never the start. A version recorded with
    other content starts nothing."""
    from sqlalchemy.exc import SQLAlchemyError

    from records.playbook_versions import VersionConflict, record_version

    try:
        with connections.database(settings) as database:
            record_version(database, playbook, str(path))
    except VersionConflict as err:
        raise BadInput(str(err)) from None
    except SQLAlchemyError as err:
        reason = str(err).splitlines()[0][:200]
        print(f"liftoff: playbook version not recorded: {reason}", file=sys.stderr)


def _csv_handoffs(
    args: argparse.Namespace, playbook: Playbook
) -> tuple[list[CustomerHandoff], list[str]]:
    """The rows to start, and the refused ones; by default one refused row starts none."""
    read = read_handoff_csv(args.csv, playbook)
    if read.problems and not (args.skip_invalid or args.dry_run):
        raise BadInput(f"{args.csv}: nothing started; " + "; ".join(read.problems))
    return [handoff for _, handoff in read.handoffs], read.problems


def _dry_run(handoffs: list[CustomerHandoff], refused: list[str]) -> int:
    for handoff in handoffs:
        print(f"{handoff.customer_id}: would start ({handoff.name})")
    for problem in refused:
        print(f"liftoff: would not start: {problem}", file=sys.stderr)
    print(f"{len(handoffs)} would start, {len(refused)} refused; nothing started")
    return EXIT_BAD_INPUT if refused else EXIT_OK


async def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    event = event_from_args(args)
    client = await connections.onboarding_client(settings)
    result = await client.record(args.customer, event)
    print(to_json(result) if args.json else event_line(args.customer, result))
    return EXIT_OK


async def cmd_pause_or_resume(args: argparse.Namespace, settings: Settings) -> int:
    """`pause` / `resume`: one customer, or every ongoing customer of a playbook version."""
    if args.playbook_version is None:
        if args.customer is None:
            raise BadInput(f"{args.command} needs CUSTOMER or --playbook-version VERSION")
        return await cmd_record(args, settings)
    if args.customer is not None:
        raise BadInput(f"{args.command} takes CUSTOMER or --playbook-version, not both")
    from models.playbook import PlaybookError
    from records.customer_lists import Filters, customer_ids
    from records.playbook_versions import check_recorded

    event = event_from_args(args)
    pausing = args.command == "pause"
    # The projection may lag a moment behind; the workflow judges each customer anyway.
    cohort = Filters(ended=False, paused=not pausing, playbook_version=args.playbook_version)
    with connections.database(settings) as database:
        try:
            check_recorded(database, args.playbook_version)
        except PlaybookError as err:
            raise BadInput(str(err)) from None
        ids = customer_ids(database, cohort)
    client = await connections.onboarding_client(settings)
    answers = await client.record_each(ids, event)
    refused = [answer for answer in answers if answer.refused is not None]
    if args.json:
        print(to_json(answers))
    else:
        for answer in answers:
            if answer.result is not None:
                print(event_line(answer.customer_id, answer.result))
            else:
                print(f"{answer.customer_id}: refused: {answer.refused}")
        done = "paused" if pausing else "resumed"
        print(
            f"{len(answers) - len(refused)} {done}, {len(refused)} refused "
            f"(playbook version {args.playbook_version})"
        )
    return EXIT_BAD_INPUT if refused else EXIT_OK


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from records.reports import customer_emails

    client = await connections.onboarding_client(settings)
    status = await client.status(args.customer)
    emails: list[EmailRow] | None = None
    unavailable = ""
    try:
        with connections.database(settings) as database:
            emails = customer_emails(database, customer_id=args.customer)
    except SQLAlchemyError as err:
        # The state comes from Temporal; a database out of reach only costs the emails.
        unavailable = str(err).splitlines()[0][:200]
    if args.json:
        report = status.model_dump(mode="json")
        report["emails"] = None if emails is None else [e.model_dump(mode="json") for e in emails]
        if emails is None:
            report["emails_unavailable"] = unavailable
        print(to_json(report))
    else:
        print(status_text(status))
        print(
            emails_text(emails)
            if emails is not None
            else f"  emails: cannot read the database: {unavailable}"
        )
    return EXIT_OK


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """Customers from the projection (they outlive Temporal's retention), or with
    `--workflows` what Temporal's visibility holds now, with each workflow's status."""
    from models.onboarding import Stage

    stage = Stage(args.stage) if args.stage else None
    if args.workflows:
        projection_only = [
            flag
            for flag, given in (
                ("--paused", args.paused),
                ("--ongoing", args.ongoing),
                ("--ended", args.ended),
                ("--playbook-version", args.playbook_version is not None),
                ("--page", args.page != 1),
            )
            if given
        ]
        if projection_only:
            raise BadInput(
                f"{projection_only[0]} reads the customer projection; "
                "Temporal's visibility (--workflows) cannot filter on it"
            )
        client = await connections.onboarding_client(settings)
        summaries = await client.list(
            stage=stage,
            csm=args.csm,
            stalled=True if args.stalled else None,
            setup_stuck=True if args.stuck else None,
            limit=args.limit,
        )
        print(to_json(summaries) if args.json else list_text(summaries))
        return EXIT_OK

    from client.onboarding import CustomerSummary
    from records.customer_lists import SUMMARY_COLUMNS, Filters, Order, list_page

    filters = Filters(
        csm=args.csm,
        stage=stage,
        stalled=True if args.stalled else None,
        stuck=True if args.stuck else None,
        paused=True if args.paused else None,
        ended=True if args.ended else False if args.ongoing else None,
        playbook_version=args.playbook_version,
    )
    with connections.database(settings) as database:
        page = list_page(
            database,
            filters,
            order=Order.ID,
            limit=args.limit,
            offset=(args.page - 1) * args.limit,
            columns=SUMMARY_COLUMNS,
        )
    summaries = [CustomerSummary.from_projection(row) for row in page.rows]
    if args.json:
        print(to_json(summaries))
    else:
        print(list_text(summaries))
        print(page_line(page.total, page.offset, len(summaries), args.page))
    return EXIT_OK
