"""One shard of a simulation: its own time-skipping server, worker, database and
simulated CSM, over its share of the cohort.

The test server skips from one timer to the next only when no task is in flight, so one
server works through the run's instants one after another, and their tasks are mostly
one customer's: a second worker on the same server found little to do (200 customers
over 26 weeks: 95 s with one process, 91 s with two). Shards split the instants instead:
each runs every instant of its own customers, beside the others (the same run in two
shards: 71-87 s on an idle 2-core machine, now bound by CPU). `simulate` runs shard 0
itself and the others as `python -m simulation.shard`, then copies the other shards'
databases into shard 0's. Each customer, under every arm, lives in one shard, and
nothing it lives through depends on another customer, so the figures do not depend on
the number of shards (tests/test_simulation.py runs one cohort both ways).

A child reads its share from a file the parent wrote in the run's private directory
(pickle: the parent is this same code), prints what its CSM was refused as JSON when it
is done, and stops when its stdin closes, so it never outlives the run that started it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import signal
import sys
import threading
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from models.tables import CustomerProjection, UsageEvent, utc_now
from records.database import Database
from simulation.cohort import SimulatedCustomer, UsageKind
from simulation.server import start_time_skipping_server
from simulation.workers import simulation_worker, throwaway_database
from worker import fewer_collections
from workflows.onboarding import CustomerOnboardingWorkflow

if TYPE_CHECKING:
    from simulation.runner import Arm

# A Monday, far enough ahead that the test server (which starts at today's date) can
# always skip forward to it, and early enough that the holidays library knows every
# country's holidays for the longest run (Japan's end with 2099). 2094 and 2095 have
# the weekdays of 2100 and 2101, where the simulation ran before.
START = datetime(2094, 1, 4, tzinfo=UTC)
DAY = timedelta(days=1)
KICKOFF_AT = timedelta(hours=10, minutes=20)
TRAINING_AT = timedelta(hours=11, minutes=20)
REVIEW_AT = timedelta(hours=13, minutes=20)
# The simulation ends 10 minutes before midnight of its last day.
END_BEFORE_MIDNIGHT = timedelta(minutes=10)
# Commands sent at once; more only queue in the worker.
CONCURRENT_COMMANDS = 64
CSM = "csm@liftoff.example"
CS_LEADER = "lead@liftoff.example"
DATABASE_FILE = "shard-{index}.db"
USAGE_ROWS_PER_INSERT = 5_000
# A shard child's share; survey links are signed but never answered, with a secret of
# the run only, passed to the children in their environment rather than on a command
# line others can read.
SHARE_FILE = "shard-{index}.pickle"
SECRET_VARIABLE = "LIFTOFF_SIMULATION_SURVEY_SECRET"
STOP_SECONDS = 30.0
PARENT_GONE_GRACE_SECONDS = 2.0


class ShardFailed(Exception):
    """A shard process that ended without its figures; its error is on stderr."""


@dataclass(frozen=True)
class Share:
    """What one shard runs: its customers under every arm, for `weeks` weeks."""

    index: int
    arms: list[Arm]
    cohort: list[SimulatedCustomer]
    weeks: int
    templates_dir: Path

    @property
    def end(self) -> datetime:
        return START + timedelta(days=7 * self.weeks) - END_BEFORE_MIDNIGHT


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


def shard_database_path(workdir: Path, index: int) -> Path:
    """Each shard writes a database of its own: shards sharing one SQLite file waited on
    each other's transactions at every instant (200 customers over 26 weeks in two
    shards: 98-101 s on one file, 71-87 s on one each)."""
    return workdir / DATABASE_FILE.format(index=index)


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


async def run_shard(
    share: Share,
    *,
    workdir: Path,
    survey_secret: str,
    before_close: Callable[[Client], Awaitable[None]] | None = None,
) -> dict[str, Counter[str]]:
    """Runs the share's customers on a server of its own; returns, per arm label, the
    CSM events the workflow refused."""
    # The collector as the service's worker runs it: a tenth of a shard's CPU less.
    with fewer_collections():
        return await _run_shard(
            share, workdir=workdir, survey_secret=survey_secret, before_close=before_close
        )


async def _run_shard(
    share: Share,
    *,
    workdir: Path,
    survey_secret: str,
    before_close: Callable[[Client], Awaitable[None]] | None,
) -> dict[str, Counter[str]]:
    database = throwaway_database(shard_database_path(workdir, share.index), migrate=True)
    store_usage(database, share.arms, share.cohort)
    task_queue = f"simulation-shard-{share.index}"
    env = await start_time_skipping_server()
    async with env:
        await env.sleep(START - await env.get_current_time())
        async with simulation_worker(
            env.client,
            task_queue=task_queue,
            database=database,
            templates_dir=share.templates_dir,
            survey_secret=survey_secret,
        ):
            driver = _Driver(env, task_queue, database, share.arms, share.cohort)
            with env.auto_time_skipping_disabled():
                await driver.start_all()
                for day in range(7 * share.weeks):
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
                await driver.advance_to(share.end)
            if before_close is not None:
                # While the server lives: e.g. read the workflows' histories.
                await before_close(env.client)
    return driver.refused


class _Driver:
    """Plays every customer's CSM on the shard's clock."""

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
        """The shard's customers whose criteria were met `review_after_days` ago or
        more: the CSM holds the review and confirms success. Read from the customer
        projection, which the workflow's writes keep current."""
        with self.database.session() as session:
            rows = session.exec(
                select(CustomerProjection.customer_id, CustomerProjection.stage_since)
                .where(col(CustomerProjection.stage) == Stage.COMPLETION_REVIEW.value)
                .where(col(CustomerProjection.customer_id).in_(self._by_id))
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


@contextlib.asynccontextmanager
async def shard_processes(
    shares: Sequence[Share], *, workdir: Path, survey_secret: str
) -> AsyncIterator[Callable[[], Coroutine[Any, Any, dict[str, Counter[str]]]]]:
    """Starts a child process per share; yields a function that waits for them all and
    returns what their CSMs were refused, summed. Leaving early stops the children."""
    # The packages' root, for a child started from any directory.
    root = str(Path(__file__).resolve().parent.parent)
    environment = {
        **os.environ,
        SECRET_VARIABLE: survey_secret,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    children: list[asyncio.subprocess.Process] = []

    async def finished() -> dict[str, Counter[str]]:
        refused: dict[str, Counter[str]] = {}
        for child in children:
            assert child.stdout is not None  # created with stdout=PIPE
            # Not communicate(): it closes stdin, which tells the child to stop.
            output = await child.stdout.read()
            await child.wait()
            if child.returncode != 0:
                raise ShardFailed(
                    f"a simulation shard process failed (exit code {child.returncode}); "
                    "its error is above"
                )
            for label, counts in json.loads(output).items():
                refused.setdefault(label, Counter()).update(counts)
        return refused

    try:
        for share in shares:
            path = workdir / SHARE_FILE.format(index=share.index)
            path.write_bytes(pickle.dumps(share))
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "simulation.shard",
                "--workdir",
                str(workdir),
                "--share",
                str(path),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=environment,
            )
            children.append(child)
        yield finished
    finally:
        for child in children:
            await _stop(child)


async def _stop(child: asyncio.subprocess.Process) -> None:
    if child.returncode is not None:
        return
    if child.stdin is not None:
        child.stdin.close()
    try:
        await asyncio.wait_for(child.wait(), STOP_SECONDS)
    except TimeoutError:
        child.kill()
        await child.wait()


async def _run_child(workdir: Path, share_path: Path) -> dict[str, Counter[str]] | None:
    """The shard's refused events, or None if the parent stopped it first."""
    share = pickle.loads(share_path.read_bytes())  # noqa: S301 - written by our parent
    loop = asyncio.get_running_loop()
    parent_gone = asyncio.Event()

    def watch_stdin() -> None:
        # The parent closes stdin to stop the shard, or dies, which closes it too.
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(parent_gone.set)

    # A daemon thread: one blocked on stdin must not hold the process at its end.
    threading.Thread(target=watch_stdin, daemon=True).start()
    shard = asyncio.create_task(
        run_shard(share, workdir=workdir, survey_secret=os.environ[SECRET_VARIABLE])
    )
    stop = asyncio.create_task(parent_gone.wait())
    await asyncio.wait({shard, stop}, return_when=asyncio.FIRST_COMPLETED)
    if not shard.done():
        shard.cancel()
        # Whatever the cancelled shard raises (the SDK turns a cancelled update into its
        # own error), the parent asked it to stop.
        await asyncio.gather(shard, return_exceptions=True)
        return None
    if shard.exception() is not None:
        # Ctrl-C stops the process group's test servers too, so the shard fails just
        # before its parent, interrupted as well, closes stdin: then say nothing.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop, PARENT_GONE_GRACE_SECONDS)
            return None
    stop.cancel()
    return shard.result()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one shard process of a simulation")
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--share", required=True, type=Path)
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the parent decides, and closes stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    refused = asyncio.run(_run_child(args.workdir, args.share))
    if refused is None:
        return 1
    sys.stdout.write(json.dumps(refused))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    from client.connection import exit_without_finalizing

    try:
        code = main()
    except Exception:
        # Said on stderr, which the parent shares, and then out without the
        # interpreter's finalization, which the SDK's threads can hold up.
        traceback.print_exc()
        code = 1
    exit_without_finalizing(code)
