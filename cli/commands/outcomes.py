"""Commands on what happened after onboarding: `liftoff outcomes import` (renewals,
churn...) and `liftoff health import` (health scores), from CSV files.

The same rules as `liftoff start --csv`: one refused row stores none unless
--skip-invalid; --dry-run checks every row and stores nothing; exit code 2 when any
row was refused. A row naming a customer Liftoff never onboarded is a refused row.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from cli import connections
from cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, BadInput
from cli.outcomes_csv import OutsideFile, read_health_csv, read_outcomes_csv
from cli.output import to_json
from settings import Settings

if TYPE_CHECKING:
    from models.outcomes import OutsideRow, StoreReport
    from records.database import Database

Row = TypeVar("Row", bound="OutsideRow")


async def cmd_outcomes_import(args: argparse.Namespace, settings: Settings) -> int:
    from records.outcomes import store_outcome_events

    return _import(args, settings, read_outcomes_csv, store_outcome_events, "outcome event(s)")


async def cmd_health_import(args: argparse.Namespace, settings: Settings) -> int:
    from records.outcomes import store_health_scores

    return _import(args, settings, read_health_csv, store_health_scores, "health score(s)")


def _import(
    args: argparse.Namespace,
    settings: Settings,
    read: Callable[[Path], OutsideFile[Row]],
    store: Callable[[Database, Sequence[Row]], StoreReport],
    what: str,
) -> int:
    from sqlalchemy.exc import OperationalError

    from records.outcomes import unknown_customers

    found = read(args.file)
    try:
        with connections.database(settings) as database:
            unknown = unknown_customers(database, {row.customer_id for _, row in found.rows})
            found.refuse(
                {
                    line: f"unknown customer {row.customer_id!r}"
                    for line, row in found.rows
                    if row.customer_id in unknown
                }
            )
            if found.refused and not (args.skip_invalid or args.dry_run):
                raise BadInput(f"{args.file}: nothing stored; " + "; ".join(found.problems))
            if args.dry_run:
                return _dry_run(args, found, what)
            report = store(database, [row for _, row in found.rows])
    except OperationalError as err:
        reason = str(err).splitlines()[0][:200]
        print(f"liftoff: error: cannot reach the database: {reason}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(to_json(report.model_dump() | {"refused": found.problems}))
    else:
        print(
            f"{args.file}: {report.stored} {what} stored, {report.already_stored} already "
            f"stored, {len(found.refused)} refused"
        )
    for problem in found.problems:
        print(f"liftoff: not stored: {problem}", file=sys.stderr)
    return EXIT_BAD_INPUT if found.refused else EXIT_OK


def _dry_run(args: argparse.Namespace, found: OutsideFile[Row], what: str) -> int:
    if args.json:
        print(to_json({"valid": len(found.rows), "refused": found.problems}))
    else:
        print(
            f"{args.file}: {len(found.rows)} {what} valid, {len(found.refused)} refused; "
            "nothing stored"
        )
    for problem in found.problems:
        print(f"liftoff: would not store: {problem}", file=sys.stderr)
    return EXIT_BAD_INPUT if found.refused else EXIT_OK
