"""Runs a cohort through the real workflow and activities on the time-skipping server.

One test server, the workers of simulation/workers.py (the service's own wiring, one
process per core), a SQLite database and an outbox in a working directory. Every
customer of every playbook ("arm") starts at the same instant; each arm's customers are
the same cohort under their own ids (`new-0001`, `old-0001`), so both playbooks live
through the same weeks side by side and one pass of the clock serves both.

How the clock moves, and why the figures do not depend on the machine's speed:
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlmodel import col, select
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from client.onboarding import RECORD_EVENT
from models import visibility
from models.events import (
    CompletionReviewHeld,
    KickoffHeld,
    OnboardingEvent,
    TrainingHeld,
    TrainingSkipped,
)
from models.handoff import Contact, CustomerHandoff, Role
from models.onboarding import EventResult, OnboardingInput, Stage
from models.playbook import Playbook
from models.tables import CustomerProjection, UsageEvent, utc_now
from records.database import Database
from simulation.cohort import SimulatedCustomer, UsageKind
from simulation.server import start_time_skipping_server
from simulation.workers import simulation_worker, throwaway_database, worker_processes
from workflows.onboarding import CustomerOnboardingWorkflow

# A Monday, far enough ahead that the test server (which starts at today's date) can
# always skip forward to it.
START = datetime(2100, 1, 4, tzinfo=UTC)
DAY = timedelta(days=1)
KICKOFF_AT = timedelta(hours=10, minutes=20)
TRAINING_AT = timedelta(hours=11, minutes=20)
REVIEW_AT = timedelta(hours=13, minutes=20)
# The simulation ends 10 minutes before midnight of its last day.
END_BEFORE_MIDNIGHT = timedelta(minutes=10)
MAX_WEEKS = 104
# Commands sent at once; more only queue in the worker.
CONCURRENT_COMMANDS = 64
USAGE_ROWS_PER_INSERT = 5_000
# Worker processes at most: past a few, SQLite's one writer at a time is the limit.
MAX_PROCESSES = 4
CSM = "csm@liftoff.example"
CS_LEADER = "lead@liftoff.example"


# Where a run's database and outbox go: memory when the machine has room there, since
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
    """What a run leaves behind: its database and outbox, and what the CSM was refused."""

    arms: list[Arm]
    cohort: list[SimulatedCustomer]
    database: Database
    outbox: Path
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


def handoff_for(arm: Arm, customer: SimulatedCustomer) -> CustomerHandoff:
    customer_id = arm.customer_id(customer)
    domain = f"c{customer.key}.example"
    return CustomerHandoff(
        customer_id=customer_id,
        name=f"Simulated {customer.profile} {customer.key}",
        csm=CSM,
        cs_leader=CS_LEADER,
        contacts=[
            Contact(email=f"boss@{domain}", name="Dana Boss", role=Role.DECISION_MAKER),
            Contact(email=f"admin@{domain}", name="Ari Admin", role=Role.ADMINISTRATOR),
            Contact(email=f"user@{domain}", name="Uma User", role=Role.END_USER),
        ],
        seats_contracted=customer.seats,
        quota_contracted=customer.quota,
        time_zone=customer.time_zone,
        locale=customer.locale,
        purposes=list(customer.purposes),
        trial_used=customer.trial_used,
        already_using=customer.already_using,
    )


def _usage_rows(
    arm: Arm, customer: SimulatedCustomer, received_at: datetime
) -> Iterator[dict[str, Any]]:
    playbook = arm.playbook
    key_actions = {purpose.id: purpose.key_action for purpose in playbook.purposes}
    customer_id = arm.customer_id(customer)
    for row in customer.usage:
        if row.kind is UsageKind.KEY_ACTION:
            event = key_actions.get(row.name)
        elif row.kind is UsageKind.QUOTA:
            event = playbook.quota_event
        else:
            event = row.name
        if event is None:
            continue  # this playbook has no such purpose or no quota event
        yield {
            "customer_id": customer_id,
            "user_id": row.user_id,
            "event": event,
            "occurred_at": START + row.offset,
            "quantity": row.quantity,
            "event_key": None,
            "received_at": received_at,
        }


def store_usage(
    database: Database, arms: Sequence[Arm], cohort: Sequence[SimulatedCustomer]
) -> int:
    """Every customer's usage, all weeks, in a few large inserts; returns the rows stored."""
    received_at = utc_now()
    stored = 0
    batch: list[dict[str, Any]] = []
    with database.session() as session:
        for arm in arms:
            for customer in cohort:
                for row in _usage_rows(arm, customer, received_at):
                    batch.append(row)
                    if len(batch) >= USAGE_ROWS_PER_INSERT:
                        session.execute(insert(UsageEvent), batch)
                        stored += len(batch)
                        batch = []
        if batch:
            session.execute(insert(UsageEvent), batch)
            stored += len(batch)
    return stored


