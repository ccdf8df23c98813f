"""Runs a cohort through the real workflow and activities on the time-skipping server.

The cohort is split into shards, two per core (simulation/shard.py): each shard is a
test server of its own, a worker with the service's own wiring (simulation/workers.py),
a SQLite database and the simulated CSM of its customers; at the end the shards'
databases are copied into one, which the report reads. Emails are rendered and kept on
the ledger, and delivered nowhere. Every customer of every playbook ("arm") starts at the
same instant; each arm's customers are the same cohort under their own ids (`new-0001`,
`old-0001`), in the same shard, so both playbooks live through the same weeks side by
side and one pass of the clock serves both.

How each shard's clock moves, and why the figures do not depend on the machine's speed:
- The server's clock stays locked (it then runs at wall-clock pace) except while
  `env.sleep` moves it to the next instant the simulated CSM acts; while unlocked the
  server skips from timer to timer, but never while a workflow or activity task is
  in flight, so everything due before that instant has run when `sleep` returns.
  (Awaiting workflow results with the SDK's automatic skipping is avoided: with many
  workflows at once it unbalanced the server's lock; bench/bench.py drives its
  journeys the same way, for the same reason.)
- The simulation starts on a fixed Monday (`START`), so weekdays, measurement days and
  public holidays are the same on every run.
- The CSM acts at fixed times of day, each kind of meeting at its own time
  (`KICKOFF_AT`, `TRAINING_AT`, `REVIEW_AT`) at 20 minutes past the hour: the
  workflow's own instants fall on the hour or half hour (handoff at midnight,
  measurements and send windows at local hours), and the timers a meeting starts fall
  at that meeting's time of day, when no other meeting of that customer happens.
  A few seconds of wall-clock drift therefore never reorders two things a customer
  lives through.
- All usage is stored before the first workflow starts, with the instants it occurred;
  the weekly measurement counts a window's events by when they occurred, so a week is
  judged on exactly that week.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from temporalio.client import Client

from models.playbook import Playbook
from records.database import Database
from simulation.cohort import SimulatedCustomer
from simulation.shard import DAY, START, Share, run_shard, shard_database_path, shard_processes
from simulation.workers import merge_database, throwaway_database

MAX_WEEKS = 104
# A shard's worker waits on its server about a third of the time, so two shards per core
# keep the cores busy: 200 customers over 26 weeks on 2 cores took 85 s with one per
# core, 67-69 s with two and 74-82 s with three (docs/architecture.md).
SHARDS_PER_CORE = 2
MAX_PROCESSES = 8


# Where a run's databases go: memory when the machine has room there, since
# the run is thrown away and every commit and email otherwise waits for an fsync. A
# container's /dev/shm is often 64 MB, less than a large run writes.
_MEMORY_DIRECTORY = Path("/dev/shm")
_MEMORY_NEEDED_BYTES = 2 * 1024**3


def _memory_directory() -> Path | None:
    try:
        free = shutil.disk_usage(_MEMORY_DIRECTORY).free
    except OSError:
        return None
    return _MEMORY_DIRECTORY if free >= _MEMORY_NEEDED_BYTES else None


@contextlib.contextmanager
def working_directory() -> Iterator[Path]:
    """A temporary directory for one run, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="liftoff-simulation-", dir=_memory_directory()) as path:
        yield Path(path)


class SimulationError(Exception):
    """A simulation that cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class Arm:
    """One playbook run over the cohort; its customers' ids start with `label`."""

    label: str
    playbook: Playbook

    def customer_id(self, customer: SimulatedCustomer) -> str:
        return f"{self.label}-{customer.key}"


@dataclass
class SimulationRun:
    """What a run leaves behind: its database, and what the CSM was refused."""

    arms: list[Arm]
    cohort: list[SimulatedCustomer]
    database: Database
    started_at: datetime
    ended_at: datetime
    weeks: int
    wall_seconds: float = 0.0
    # Per arm label, the CSM events the workflow refused or could no longer take
    # (e.g. a training after the onboarding failed), by event kind.
    refused: dict[str, Counter[str]] = field(default_factory=dict)


def check_playbook(playbook: Playbook, source: str) -> None:
    """A playbook the simulator can run in reasonable time: weeks measured in days."""
    if playbook.measurement.every < DAY:
        raise SimulationError(
            f"{source}: measurement.every is {playbook.measurement.every}; the simulator "
            "needs at least 1 day (the demo playbook's seconds would take millions of weeks)"
        )


def default_processes() -> int:
    return min((os.cpu_count() or 1) * SHARDS_PER_CORE, MAX_PROCESSES)


async def simulate(
    arms: Sequence[Arm],
    cohort: Sequence[SimulatedCustomer],
    *,
    weeks: int,
    workdir: Path,
    templates_dir: Path,
    processes: int | None = None,
    before_close: Callable[[Client], Awaitable[None]] | None = None,
) -> SimulationRun:
    """Runs the cohort under every arm for `weeks` weeks in `processes` shards (default:
    two per core, at most MAX_PROCESSES); the figures are then read from the run's
    database (simulation/report.py). `before_close` sees the workflows of one shard
    only, so it needs `processes=1`."""
    processes = processes or (1 if before_close else default_processes())
    if not 1 <= processes <= MAX_PROCESSES:
        raise SimulationError(f"processes must be from 1 to {MAX_PROCESSES}")
    if before_close is not None and processes != 1:
        raise SimulationError("before_close reads one shard's workflows: use processes=1")
    if not 1 <= weeks <= MAX_WEEKS:
        raise SimulationError(f"weeks must be from 1 to {MAX_WEEKS}")
    for arm in arms:
        check_playbook(arm.playbook, arm.label)
    began = time.perf_counter()
    secret = secrets.token_urlsafe(32)
    # Every process-th customer to each shard: each gets a like mix of profiles.
    shares = [
        Share(index, list(arms), list(cohort[index::processes]), weeks, templates_dir)
        for index in range(processes)
    ]
    async with shard_processes(shares[1:], workdir=workdir, survey_secret=secret) as others:
        own = asyncio.create_task(
            run_shard(shares[0], workdir=workdir, survey_secret=secret, before_close=before_close)
        )
        children = asyncio.create_task(others())
        # A shard that fails ends the run at once, not after the others' weeks.
        try:
            done, pending = await asyncio.wait({own, children}, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            # Stopped from outside (SIGTERM): this shard's server goes down with its task,
            # and the children's failures as they stop are moot.
            for task in (own, children):
                task.cancel()
            await asyncio.gather(own, children, return_exceptions=True)
            raise
        for task in pending:
            task.cancel()
        # What a cancelled shard raises is moot (the SDK turns a cancelled update into
        # its own error): the failure that ended the run is raised below.
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()  # raises what failed
        refused = own.result()
        for label, counts in children.result().items():
            refused.setdefault(label, Counter()).update(counts)
    # The run's database is shard 0's, with every other shard's rows copied in.
    database = throwaway_database(shard_database_path(workdir, 0), migrate=False)
    for share in shares[1:]:
        merge_database(database, shard_database_path(workdir, share.index))
    return SimulationRun(
        arms=list(arms),
        cohort=list(cohort),
        database=database,
        started_at=START,
        ended_at=shares[0].end,
        weeks=weeks,
        wall_seconds=time.perf_counter() - began,
        refused=refused,
    )
