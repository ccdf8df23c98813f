"""Commands on the records in the database: usage events, the timeline, tasks, and the
customer projection."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from cli import connections
from cli.errors import EXIT_BAD_INPUT, EXIT_OK, BadInput
from cli.inputs import parse_instant
from cli.output import to_json, when
from settings import Settings


async def cmd_usage_record(args: argparse.Namespace, settings: Settings) -> int:
    # Checked before connecting, as every refusal of a value the command alone holds.
    if args.quantity <= 0:
        raise BadInput(f"--quantity must be positive, got {args.quantity:g}")
    occurred_at = parse_instant(args.at) if args.at else datetime.now(UTC)
    from records.usage.csv_import import parse_usage_row
    from records.usage.events import store_event_rows
    from records.usage.store import known_customers

    # The row a usage CSV would hold, checked by the import's own rules: this command
    # had stored an unknown customer's usage, a 100,000-character user and 1e308 uses.
    row = {
        "customer_id": args.customer,
        "user_id": args.user,
        "event": args.event,
        "occurred_at": occurred_at.isoformat(),
        "quantity": repr(args.quantity),
        "event_key": args.event_key,
    }
    with connections.database(settings) as database:
        with database.session() as session:
            known = known_customers(session, {args.customer})
        parsed = parse_usage_row(row, known)
        if isinstance(parsed, str):
            raise BadInput(f"usage not recorded: {parsed}")
        stored = store_event_rows(database, [parsed])[0] == 1
    outcome = {"customer_id": args.customer, "event": args.event, "stored": stored}
    if args.json:
        print(to_json(outcome))
    else:
        verdict = "stored" if stored else "already stored (same event key); nothing changed"
        print(f"{args.customer}: usage {args.event} by {args.user}: {verdict}")
    return EXIT_OK


async def cmd_usage_import(args: argparse.Namespace, settings: Settings) -> int:
    if not args.file.is_file():
        raise BadInput(f"{args.file}: no such file")
    from records.usage.csv_import import import_usage_csv

    with connections.database(settings) as database:
        report = import_usage_csv(database, args.file)
    if args.json:
        print(to_json(report))
    else:
        print(
            f"{args.file}: {report.stored} stored, {report.duplicates} already stored, "
            f"{len(report.rejected)} rejected"
        )
    for line, reason in report.rejected:
        print(f"{args.file}: line {line}: {reason}", file=sys.stderr)
    return EXIT_BAD_INPUT if report.rejected else EXIT_OK


async def cmd_timeline(args: argparse.Namespace, settings: Settings) -> int:
    from records.reports import UnknownCustomer, customer_timeline

    with connections.database(settings) as database:
        try:
            rows = customer_timeline(database, customer_id=args.customer, kinds=args.kind)
        except UnknownCustomer:
            raise BadInput(f"unknown customer {args.customer!r}") from None
    if args.json:
        print(to_json(rows))
        return EXIT_OK
    for row in rows:
        print(f"{when(row.at)}  {row.stage:<17} {row.kind:<20} {row.summary}")
    if not rows:
        print(f"{args.customer}: nothing recorded yet")
    return EXIT_OK


async def cmd_task_list(args: argparse.Namespace, settings: Settings) -> int:
    from records.reports import list_tasks

    with connections.database(settings) as database:
        rows = list_tasks(
            database, assignee=args.assignee, customer_id=args.customer, include_done=args.all
        )
    if args.json:
        print(to_json(rows))
        return EXIT_OK
    for row in rows:
        due = f", due {when(row.due_at)}" if row.due_at else ""
        state = "" if row.state == "open" else f" [{row.state}: {row.resolution}]"
        print(f"{row.task_id:<20} {row.assignee:<28} {row.title}{due}{state}")
    if not rows:
        print("no tasks match")
    return EXIT_OK


async def cmd_projections_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from records.projections import rebuild
    from records.surveys import backfill_review_answers

    with connections.database(settings) as database:
        written = rebuild(database, customer_ids=args.customer)
        # Reviews recorded before NPS answers had a table of their own.
        answers = backfill_review_answers(database, customer_ids=args.customer)
    if args.json:
        print(to_json({"rebuilt": written, "review_answers_stored": answers}))
    else:
        print(f"customer projection: {written} customers rebuilt from their timeline")
        if answers:
            print(f"NPS: {answers} completion-review answers copied into the survey answers")
    return EXIT_OK
