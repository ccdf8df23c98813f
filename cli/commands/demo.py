"""`liftoff demo cohort`: a simulated cohort with planted outcomes, written into a
database so that `liftoff serve`'s cohort, outcomes and review pages have a leader's
year of customers to show."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cli.errors import EXIT_FAILED, EXIT_OK, BadInput
from cli.inputs import read_playbook
from cli.output import to_json
from settings import Settings

if TYPE_CHECKING:
    from analytics.outcomes import OutcomeAnalysis
    from records.database import Database
    from simulation.demo import DemoWritten

# Fewer customers leave a group of the analysis below its 10 (analytics.outcomes.MIN_GROUP).
MIN_DEMO_CUSTOMERS = 50
DEFAULT_DEMO_CUSTOMERS = 200


class _Unreachable(Exception):
    """The target database did not answer; the message says why, in one line."""


@contextmanager
def _target(url: str) -> Iterator[Database]:
    from sqlalchemy.exc import ArgumentError, OperationalError

    from records.database import Database

    try:
        database = Database(url)
    except ArgumentError:
        raise BadInput(f"--database: {url!r} is not a database URL") from None
    try:
        try:
            database.migrate()
        except OperationalError as err:
            raise _Unreachable(str(err).splitlines()[0][:200]) from None
        yield database
    finally:
        database.dispose()


def _weeks(args: argparse.Namespace, deadline_days: float) -> int:
    """The weeks asked for, or enough for the playbook's deadline to end every onboarding."""
    from simulation.runner import MAX_WEEKS

    return args.weeks or min(MAX_WEEKS, math.ceil(deadline_days / 7) + 1)


async def cmd_demo_cohort(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.outcomes import analyse
    from records.outcomes import outcome_facts
    from simulation.cohort import synthetic_cohort
    from simulation.demo import DemoError, demo_arm, demo_customers, write_demo
    from simulation.outcomes import Relationship
    from simulation.profiles import load_profiles
    from simulation.runner import SimulationError, check_playbook, simulate, working_directory
    from simulation.shard import ShardFailed

    source = args.playbook or settings.playbook
    playbook = read_playbook(source)
    try:
        check_playbook(playbook, str(source))
    except SimulationError as err:
        raise BadInput(str(err)) from None
    templates_dir = settings.templates_dir
    if not templates_dir.is_dir():
        raise BadInput(f"{templates_dir}: no such templates directory (LIFTOFF_TEMPLATES_DIR)")
    relationship = Relationship(args.planted)
    weeks = _weeks(args, playbook.deadline.total_seconds() / 86_400)
    arm = demo_arm(playbook)
    url = args.database or settings.database_url
    try:
        with _target(url) as target:
            existing = demo_customers(target)
            if existing and not args.replace:
                raise BadInput(
                    f"the database already holds {existing} demo customers (demo-…); "
                    "pass --replace to remove them and write the demo cohort again"
                )
            cohort = synthetic_cohort(
                load_profiles(),
                args.customers,
                seed=args.seed,
                weeks=weeks,
                purposes=[purpose.id for purpose in playbook.purposes],
            )
            began = time.perf_counter()
            with working_directory() as workdir:
                try:
                    run = await simulate(
                        [arm], cohort, weeks=weeks, workdir=workdir, templates_dir=templates_dir
                    )
                except ShardFailed as err:
                    print(f"liftoff: error: {err}", file=sys.stderr)
                    return EXIT_FAILED
                try:
                    written = write_demo(
                        run,
                        target,
                        relationship,
                        seed=args.seed,
                        today=datetime.now(UTC).date(),
                        replace=args.replace,
                    )
                except DemoError as err:
                    raise BadInput(str(err)) from None
            seconds = time.perf_counter() - began
            analysis = analyse(
                outcome_facts(target, playbook_version=written.playbook_version),
                as_of=datetime.now(UTC).date(),
                playbook_version=written.playbook_version,
            )
            where = target.url.render_as_string(hide_password=True)
    except _Unreachable as err:
        print(f"liftoff: error: cannot reach the database: {err}", file=sys.stderr)
        return EXIT_FAILED
    summary = _summary(args, written, analysis, weeks=weeks, seconds=seconds, where=where)
    print(to_json(summary) if args.json else _text(summary, relationship.description))
    return EXIT_OK


def _summary(
    args: argparse.Namespace,
    written: DemoWritten,
    analysis: OutcomeAnalysis,
    *,
    weeks: int,
    seconds: float,
    where: str,
) -> dict[str, Any]:
    from api.dashboard.outcomes import conclusions
    from models.onboarding import Stage
    from records.review import review_link

    year = analysis.horizon(12)
    version = written.playbook_version
    return {
        "database": where,
        "customers": args.customers,
        "weeks": weeks,
        "seed": args.seed,
        "seconds": round(seconds, 1),
        "playbook_version": version,
        "planted": args.planted,
        "onboarded": written.count(Stage.ONBOARDED),
        "failed": written.count(Stage.FAILED),
        "cancelled": written.count(Stage.CANCELLED),
        "in_flight_not_written": written.in_flight,
        "moved_back_days": written.shift.days,
        "churn_12_months": {
            group.outcome.value: {"churned": group.churn.count, "of": group.churn.n}
            for group in year.groups
            if group.ended
        },
        "conclusion": conclusions(analysis)["en"],
        "pages": [
            "/cohort",
            f"/cohort/outcomes?playbook_version={version}",
            review_link(version),
        ],
    }


def _text(summary: dict[str, Any], planted: str) -> str:
    churn = ", ".join(
        f"{outcome} {figures['churned'] / figures['of']:.0%} "
        f"({figures['churned']} of {figures['of']})"
        for outcome, figures in summary["churn_12_months"].items()
        if figures["of"]
    )
    lines = [
        f"Demo cohort written to {summary['database']}:",
        f"  {summary['customers']} customers simulated x {summary['weeks']} weeks "
        f"(seed {summary['seed']}) in {summary['seconds']} s, "
        f"playbook version {summary['playbook_version']}",
        f"  onboarded {summary['onboarded']}, failed {summary['failed']}, "
        f"still onboarding at the end {summary['in_flight_not_written']} (not written)",
        f"  dated {summary['moved_back_days']} days earlier, so a year on is known for all",
        f"  planted: {planted}",
        f"  churn within 12 months: {churn}",
        f"  the analysis: {summary['conclusion']}",
        "  pages (liftoff serve, as a lead): " + ", ".join(summary["pages"]),
    ]
    return "\n".join(lines)
