"""`liftoff simulate`: a playbook (and the one it would replace) over a cohort, on the
time-skipping server, before it ships."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cli import connections
from cli.errors import EXIT_FAILED, EXIT_OK, BadInput
from cli.inputs import output_directory, read_playbook
from cli.output import to_json
from models.playbook import Playbook
from settings import Settings

if TYPE_CHECKING:
    from simulation.cohort import SimulatedCustomer

SUMMARY_MD = "summary.md"
SUMMARY_CSV = "summary.csv"
DEFAULT_PROFILES = "simulation/profiles.toml"


def _out_dir(path: Path | None) -> Path | None:
    return None if path is None else output_directory(path)


def _title(args: argparse.Namespace, cohort: str) -> str:
    compared = f" against {args.compare}" if args.compare else ""
    return f"Simulation: {args.playbook}{compared}, {cohort}, {args.weeks} weeks"


def _check_arguments(args: argparse.Namespace) -> None:
    if args.profile is not None and args.synthetic is None:
        raise BadInput("--profile describes a synthetic cohort: use it with --synthetic N")
    if args.customers is not None and not args.from_history:
        raise BadInput("--customers counts past customers: use it with --from-history")


def _synthetic(
    args: argparse.Namespace, purposes: list[str]
) -> tuple[list[SimulatedCustomer], str]:
    from simulation.cohort import synthetic_cohort
    from simulation.profiles import PROFILES_FILE, ProfileError, load_profiles

    try:
        profiles = load_profiles(args.profile or PROFILES_FILE)
    except ProfileError as err:
        raise BadInput(str(err)) from None
    cohort = synthetic_cohort(
        profiles, args.synthetic, seed=args.seed, weeks=args.weeks, purposes=purposes
    )
    described = (
        f"{len(cohort)} synthetic customers "
        f"(profiles {args.profile or DEFAULT_PROFILES}, seed {args.seed})"
    )
    return cohort, described


def _from_history(
    args: argparse.Namespace, settings: Settings
) -> tuple[list[SimulatedCustomer], str]:
    from records.history import HistoryTooLarge, past_customers
    from simulation.cohort import history_cohort

    try:
        with connections.database(settings) as database:
            past = past_customers(database, limit=args.customers or 200, weeks=args.weeks)
    except HistoryTooLarge as err:
        raise BadInput(str(err)) from None
    if not past:
        raise BadInput("the database holds no customer who started onboarding: nothing to replay")
    return history_cohort(past), f"the {len(past)} most recent past customers replayed"


async def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import OperationalError

    from simulation.report import csv_text, markdown, playbook_figures
    from simulation.runner import (
        Arm,
        SimulationError,
        check_playbook,
        simulate,
        working_directory,
    )
    from simulation.shard import ShardFailed

    _check_arguments(args)
    out = _out_dir(args.out)
    new = read_playbook(args.playbook)
    old = read_playbook(args.compare) if args.compare is not None else None
    arms = [Arm("new", new)] + ([Arm("old", old)] if old is not None else [])
    try:
        for arm, source in zip(arms, [args.playbook, args.compare], strict=False):
            check_playbook(arm.playbook, str(source))
    except SimulationError as err:
        raise BadInput(str(err)) from None
    templates_dir = settings.templates_dir
    if not templates_dir.is_dir():
        raise BadInput(f"{templates_dir}: no such templates directory (LIFTOFF_TEMPLATES_DIR)")
    if args.from_history:
        try:
            cohort, described = _from_history(args, settings)
        except OperationalError as err:
            reason = str(err).splitlines()[0][:200]
            print(f"liftoff: error: cannot reach the database: {reason}", file=sys.stderr)
            return EXIT_FAILED
    else:
        cohort, described = _synthetic(args, _shared_purposes(args, new, old))
    began = time.perf_counter()
    with working_directory() as workdir:
        try:
            run = await simulate(
                arms,
                cohort,
                weeks=args.weeks,
                workdir=workdir,
                templates_dir=templates_dir,
            )
        except ShardFailed as err:
            print(f"liftoff: error: {err}", file=sys.stderr)
            return EXIT_FAILED
        figures = [playbook_figures(run, arm) for arm in run.arms]
    report = markdown(figures, title=_title(args, described))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / SUMMARY_MD).write_text(report, encoding="utf-8")
        (out / SUMMARY_CSV).write_text(csv_text(figures), encoding="utf-8")
    print(to_json(figures) if args.json else report, end="\n" if args.json else "")
    # The report first, whole, then the note on stderr.
    sys.stdout.flush()
    where = f"; written to {out / SUMMARY_MD} and {out / SUMMARY_CSV}" if out else ""
    print(
        f"simulated {len(cohort)} customers x {args.weeks} weeks under {len(arms)} "
        f"playbook(s) in {time.perf_counter() - began:.1f} s{where}",
        file=sys.stderr,
    )
    return EXIT_OK


def _shared_purposes(args: argparse.Namespace, new: Playbook, old: Playbook | None) -> list[str]:
    """The purposes a synthetic customer may hold: those both playbooks know."""
    known = {p.id for p in old.purposes} if old is not None else None
    shared = [p.id for p in new.purposes if known is None or p.id in known]
    if not shared:
        raise BadInput(f"{args.compare}: shares no purpose id with {args.playbook}")
    return shared
