"""Many customers on one worker, against a real Temporal dev server, with a bare twin.

Run it with `make bench-scale` (or `.venv/bin/python bench/scale_bench.py --customers
10000`). It stops by itself (every wait has a deadline) and prints figures; nothing
here is asserted.

Two phases, each with its own worker process, so each worker's memory is its own:

1. Liftoff: `python worker.py` (a scratch SQLite database, outbox mail, the default
   playbook) on a task queue of its own. N customers are started through
   `OnboardingClient.start`; a customer is *absorbed* when its start-time work
   (timeline entries, tasks, the kickoff emails) is stored, counted in the database.
2. Bare: the same number of `BareWorkflow`s (bench/bare_workflow.py) with the same
   groups of no-op activities and local activities at start as a probe customer's
   history shows, then a long timer, served by this script in `--serve-bare` mode,
   which reports the activities it ran.

Per phase: starts per second, customers absorbed per second, worker RSS before and
after (per cached workflow; the sticky cache holds every customer unless `--cache`
bounds it), update p50/p95 (sequential, distinct customers: a kickoff for Liftoff, a
no-op update for bare), status query p50/p95 while cached, and after the worker is
restarted (every customer out of the cache: the replay cost of a cache miss).

The figures compare Liftoff with bare Temporal on one machine; read ratios, not
absolute values, on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import func  # noqa: E402
from sqlmodel import select  # noqa: E402
from temporalio import activity  # noqa: E402
from temporalio.api.testservice.v1 import SleepRequest  # noqa: E402
from temporalio.client import Client, WorkflowHistory  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker  # noqa: E402

from bench.bare_workflow import BareInput, BareWorkflow, do_nothing  # noqa: E402
from bench.bench import (  # noqa: E402
    HistoryShape,
    bare_input_from,
    history_shapes,
    processes_cpu_seconds,
)
from client.connection import data_converter  # noqa: E402
from client.onboarding import OnboardingClient  # noqa: E402
from client.payloads import liftoff_data_converter  # noqa: E402
from models import visibility  # noqa: E402
from models.events import KickoffHeld, TrainingHeld  # noqa: E402
from models.onboarding import DueKind, TimelineKind  # noqa: E402
from models.tables import EmailLedgerEntry, Task, TimelineEntry  # noqa: E402
from records.database import Database  # noqa: E402
from records.playbooks import load_playbook  # noqa: E402
from settings import Settings  # noqa: E402
from simulation.server import start_time_skipping_server  # noqa: E402
from testkit.factories import SURVEY_SECRET, make_handoff  # noqa: E402
from testkit.temporal import start_dev_server, with_data_converter  # noqa: E402

DEFAULT_CUSTOMERS = 2000
MAX_CUSTOMERS = 20_000
START_CONCURRENCY = 64
SAMPLES = 200
# Long enough that no bare workflow's timer fires during the run.
BARE_TIMER = timedelta(days=30)
READY_SECONDS = 60.0
SETTLED_SECONDS = 3.0
# The weekly tick: how many customers fall due at once by default (the issue's figure),
# how long before their instant the clock first stops (what was due earlier settles
# first), and how far ahead the bare twin's instant lies.
TICK_CUSTOMERS = 1000
TICK_LEAD = timedelta(minutes=1)
TICK_AHEAD = timedelta(hours=1)
# How far the test server's clock moves in one call on the way to the tick.
ADVANCE_STEP = timedelta(hours=1)
MEASURED = TimelineKind.WEEKLY_MEASUREMENT.value
# The SDK core's warnings, as its log lines word them.
SLOW_TASK = "Workflow task duration exceeded"
LOST_TASK = "Task not found when completing"

Call = Callable[[Any], Awaitable[object]]
BARE_REPORT_SECONDS = 0.5


@dataclass
class PhaseFigures:
    name: str
    customers: int
    cache: int
    compressed: bool = False
    by_reference: bool = False
    start_seconds: float = 0.0
    absorb_seconds: float | None = None
    rss_idle_mb: float | None = None
    rss_loaded_mb: float | None = None
    update_ms: list[float] = field(default_factory=list)
    query_cached_ms: list[float] = field(default_factory=list)
    query_replayed_ms: list[float] = field(default_factory=list)
    rss_after_replays_mb: float | None = None
    workflow_tasks: int = field(default_factory=lambda: Settings().max_concurrent_workflow_tasks)
    workflow_task_polls: int = field(
        default_factory=lambda: Settings().max_concurrent_workflow_task_polls
    )
    slow_tasks: int = 0
    lost_tasks: int = 0
    note: str = ""

    @property
    def starts_per_second(self) -> float:
        return self.customers / self.start_seconds if self.start_seconds else 0.0

    @property
    def absorbed_per_second(self) -> float | None:
        return self.customers / self.absorb_seconds if self.absorb_seconds else None

    @property
    def kb_per_cached(self) -> float | None:
        if self.rss_idle_mb is None or self.rss_loaded_mb is None:
            return None
        cached = min(self.customers, self.cache)
        return (self.rss_loaded_mb - self.rss_idle_mb) * 1024 / cached if cached else None


def percentile(values: Sequence[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


async def _until(
    probe: Callable[[], Awaitable[bool]], what: str, deadline: float, interval: float = 0.25
) -> None:
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(interval)


async def _timed_each(
    call: Callable[[Any], Awaitable[object]], items: Sequence[Any]
) -> list[float]:
    """Milliseconds each call took, one after the other."""
    times = []
    for item in items:
        started = time.perf_counter()
        await call(item)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def _in_parallel(call: Call, items: Sequence[Any]) -> float:
    """`call` on every item, START_CONCURRENCY at a time; the wall seconds it took."""
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def one(item: Any) -> None:
        async with gate:
            await call(item)

    started = time.perf_counter()
    await asyncio.gather(*(one(item) for item in items))
    return time.perf_counter() - started


class WorkerProcess:
    """A worker in a process of its own, so its memory is measured alone. Its output
    goes to `log`; `ready` turns true at the line that holds `ready_mark`."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, ready_mark: str) -> None:
        self.command, self.env, self.log, self.ready_mark = command, env, log, ready_mark
        self.process: subprocess.Popen[str] | None = None
        self.ready = False
        self.reported = 0
        # The SDK's warnings: a workflow task that ran past 5 s, and one that came back
        # after its timeout (the server had handed it out again: its work was lost).
        self.slow_tasks = self.lost_tasks = 0

    def start(self) -> None:
        self.ready = False
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=self._read, args=(stdout,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        with self.log.open("a") as log:
            for line in stream:
                if self.ready_mark in line:
                    self.ready = True
                if line.startswith("activities "):
                    self.reported = int(line.split()[1])
                    continue
                log.write(line)
                if SLOW_TASK in line:
                    self.slow_tasks += 1
                elif LOST_TASK in line:
                    self.lost_tasks += 1

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def _ready(worker: WorkerProcess, deadline: float) -> None:
    """Until the worker has said it polls (its "ready" line on stdout)."""

    async def ready() -> bool:
        if not worker.alive():
            raise RuntimeError(f"the worker exited; see {worker.log}")
        return worker.ready

    await _until(ready, "the worker to start", deadline)


def _rows_written(database: Database) -> int:
    """What customers' start-time work writes: timeline entries, tasks, emails."""
    with database.session() as session:
        return sum(
            int(session.exec(select(func.count()).select_from(table)).one())
            for table in (TimelineEntry, Task, EmailLedgerEntry)
        )


async def _settled_count(database: Database, deadline: float) -> int:
    """The timeline entries once no more arrive for SETTLED_SECONDS."""
    last, since = -1, time.monotonic()
    while True:
        count = await asyncio.to_thread(_rows_written, database)
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= SETTLED_SECONDS:
            return count
        if time.monotonic() > deadline:
            raise TimeoutError("the probe customers never settled")
        await asyncio.sleep(0.25)


def _liftoff_worker(
    client: Client,
    address: str,
    scratch: Path,
    cache: int,
    *,
    compress: bool,
    by_reference: bool,
) -> tuple[Database, WorkerProcess, OnboardingClient]:
    """`python worker.py` on a task queue and a scratch SQLite database of its own in
    `scratch`, and the client that starts and drives its customers."""
    scratch.mkdir(parents=True, exist_ok=True)
    queue = f"scale-liftoff-{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{scratch / 'liftoff.db'}"
    database = Database(url)
    database.migrate()
    env = os.environ | {
        "TEMPORAL_ADDRESS": address,
        "LIFTOFF_TASK_QUEUE": queue,
        "DATABASE_URL": url,
        "LIFTOFF_MAIL_BACKEND": "outbox",
        "LIFTOFF_OUTBOX_DIR": str(scratch / "outbox"),
        "LIFTOFF_MAX_CACHED_WORKFLOWS": str(cache),
        "LIFTOFF_SURVEY_SECRET": SURVEY_SECRET,
        "LIFTOFF_LOG_LEVEL": "INFO",
        "LIFTOFF_PAYLOAD_COMPRESSION": "true" if compress else "false",
        "LIFTOFF_PLAYBOOKS_BY_REFERENCE": "true" if by_reference else "false",
    }
    if compress or by_reference:
        settings = Settings(
            database_url=url, payload_compression=compress, playbooks_by_reference=by_reference
        )
        client = with_data_converter(client, data_converter(settings))
    log = scratch / "liftoff-worker.log"
    worker = WorkerProcess([sys.executable, "worker.py"], env, log, "worker started")
    return database, worker, OnboardingClient(client, queue)


async def liftoff_phase(
    client: Client,
    address: str,
    scratch: Path,
    customers: int,
    cache: int,
    deadline: float,
    *,
    compress: bool = False,
    by_reference: bool = False,
) -> tuple[PhaseFigures, BareInput]:
    """Liftoff's figures, and the shape of a customer's start-time work for its twin.
    With `compress`, its client and worker run with LIFTOFF_PAYLOAD_COMPRESSION; with
    `by_reference`, with LIFTOFF_PLAYBOOKS_BY_REFERENCE."""
    figures = PhaseFigures(
        "Liftoff", customers, cache, compressed=compress, by_reference=by_reference
    )
    database, worker, onboarding = _liftoff_worker(
        client, address, scratch, cache, compress=compress, by_reference=by_reference
    )
    client = onboarding.temporal
    playbook = load_playbook(REPO / "playbooks" / "default.toml")
    try:
        worker.start()
        await _ready(worker, deadline)
        # A few customers first: how many timeline entries one's start writes.
        probes = [make_handoff(customer_id=f"probe-{n}") for n in range(3)]
        for handoff in probes:
            await onboarding.start(handoff, playbook)
        per_customer = await _settled_count(database, deadline) / len(probes)
        start_work = bare_input_from(
            await history_shapes(
                [
                    client.get_workflow_handle(visibility.workflow_id_for(p.customer_id))
                    for p in probes
                ]
            )
        )
        figures.rss_idle_mb = rss_mb(worker.pid)
        _log(f"Liftoff: {per_customer:.0f} rows (timeline, tasks, emails) per customer at start")

        handoffs = [make_handoff(customer_id=f"scale-{n:05d}") for n in range(customers)]
        before = await asyncio.to_thread(_rows_written, database)
        started = time.perf_counter()
        figures.start_seconds = await _in_parallel(
            functools.partial(onboarding.start, playbook=playbook), handoffs
        )
        _log(f"Liftoff: {customers} started in {figures.start_seconds:.1f} s")
        target = before + per_customer * customers

        async def absorbed() -> bool:
            return await asyncio.to_thread(_rows_written, database) >= target

        await _until(absorbed, "every customer's start-time work", deadline, interval=0.5)
        figures.absorb_seconds = time.perf_counter() - started
        figures.rss_loaded_mb = rss_mb(worker.pid)
        _log(f"Liftoff: absorbed in {figures.absorb_seconds:.1f} s")

        kickoff = KickoffHeld(held_on=datetime.now(UTC).date(), goals=["Go live"])
        sample = [handoff.customer_id for handoff in handoffs[:SAMPLES]]
        figures.update_ms = await _timed_each(
            functools.partial(onboarding.record, event=kickoff), sample
        )
        # The kickoffs' own work (timeline, tasks, emails) done before the queries.
        await _settled_count(database, deadline)
        figures.query_cached_ms = await _timed_each(onboarding.status, sample)
        # A new worker process holds nothing: each query replays the customer's history.
        worker.stop()
        worker.start()
        await _ready(worker, deadline)
        unqueried = [handoff.customer_id for handoff in handoffs[SAMPLES : 2 * SAMPLES]]
        figures.query_replayed_ms = await _timed_each(onboarding.status, unqueried or sample)
        figures.rss_after_replays_mb = rss_mb(worker.pid)
    finally:
        worker.stop()
        database.dispose()
        figures.slow_tasks, figures.lost_tasks = worker.slow_tasks, worker.lost_tasks
    return figures, start_work


async def bare_phase(
    client: Client,
    address: str,
    scratch: Path,
    customers: int,
    cache: int,
    start_work: BareInput,
    deadline: float,
) -> PhaseFigures:
    figures = PhaseFigures("bare", customers, cache)
    queue = f"scale-bare-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, __file__, "--serve-bare", address, queue, str(cache)]
    worker = WorkerProcess(command, dict(os.environ), scratch / "bare-worker.log", "activities")
    # The start's activity groups and local activities, then a wait like a customer's.
    shape = start_work.model_copy(update={"timers": 0, "final_sleep": BARE_TIMER})
    activities = sum(shape.activity_batches) + sum(shape.local_activity_batches)
    ids = [f"bare-{uuid.uuid4().hex[:6]}-{n:05d}" for n in range(customers)]

    async def start(workflow_id: str) -> object:
        return await client.start_workflow(
            BareWorkflow.run, shape, id=workflow_id, task_queue=queue
        )

    try:
        worker.start()
        await _ready(worker, deadline)
        figures.rss_idle_mb = rss_mb(worker.pid)
        started = time.perf_counter()
        figures.start_seconds = await _in_parallel(start, ids)

        async def absorbed() -> bool:
            return worker.reported >= customers * activities

        await _until(absorbed, "every bare workflow's activities", deadline, interval=0.5)
        figures.absorb_seconds = time.perf_counter() - started
        figures.rss_loaded_mb = rss_mb(worker.pid)
        _log(f"bare: absorbed in {figures.absorb_seconds:.1f} s")

        async def ping(workflow_id: str) -> object:
            return await client.get_workflow_handle(workflow_id).execute_update("ping")

        async def progress(workflow_id: str) -> object:
            return await client.get_workflow_handle(workflow_id).query("progress")

        figures.update_ms = await _timed_each(ping, ids[:SAMPLES])
        figures.query_cached_ms = await _timed_each(progress, ids[:SAMPLES])
        worker.stop()
        worker.start()
        await _ready(worker, deadline)
        figures.query_replayed_ms = await _timed_each(
            progress, ids[SAMPLES : 2 * SAMPLES] or ids[:SAMPLES]
        )
        figures.rss_after_replays_mb = rss_mb(worker.pid)
    finally:
        worker.stop()
        figures.slow_tasks, figures.lost_tasks = worker.slow_tasks, worker.lost_tasks
    return figures


# The weekly tick


@dataclass
class TickFigures:
    """Customers whose weekly measurement falls due at one instant, and how fast one
    worker works through them from that instant on."""

    name: str
    customers: int
    instant: str = ""
    seconds: float | None = None
    worker_cpu_seconds: float | None = None

    @property
    def per_second(self) -> float | None:
        return self.customers / self.seconds if self.seconds else None

    @property
    def cpu_ms_per_customer(self) -> float | None:
        if self.worker_cpu_seconds is None:
            return None
        return self.worker_cpu_seconds * 1000 / self.customers


def _measured_weeks(database: Database) -> int:
    with database.session() as session:
        query = select(func.count()).select_from(TimelineEntry)
        return int(session.exec(query.where(TimelineEntry.kind == MEASURED)).one())


async def _advance(env: WorkflowEnvironment, duration: timedelta, deadline: float) -> None:
    """`env.sleep`, an hour at a time, with the run's deadline for each call: the server
    answers once its clock has moved, which takes as long as the work due on the way. A
    week of 1,000 customers' campaign steps and reminders in one call outlasted the
    client's default timeout, and then, on a slower day, lost its connection ("transport
    error") after about 100 s; an hour's work answers in seconds."""
    left = duration
    while left > timedelta(0):
        step = min(left, ADVANCE_STEP)
        request = SleepRequest()
        request.duration.FromTimedelta(step)
        await env.client.test_service.unlock_time_skipping_with_sleep(
            request, timeout=timedelta(seconds=max(1.0, deadline - time.monotonic()))
        )
        left -= step


async def _cross(env: WorkflowEnvironment, instant: datetime, deadline: float) -> None:
    """Moves the test server's clock to TICK_LEAD before `instant`: whatever was due
    earlier fires on the way."""
    now = await env.get_current_time()
    if instant - TICK_LEAD > now:
        await _advance(env, instant - TICK_LEAD - now, deadline)


async def _timed_tick(
    env: WorkflowEnvironment,
    worker: WorkerProcess,
    done: Callable[[], Awaitable[bool]],
    figures: TickFigures,
    deadline: float,
) -> None:
    """From TICK_LEAD before the instant, the clock moves past it: the wall seconds and
    the worker's CPU until `done`."""
    cpu_before = processes_cpu_seconds([worker.pid])
    started = time.perf_counter()
    crossing = asyncio.ensure_future(_advance(env, 2 * TICK_LEAD, deadline))
    try:
        await _until(done, f"{figures.name}'s weekly tick", deadline, interval=0.1)
        figures.seconds = time.perf_counter() - started
        cpu_after = processes_cpu_seconds([worker.pid])
        if cpu_before is not None and cpu_after is not None:
            figures.worker_cpu_seconds = cpu_after - cpu_before
        await crossing
    finally:
        crossing.cancel()


async def liftoff_tick(
    scratch: Path,
    customers: int,
    cache: int,
    deadline: float,
    *,
    compress: bool = False,
    by_reference: bool = False,
) -> tuple[TickFigures, BareInput]:
    """Customers brought to adoption on the time-skipping server, then its clock moved to
    their first measurement: the default playbook measures Monday 09:00 in each
    customer's zone (and judges the week its grace later), so every customer of one
    zone falls due at the same instant. Also the shape of the work one customer's
    tick does, for the bare twin."""
    figures = TickFigures("Liftoff", customers)
    env = await start_time_skipping_server()
    async with env:
        address = env.client.service_client.config.target_host
        database, worker, onboarding = _liftoff_worker(
            env.client,
            address,
            scratch / "tick",
            cache,
            compress=compress,
            by_reference=by_reference,
        )
        playbook = load_playbook(REPO / "playbooks" / "default.toml")
        ids = [f"tick-{n:05d}" for n in range(customers)]
        try:
            with env.auto_time_skipping_disabled():
                worker.start()
                await _ready(worker, deadline)
                await _in_parallel(
                    functools.partial(onboarding.start, playbook=playbook),
                    [make_handoff(customer_id=customer_id) for customer_id in ids],
                )
                await _settled_count(database, deadline)
                today = (await env.get_current_time()).date()
                for event in (
                    KickoffHeld(held_on=today, goals=["Go live"]),
                    TrainingHeld(held_on=today),
                ):
                    await _in_parallel(functools.partial(onboarding.record, event=event), ids)
                    await _settled_count(database, deadline)
                instants = {await _first_measurement(onboarding, c) for c in (ids[0], ids[-1])}
                if len(instants) != 1:
                    raise RuntimeError(f"the customers' first measurements differ: {instants}")
                (instant,) = instants
                figures.instant = instant.isoformat()
                _log(f"Liftoff tick: {customers} customers in adoption, measured at {instant}")
                await _cross(env, instant, deadline)
                await _settled_count(database, deadline)
                before = await asyncio.to_thread(_measured_weeks, database)

                async def measured() -> bool:
                    count = await asyncio.to_thread(_measured_weeks, database)
                    return count >= before + customers

                await _timed_tick(env, worker, measured, figures, deadline)
                _log(f"Liftoff tick: {customers} measured in {figures.seconds:.1f} s")
                history = await onboarding.temporal.get_workflow_handle(
                    visibility.workflow_id_for(ids[0])
                ).fetch_history()
        finally:
            worker.stop()
            database.dispose()
    since = [e for e in history.events if e.event_time.ToDatetime(tzinfo=UTC) >= instant]
    return figures, bare_input_from([HistoryShape.of(WorkflowHistory(ids[0], since))])


async def _first_measurement(onboarding: OnboardingClient, customer_id: str) -> datetime:
    status = await onboarding.status(customer_id)
    return min(due.at for due in status.state.agenda if due.kind is DueKind.MEASURE)


async def bare_tick(
    scratch: Path, customers: int, cache: int, tick_work: BareInput, deadline: float
) -> TickFigures:
    """As many bare workflows, each waiting for one instant and then running the no-op
    activity groups of a Liftoff customer's tick."""
    figures = TickFigures("bare", customers)
    env = await start_time_skipping_server()
    async with env:
        address = env.client.service_client.config.target_host
        queue = f"tick-bare-{uuid.uuid4().hex[:8]}"
        command = [sys.executable, __file__, "--serve-bare", address, queue, str(cache)]
        worker = WorkerProcess(
            command, dict(os.environ), scratch / "bare-tick-worker.log", "activities"
        )
        activities = sum(tick_work.activity_batches) + sum(tick_work.local_activity_batches)
        try:
            with env.auto_time_skipping_disabled():
                worker.start()
                await _ready(worker, deadline)
                instant = await env.get_current_time() + TICK_AHEAD
                figures.instant = instant.isoformat()
                shape = tick_work.model_copy(
                    update={"wake_at": instant, "timers": 0, "final_sleep": BARE_TIMER}
                )

                async def start(workflow_id: str) -> object:
                    return await env.client.start_workflow(
                        BareWorkflow.run, shape, id=workflow_id, task_queue=queue
                    )

                await _in_parallel(start, [f"bare-tick-{n:05d}" for n in range(customers)])
                await _cross(env, instant, deadline)
                before = worker.reported

                async def ran() -> bool:
                    return worker.reported >= before + customers * activities

                await _timed_tick(env, worker, ran, figures, deadline)
                _log(f"bare tick: {customers} ran in {figures.seconds:.1f} s")
        finally:
            worker.stop()
    return figures


# How many no-op activities this process ran, in --serve-bare mode.
_ran = 0


@activity.defn(name="do_nothing")
async def counted_nothing(step: int) -> int:
    """bare_workflow.do_nothing, counted so the bench sees when the twin is absorbed."""
    global _ran
    _ran += 1
    return await do_nothing(step)


async def serve_bare(address: str, queue: str, cache: int) -> None:
    """The bare twin's worker; prints how many activities it ran, twice a second."""
    client = await Client.connect(address, data_converter=liftoff_data_converter)
    # As the Liftoff worker: LIFTOFF_MAX_CONCURRENT_WORKFLOW_TASKS and _TASK_POLLS.
    settings = Settings()
    async with Worker(
        client,
        task_queue=queue,
        workflows=[BareWorkflow],
        activities=[counted_nothing],
        max_cached_workflows=cache,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(
            settings.max_concurrent_workflow_task_polls
        ),
    ):
        while True:
            print(f"activities {_ran}", flush=True)
            await asyncio.sleep(BARE_REPORT_SECONDS)


def _ratio(ours: float | None, bare: float | None) -> str:
    return f"{ours / bare:.2f}x" if ours and bare else "-"


def format_report(liftoff: PhaseFigures, bare: PhaseFigures) -> str:
    def both(read: Callable[[PhaseFigures], float | None]) -> tuple[float | None, ...]:
        return read(liftoff), read(bare)

    def p(samples: str, fraction: float) -> Callable[[PhaseFigures], float | None]:
        return lambda phase: percentile(getattr(phase, samples), fraction)

    rows: list[Row] = [
        ("starts per second", both(lambda f: f.starts_per_second), "{:.1f}"),
        ("absorbed per second", both(lambda f: f.absorbed_per_second), "{:.1f}"),
        ("worker RSS idle, MB", both(lambda f: f.rss_idle_mb), "{:.0f}"),
        ("worker RSS loaded, MB", both(lambda f: f.rss_loaded_mb), "{:.0f}"),
        ("RSS per cached customer, KB", both(lambda f: f.kb_per_cached), "{:.0f}"),
        ("update p50, ms", both(p("update_ms", 0.5)), "{:.0f}"),
        ("update p95, ms", both(p("update_ms", 0.95)), "{:.0f}"),
        ("query cached p50, ms", both(p("query_cached_ms", 0.5)), "{:.1f}"),
        ("query cached p95, ms", both(p("query_cached_ms", 0.95)), "{:.1f}"),
        ("query replayed p50, ms", both(p("query_replayed_ms", 0.5)), "{:.1f}"),
        ("query replayed p95, ms", both(p("query_replayed_ms", 0.95)), "{:.1f}"),
        ("RSS after replays, MB", both(lambda f: f.rss_after_replays_mb), "{:.0f}"),
        ("workflow tasks over 5 s", both(lambda f: f.slow_tasks), "{:.0f}"),
        ("workflow tasks timed out", both(lambda f: f.lost_tasks), "{:.0f}"),
    ]
    lines = [
        f"Scale: {liftoff.customers:,} customers on one worker each, dev server, "
        f"sticky cache {liftoff.cache:,}, {liftoff.workflow_tasks} workflow tasks at once, "
        f"{liftoff.workflow_task_polls} polls for them"
        + (", Liftoff's payloads compressed" if liftoff.compressed else "")
        + (", playbooks by reference" if liftoff.by_reference else ""),
        *_table(rows),
    ]
    # Only a cache that holds every customer measures what one more costs.
    if liftoff.kb_per_cached is not None and liftoff.cache >= liftoff.customers:
        projected = (liftoff.rss_idle_mb or 0) + liftoff.kb_per_cached * 10_000 / 1024
        lines.append(f"projected RSS with 10,000 customers cached: {projected:,.0f} MB")
    return "\n".join(lines)


def format_tick(ours: TickFigures, theirs: TickFigures) -> str:
    return "\n".join(
        [
            "",
            f"Weekly tick: {ours.customers:,} customers' first measurement due at one instant "
            f"({ours.instant}), time-skipping test server",
            *_table(
                [
                    ("measured per second", (ours.per_second, theirs.per_second), "{:.1f}"),
                    ("seconds from the instant", (ours.seconds, theirs.seconds), "{:.1f}"),
                    (
                        "worker CPU per customer, ms",
                        (ours.cpu_ms_per_customer, theirs.cpu_ms_per_customer),
                        "{:.1f}",
                    ),
                ]
            ),
        ]
    )


Row = tuple[str, tuple[float | None, ...], str]


def _table(rows: Sequence[Row]) -> list[str]:
    lines = [f"{'measure':<30} {'Liftoff':>10} {'bare':>10} {'ratio':>8}"]
    for label, (ours, theirs), style in rows:
        shown = [style.format(v) if v is not None else "-" for v in (ours, theirs)]
        lines.append(f"{label:<30} {shown[0]:>10} {shown[1]:>10} {_ratio(ours, theirs):>8}")
    return lines


async def run(
    customers: int,
    cache: int | None,
    timeout: float,
    *,
    compress: bool = False,
    by_reference: bool = False,
    tick: int = TICK_CUSTOMERS,
) -> tuple[PhaseFigures, PhaseFigures, tuple[TickFigures, TickFigures] | None]:
    deadline = time.monotonic() + timeout
    # Unbounded by default: every customer of a phase cached.
    tick_cache = tick if cache is None else cache
    cache = customers if cache is None else cache
    environment = await start_dev_server()
    async with environment:
        address = environment.client.service_client.config.target_host
        with tempfile.TemporaryDirectory(prefix="liftoff-scale-") as directory:
            scratch = Path(directory)
            liftoff, start_work = await liftoff_phase(
                environment.client,
                address,
                scratch,
                customers,
                cache,
                deadline,
                compress=compress,
                by_reference=by_reference,
            )
            bare = await bare_phase(
                environment.client, address, scratch, customers, cache, start_work, deadline
            )
            # Printed now: the tick's figures follow when it is done.
            print(format_report(liftoff, bare), flush=True)
            ticks = None
            if tick:
                # Its own servers: the dev server's clock cannot be moved to an instant.
                ours, tick_work = await liftoff_tick(
                    scratch,
                    tick,
                    tick_cache,
                    deadline,
                    compress=compress,
                    by_reference=by_reference,
                )
                ticks = ours, await bare_tick(scratch, tick, tick_cache, tick_work, deadline)
    return liftoff, bare, ticks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--cache", type=int, help="sticky cache size (default: every customer)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds, whole run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--compress",
        action="store_true",
        help="Liftoff's client and worker with LIFTOFF_PAYLOAD_COMPRESSION (the bare twin's "
        "payloads are too small to compress)",
    )
    parser.add_argument(
        "--playbooks-by-reference",
        action="store_true",
        help="Liftoff's client and worker with LIFTOFF_PLAYBOOKS_BY_REFERENCE",
    )
    parser.add_argument(
        "--tick",
        type=int,
        default=TICK_CUSTOMERS,
        help=f"customers in the weekly-tick phase (default {TICK_CUSTOMERS:,}; 0 skips it)",
    )
    parser.add_argument("--serve-bare", nargs=3, metavar=("ADDRESS", "QUEUE", "CACHE"))
    args = parser.parse_args(argv)
    if args.serve_bare:
        address, queue, cache = args.serve_bare
        asyncio.run(serve_bare(address, queue, int(cache)))
        return 0
    if not 1 <= args.customers <= MAX_CUSTOMERS:
        parser.error(f"--customers is 1 to {MAX_CUSTOMERS:,}")
    if not 0 <= args.tick <= MAX_CUSTOMERS:
        parser.error(f"--tick is 0 to {MAX_CUSTOMERS:,}")
    liftoff, bare, ticks = asyncio.run(
        run(
            args.customers,
            args.cache,
            args.timeout,
            compress=args.compress,
            by_reference=args.playbooks_by_reference,
            tick=args.tick,
        )
    )
    if ticks:
        print(format_tick(*ticks))
    if args.json:
        figures = {
            "scale": [asdict(liftoff), asdict(bare)],
            "tick": [asdict(phase) for phase in ticks] if ticks else [],
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    from client.connection import exit_without_finalizing

    exit_without_finalizing(main())
