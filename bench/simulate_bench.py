"""How long `liftoff simulate` takes: N synthetic customers over W weeks.

Run it with `make bench` (or `.venv/bin/python bench/simulate_bench.py --customers 200
--weeks 26`). It runs what `liftoff simulate --playbook playbooks/default.toml
--synthetic N --weeks W` runs (the shipped profiles, seed 1), with `--compare` the
shipped variant beside it, and prints customers, weeks, wall seconds and CPU seconds
(this process: a shard's worker, its activities and simulated CSM; the child processes:
the test servers and the other shards, one shard per core).

The figure is for comparing changes on one machine, not a promise: it is asserted
nowhere. The issue's target: 200 customers over 26 weeks in under a minute on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from records.playbooks import load_playbook  # noqa: E402
from simulation.cohort import synthetic_cohort  # noqa: E402
from simulation.profiles import load_profiles  # noqa: E402
from simulation.report import playbook_figures  # noqa: E402
from simulation.runner import Arm, default_processes, simulate, working_directory  # noqa: E402
from testkit.factories import TEMPLATES  # noqa: E402

DEFAULT_CUSTOMERS = 200
DEFAULT_WEEKS = 26
SEED = 1
VARIANT = REPO / "simulation" / "examples" / "seat-ratio-70.toml"


@dataclass
class SimulateFigures:
    customers: int
    weeks: int
    playbooks: int
    processes: int
    wall_seconds: float
    cpu_seconds: float
    children_cpu_seconds: float | None
    onboarded: list[int]
    emails_per_customer: list[float]

    @property
    def customer_weeks_per_second(self) -> float:
        return self.customers * self.playbooks * self.weeks / self.wall_seconds


def _server_cpu_seconds() -> float | None:
    """CPU time of this process's finished children: the test servers and the other
    shards, once stopped."""
    try:
        times = os.times()
    except OSError:
        return None
    return times.children_user + times.children_system


async def run_simulate_bench(
    customers: int, weeks: int, compare: bool, processes: int | None = None
) -> SimulateFigures:
    playbook = load_playbook(REPO / "playbooks" / "default.toml")
    arms = [Arm("new", playbook)]
    if compare:
        arms.append(Arm("old", load_playbook(VARIANT)))
    cohort = synthetic_cohort(
        load_profiles(),
        customers,
        seed=SEED,
        weeks=weeks,
        purposes=[p.id for p in playbook.purposes],
    )
    processes = processes or default_processes()
    server_before = _server_cpu_seconds()
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    with working_directory() as workdir:
        run = await simulate(
            arms,
            cohort,
            weeks=weeks,
            workdir=workdir,
            templates_dir=TEMPLATES,
            processes=processes,
        )
        wall = time.perf_counter() - wall_before
        cpu = time.process_time() - cpu_before
        figures = [playbook_figures(run, arm) for arm in run.arms]
    server_after = _server_cpu_seconds()
    return SimulateFigures(
        customers=customers,
        weeks=weeks,
        playbooks=len(arms),
        processes=processes,
        wall_seconds=wall,
        cpu_seconds=cpu,
        children_cpu_seconds=None
        if server_before is None or server_after is None
        else server_after - server_before,
        onboarded=[f.onboarded for f in figures],
        emails_per_customer=[f.emails_per_customer["all"] for f in figures],
    )


def format_simulate_report(figures: SimulateFigures) -> str:
    server = (
        f"{figures.children_cpu_seconds:.1f} s"
        if figures.children_cpu_seconds is not None
        else "unknown"
    )
    return "\n".join(
        [
            f"Simulation: {figures.customers} customers x {figures.weeks} weeks, "
            f"{figures.playbooks} playbook(s), {figures.processes} shard process(es), "
            "time-skipping server",
            f"  wall time            {figures.wall_seconds:8.1f} s",
            f"  CPU, this process    {figures.cpu_seconds:8.1f} s "
            "(a shard: worker, activities, simulated CSM)",
            f"  CPU, child processes {server:>10} (test servers, other shards)",
            f"  customer-weeks / s   {figures.customer_weeks_per_second:8.0f}",
            f"  onboarded            {figures.onboarded}",
            f"  emails per customer  {figures.emails_per_customer}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--weeks", type=int, default=DEFAULT_WEEKS)
    parser.add_argument(
        "--compare", action="store_true", help="run the shipped variant beside the default"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="shard processes (default: two per core, at most 8)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.customers <= 2_000 or not 1 <= args.weeks <= 104:
        parser.error("--customers is 1 to 2000 and --weeks 1 to 104")
    print(f"simulate: {args.customers} customers x {args.weeks} weeks", file=sys.stderr, flush=True)
    figures = asyncio.run(
        run_simulate_bench(args.customers, args.weeks, args.compare, args.processes)
    )
    if args.json:
        print(json.dumps(asdict(figures), indent=2))
    else:
        print(format_simulate_report(figures))
    return 0


if __name__ == "__main__":
    from client.connection import exit_without_finalizing

    exit_without_finalizing(main())
