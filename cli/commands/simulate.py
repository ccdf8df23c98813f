"""`liftoff simulate`: a playbook (and the one it would replace) over a cohort, on the
time-skipping server, before it ships."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from cli.errors import EXIT_OK, BadInput
from cli.inputs import read_playbook
from cli.output import to_json
from settings import Settings

SUMMARY_MD = "summary.md"
SUMMARY_CSV = "summary.csv"


def _out_dir(path: Path | None) -> Path | None:
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        raise BadInput(f"--out {path}: exists and is not a directory")
    return path


def _title(args: argparse.Namespace, customers: int) -> str:
    compared = f" against {args.compare}" if args.compare else ""
    return (
        f"Simulation: {args.playbook}{compared}, {customers} synthetic customers "
        f"(profiles {args.profile_name}, seed {args.seed}), {args.weeks} weeks"
    )


async def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from emails.render import build_template_environment
    from simulation.cohort import synthetic_cohort
    from simulation.profiles import PROFILES_FILE, ProfileError, load_profiles
    from simulation.report import csv_text, markdown, playbook_figures
    from simulation.runner import Arm, SimulationError, check_playbook, simulate

    if args.profile is not None and args.synthetic is None:
        raise BadInput("--profile describes a synthetic cohort: use it with --synthetic N")
    if args.from_history:
        raise BadInput(
            "--from-history is not available yet: simulate a synthetic cohort with --synthetic N"
        )
    out = _out_dir(args.out)
    new = read_playbook(args.playbook)
    old = read_playbook(args.compare) if args.compare is not None else None
    arms = [Arm("new", new)] + ([Arm("old", old)] if old is not None else [])
    try:
        for arm, source in zip(arms, [args.playbook, args.compare], strict=False):
            check_playbook(arm.playbook, str(source))
        profiles = load_profiles(args.profile or PROFILES_FILE)
    except (ProfileError, SimulationError) as err:
        raise BadInput(str(err)) from None
    shared = [p.id for p in new.purposes if old is None or p.id in {q.id for q in old.purposes}]
    if not shared:
        raise BadInput(f"{args.compare}: shares no purpose id with {args.playbook}")
    templates_dir = settings.templates_dir
    if not templates_dir.is_dir():
        raise BadInput(f"{templates_dir}: no such templates directory (LIFTOFF_TEMPLATES_DIR)")
    cohort = synthetic_cohort(
        profiles, args.synthetic, seed=args.seed, weeks=args.weeks, purposes=shared
    )
    args.profile_name = args.profile or "simulation/profiles.toml"
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="liftoff-simulation-") as workdir:
        run = await simulate(
            arms,
            cohort,
            weeks=args.weeks,
            workdir=Path(workdir),
            templates=build_template_environment(templates_dir),
        )
        figures = [playbook_figures(run, arm) for arm in run.arms]
    report = markdown(figures, title=_title(args, len(cohort)))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / SUMMARY_MD).write_text(report, encoding="utf-8")
        (out / SUMMARY_CSV).write_text(csv_text(figures), encoding="utf-8")
    print(to_json(figures) if args.json else report, end="" if not args.json else "\n")
    where = f"; written to {out / SUMMARY_MD} and {out / SUMMARY_CSV}" if out else ""
    print(
        f"simulated {len(cohort)} customers x {args.weeks} weeks under {len(arms)} "
        f"playbook(s) in {time.perf_counter() - began:.1f} s{where}",
        file=sys.stderr,
    )
    return EXIT_OK