class _Driver:
    """Plays every customer's CSM on the shared clock."""

    def __init__(
        self,
        env: WorkflowEnvironment,
        task_queue: str,
        database: Database,
        arms: Sequence[Arm],
        cohort: Sequence[SimulatedCustomer],
    ) -> None:
        self.env = env
        self.task_queue = task_queue
        self.database = database
        self.arms = list(arms)
        self.cohort = list(cohort)
        self.refused: dict[str, Counter[str]] = {arm.label: Counter() for arm in arms}
        self._limit = asyncio.Semaphore(CONCURRENT_COMMANDS)
        self._by_id = {
            arm.customer_id(customer): (arm, customer) for arm in arms for customer in cohort
        }
        self._reviewed: set[str] = set()

    def _handle(self, customer_id: str) -> WorkflowHandle[Any, Any]:
        return self.env.client.get_workflow_handle(visibility.workflow_id_for(customer_id))

    async def advance_to(self, instant: datetime) -> None:
        now = await self.env.get_current_time()
        if instant > now:
            await self.env.sleep(instant - now)

    async def start_all(self) -> None:
        async def start(arm: Arm, customer: SimulatedCustomer) -> None:
            handoff = handoff_for(arm, customer)
            async with self._limit:
                await self.env.client.start_workflow(
                    CustomerOnboardingWorkflow.run,
                    OnboardingInput(handoff=handoff, playbook=arm.playbook),
                    id=visibility.workflow_id_for(handoff.customer_id),
                    task_queue=self.task_queue,
                )

        await asyncio.gather(*(start(arm, c) for arm in self.arms for c in self.cohort))

    async def _send(self, arm: Arm, customer: SimulatedCustomer, event: OnboardingEvent) -> None:
        handle = self._handle(arm.customer_id(customer))
        async with self._limit:
            try:
                await handle.execute_update(RECORD_EVENT, event, result_type=EventResult)
            except (WorkflowUpdateFailedError, RPCError):
                # Refused (out of order) or the onboarding already ended (failed).
                self.refused[arm.label][event.kind] += 1

    async def send_all(
        self, sends: Sequence[tuple[Arm, SimulatedCustomer, OnboardingEvent]]
    ) -> None:
        await asyncio.gather(*(self._send(arm, c, event) for arm, c, event in sends))

    def meetings_on(self, day: int, today: datetime) -> tuple[list[Any], list[Any]]:
        """The kickoffs and trainings the CSMs hold on `day`."""
        kickoffs, trainings = [], []
        for arm in self.arms:
            for customer in self.cohort:
                if customer.kickoff_day == day:
                    goals = [f"Goal {n} of the customer" for n in range(1, customer.goals + 1)]
                    event = KickoffHeld(
                        held_on=today.date(),
                        attendees=["Dana Boss", "Ari Admin"],
                        goals=goals,
                        event_id=f"simulated-kickoff-{arm.customer_id(customer)}",
                    )
                    kickoffs.append((arm, customer, event))
                if customer.training_day == day:
                    event_id = f"simulated-training-{arm.customer_id(customer)}"
                    training: OnboardingEvent = (
                        TrainingSkipped(reason="skipped, as it was then", event_id=event_id)
                        if customer.training_skipped
                        else TrainingHeld(
                            held_on=today.date(),
                            attendees=["Ari Admin", "Uma User"],
                            event_id=event_id,
                        )
                    )
                    trainings.append((arm, customer, training))
        return kickoffs, trainings

    def reviews_due(self, day: int, today: datetime) -> list[Any]:
        """Customers whose criteria were met `review_after_days` ago or more: the CSM
        holds the review and confirms success. Read from the customer projection,
        which the workflow's writes keep current."""
        with self.database.session() as session:
            rows = session.exec(
                select(CustomerProjection.customer_id, CustomerProjection.stage_since).where(
                    col(CustomerProjection.stage) == Stage.COMPLETION_REVIEW.value
                )
            ).all()
        due = []
        for customer_id, since in sorted(rows, key=lambda row: row[0]):
            found = self._by_id.get(customer_id)
            if found is None or since is None or customer_id in self._reviewed:
                continue
            arm, customer = found
            if customer.review_after_days is None:
                continue
            entered_day = (since - START) // DAY
            if day >= entered_day + customer.review_after_days:
                self._reviewed.add(customer_id)
                event = CompletionReviewHeld(
                    held_on=today.date(),
                    success_confirmed=True,
                    event_id=f"simulated-review-{customer_id}",
                )
                due.append((arm, customer, event))
        return due


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
    """Runs the cohort under every arm for `weeks` weeks on `processes` worker processes
    (default: one per core, at most MAX_PROCESSES); the figures are then read from the
    run's database (simulation/report.py)."""
    processes = processes or min(os.cpu_count() or 1, MAX_PROCESSES)
    if not 1 <= processes <= MAX_PROCESSES:
        raise SimulationError(f"processes must be from 1 to {MAX_PROCESSES}")
    if not 1 <= weeks <= MAX_WEEKS:
        raise SimulationError(f"weeks must be from 1 to {MAX_WEEKS}")
    for arm in arms:
        check_playbook(arm.playbook, arm.label)
    began = time.perf_counter()
    database = throwaway_database(workdir / "simulation.db", migrate=True)
    end = START + timedelta(days=7 * weeks) - END_BEFORE_MIDNIGHT
    secret = secrets.token_urlsafe(32)
    task_queue = f"simulation-{secrets.token_hex(4)}"
    env = await start_time_skipping_server()
    async with env:
        await env.sleep(START - await env.get_current_time())
        store_usage(database, arms, cohort)
        async with (
            simulation_worker(
                env.client,
                task_queue=task_queue,
                database=database,
                workdir=workdir,
                templates_dir=templates_dir,
                survey_secret=secret,
            ),
            worker_processes(
                max(0, processes - 1),
                address=env.client.service_client.config.target_host,
                namespace=env.client.namespace,
                task_queue=task_queue,
                workdir=workdir,
                templates_dir=templates_dir,
                survey_secret=secret,
            ),
        ):
            driver = _Driver(env, task_queue, database, arms, cohort)
            with env.auto_time_skipping_disabled():
                await driver.start_all()
                for day in range(7 * weeks):
                    today = START + day * DAY
                    kickoffs, trainings = driver.meetings_on(day, today)
                    if kickoffs:
                        await driver.advance_to(today + KICKOFF_AT)
                        await driver.send_all(kickoffs)
                    if trainings:
                        await driver.advance_to(today + TRAINING_AT)
                        await driver.send_all(trainings)
                    await driver.advance_to(today + REVIEW_AT)
                    await driver.send_all(driver.reviews_due(day, today))
                await driver.advance_to(end)
            if before_close is not None:
                # While the server lives: e.g. read the workflows' histories.
                await before_close(env.client)
    return SimulationRun(
        arms=list(arms),
        cohort=list(cohort),
        database=database,
        outbox=workdir / "outbox",
        started_at=START,
        ended_at=end,
        weeks=weeks,
        wall_seconds=time.perf_counter() - began,
        refused=driver.refused,
    )
