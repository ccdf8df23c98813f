"""How much Liftoff adds on top of bare Temporal, measured on the time-skipping server.

Run it with `make bench` (or `.venv/bin/python bench/bench.py --journeys 50`).

Phase 1 runs N complete onboarding journeys with the real worker activities, a
temporary SQLite database (or, with `--database postgresql`, a fresh schema on the
PostgreSQL of testkit/postgres.py) and an outbox in a temporary directory: start, kickoff,
training, two weeks of good usage (two weekly measurements), the completion review,
onboarded. Phase 2 runs N bare workflows with the same number of activities (in
the same groups) and timers as one journey's history, activities that do nothing.
Then, without a Temporal server (bench/mail_bench.py): email templates rendered per
second, and emails handed per second to a loopback SendGrid through send_email, ledger on.
Then (bench/intake_bench.py): usage events ingested per second through POST /v1/batch
into SQLite and PostgreSQL. Then (bench/list_bench.py): p50/p95 of the list pages,
the REST list and the cohort with 10,000 customers in the projection, on both.

Concurrency on the time-skipping server (see TEMPORAL-NOTES.md, "Pitfall"): the
SDK's automatic time skipping is off for the whole run. Journeys keep the server
clock locked, because between a CSM's events an unlocked clock would race ahead
to the reminders and the deadline; the weeks pass by `env.sleep`, which unlocks
the clock for exactly that long. Bare workflows wait for nobody, so the clock is
unlocked once around each batch and locked again after it. Each phase gets a
fresh test server, which keeps every finished workflow in memory and slows down
as they pile up.

The figures are for comparing changes on one machine, not promises: no figure
here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.api.history.v1 import History, HistoryEvent  # noqa: E402
from temporalio.api.testservice.v1 import (  # noqa: E402
    LockTimeSkippingRequest,
    UnlockTimeSkippingRequest,
)
from temporalio.client import Client, WorkflowHandle, WorkflowHistory  # noqa: E402
from temporalio.runtime import (  # noqa: E402
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from bench.bare_workflow import BareInput, BareResult, BareWorkflow, do_nothing  # noqa: E402
from bench.codec_bench import format_codec_report, run_codec_bench  # noqa: E402
from bench.intake_bench import DEFAULT_EVENTS as DEFAULT_INTAKE_EVENTS  # noqa: E402
from bench.intake_bench import format_intake_report, run_intake_bench  # noqa: E402
from bench.list_bench import DEFAULT_CUSTOMERS as DEFAULT_LIST_CUSTOMERS  # noqa: E402
from bench.list_bench import format_list_report, run_list_bench  # noqa: E402
from bench.mail_bench import DEFAULT_SENDS, format_mail_report, run_mail_bench  # noqa: E402
from client.codec import CompressionCodec, payloads_in  # noqa: E402
from client.connection import data_converter  # noqa: E402
from client.onboarding import RECORD_EVENT, OnboardingClient  # noqa: E402
from client.payloads import liftoff_data_converter  # noqa: E402
from emails.mailers import OutboxMailer  # noqa: E402
from emails.render import build_template_environment  # noqa: E402
from models import visibility  # noqa: E402
from models.events import (  # noqa: E402
    Cancelled,
    CompletionReviewHeld,
    KickoffHeld,
    OnboardingEvent,
    TrainingHeld,
)
from models.onboarding import OnboardingResult, OnboardingStatus, Stage  # noqa: E402
from models.playbook import Playbook  # noqa: E402
from records.database import Database  # noqa: E402
from settings import Settings  # noqa: E402
from testkit import postgres  # noqa: E402
from testkit.factories import SENDER, TEMPLATES, add_usage, make_handoff, make_playbook  # noqa: E402
from testkit.temporal import add_search_attributes, venv_binary, with_data_converter  # noqa: E402
from worker import build_worker, fewer_collections  # noqa: E402
from workflows.onboarding import CustomerOnboardingWorkflow  # noqa: E402

DEFAULT_JOURNEYS = 50
DEFAULT_BATCH = 50
WEEK = timedelta(days=7)
# Usage of each adoption week: the happy path of the test suite. Week 1 meets
# every criterion once; week 2 makes the active-seat ratio hold 2 weeks running.
USAGE_WEEKS: tuple[dict[str, Any], ...] = (
    {"active_users": 7, "quota_units": 40},
    {"active_users": 8},
)
# How long to wait for the workflows to catch up with a command or a skipped week.
CATCH_UP_SECONDS = 120.0
POLL_SECONDS = 0.1
ACTIVITY_THREADS = 8
ACTIVITY_THREAD_PREFIX = "bench-activity"
WARM_UP_WORKFLOWS = 1

AnyHandle = WorkflowHandle[Any, Any]


# Figures


# The marker the SDK records for each local activity's result.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


def compressed_size(history: WorkflowHistory) -> int:
    """The history's protobuf size had it run with LIFTOFF_PAYLOAD_COMPRESSION: each
    payload the codec sees (not search attributes or headers) deflated as it would be."""
    copy = History(events=history.events)
    for payload in payloads_in(copy, skip=("search_attributes", "header")):
        deflated = CompressionCodec.deflate(payload)
        if deflated is not payload:
            payload.CopyFrom(deflated)
    return copy.ByteSize()


def _is_local_activity(event: HistoryEvent) -> bool:
    return (
        event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
    )


@dataclass
class HistoryShape:
    """What one workflow's history holds."""

    events: int
    json_bytes: int
    proto_bytes: int
    compressed_proto_bytes: int
    activities: int
    local_activities: int
    activity_batches: list[int]
    local_activity_batches: list[int]
    timers_started: int
    timers_fired: int
    timers_cancelled: int
    updates: int
    workflow_tasks: int

    @classmethod
    def of(cls, history: WorkflowHistory) -> HistoryShape:
        kinds = Counter(event.event_type for event in history.events)
        # Activities scheduled, and local activities run, by the same workflow task form
        # one group.
        batches: list[int] = []
        local_batches: list[int] = []
        current = local = 0
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                current += 1
            elif _is_local_activity(event):
                local += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                if current or local:
                    batches.append(current)
                    local_batches.append(local)
                current = local = 0
        if current or local:
            batches.append(current)
            local_batches.append(local)
        return cls(
            events=len(history.events),
            json_bytes=len(history.to_json().encode()),
            proto_bytes=History(events=history.events).ByteSize(),
            compressed_proto_bytes=compressed_size(history),
            activities=kinds[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED],
            local_activities=sum(local_batches),
            activity_batches=batches,
            local_activity_batches=local_batches,
            timers_started=kinds[EventType.EVENT_TYPE_TIMER_STARTED],
            timers_fired=kinds[EventType.EVENT_TYPE_TIMER_FIRED],
            timers_cancelled=kinds[EventType.EVENT_TYPE_TIMER_CANCELED],
            updates=kinds[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED],
            workflow_tasks=kinds[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
        )

    @property
    def temporal_work(self) -> tuple[tuple[int, ...], tuple[int, ...], int]:
        """What the bare workflow copies: the activity groups and the timers."""
        return tuple(self.activity_batches), tuple(self.local_activity_batches), self.timers_started


@dataclass
class HistoryFigures:
    """Means over every workflow of a phase, with the spread of the event count."""

    events: float
    events_min: int
    events_max: int
    json_bytes: float
    proto_bytes: float
    compressed_proto_bytes: float
    activities: float
    local_activities: float
    timers_started: float
    timers_fired: float
    timers_cancelled: float
    updates: float
    workflow_tasks: float
    # How many different (activity groups, timers) shapes the histories had.
    distinct_shapes: int

    @classmethod
    def over(cls, shapes: Sequence[HistoryShape]) -> HistoryFigures:
        def mean(values: list[int]) -> float:
            return statistics.fmean(values) if values else 0.0

        events = [s.events for s in shapes] or [0]
        return cls(
            events=mean([s.events for s in shapes]),
            events_min=min(events),
            events_max=max(events),
            json_bytes=mean([s.json_bytes for s in shapes]),
            proto_bytes=mean([s.proto_bytes for s in shapes]),
            compressed_proto_bytes=mean([s.compressed_proto_bytes for s in shapes]),
            activities=mean([s.activities for s in shapes]),
            local_activities=mean([s.local_activities for s in shapes]),
            timers_started=mean([s.timers_started for s in shapes]),
            timers_fired=mean([s.timers_fired for s in shapes]),
            timers_cancelled=mean([s.timers_cancelled for s in shapes]),
            updates=mean([s.updates for s in shapes]),
            workflow_tasks=mean([s.workflow_tasks for s in shapes]),
            distinct_shapes=len({s.temporal_work for s in shapes}),
        )


@dataclass
class PhaseFigures:
    workflows: int
    completed: int
    wall_seconds: float
    cpu_seconds: float
    # Of cpu_seconds, the threads running synchronous activities (None if unknown).
    activity_cpu_seconds: float | None
    server_cpu_seconds: float | None
    # Status queries the driver sent while waiting for workflows to catch up.
    status_queries: int
    # Of cpu_seconds, the driver inserting simulated usage into the database.
    usage_insert_cpu_seconds: float
    history: HistoryFigures

    @property
    def throughput(self) -> float:
        return self.completed / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def cpu_per_workflow(self) -> float:
        return self.cpu_seconds / self.workflows if self.workflows else 0.0

    @property
    def activity_cpu_per_workflow(self) -> float | None:
        return _per(self.activity_cpu_seconds, self.workflows)

    @property
    def server_cpu_per_workflow(self) -> float | None:
        return _per(self.server_cpu_seconds, self.workflows)

    @property
    def rest_cpu_per_workflow(self) -> float:
        """Worker CPU besides the activity threads and the driver's usage inserts:
        workflow tasks, the SDK's polling and payload work, updates and queries. The
        bare twin's no-op activities run on the event loop, so all of its CPU is here."""
        rest = self.cpu_seconds - (self.activity_cpu_seconds or 0.0) - self.usage_insert_cpu_seconds
        return rest / self.workflows if self.workflows else 0.0


def _per(total: float | None, workflows: int) -> float | None:
    return None if total is None or not workflows else total / workflows


@dataclass
class BenchReport:
    journeys: int
    batch_size: int
    mode: str
    journey: PhaseFigures
    bare: PhaseFigures
    bare_input: BareInput
    notes: list[str] = field(default_factory=list)
    database: str = "SQLite"

    @property
    def ratio(self) -> float:
        """Journey wall time over bare wall time, for the same number of workflows."""
        return self.journey.wall_seconds / self.bare.wall_seconds

    @property
    def cpu_ratio(self) -> float:
        return self.journey.cpu_seconds / self.bare.cpu_seconds if self.bare.cpu_seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        def phase(figures: PhaseFigures) -> dict[str, Any]:
            return {
                **asdict(figures),
                "throughput_per_second": figures.throughput,
                "cpu_seconds_per_workflow": figures.cpu_per_workflow,
                "activity_cpu_seconds_per_workflow": figures.activity_cpu_per_workflow,
                "usage_insert_cpu_seconds_per_workflow": figures.usage_insert_cpu_seconds
                / figures.workflows,
                "server_cpu_seconds_per_workflow": figures.server_cpu_per_workflow,
                "rest_cpu_seconds_per_workflow": figures.rest_cpu_per_workflow,
            }

        return {
            "journeys": self.journeys,
            "batch_size": self.batch_size,
            "mode": self.mode,
            "database": self.database,
            "journey": phase(self.journey),
            "bare": phase(self.bare),
            "ratio": self.ratio,
            "cpu_ratio": self.cpu_ratio,
            "bare_input": self.bare_input.model_dump(mode="json"),
            "notes": self.notes,
        }


# Measuring CPU


def _test_server_pids() -> list[int]:
    """Child processes of this one (the test server), read from /proc on Linux."""
    me = os.getpid()
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == me:
            pids.append(int(entry))
    return pids


def processes_cpu_seconds(pids: Sequence[int]) -> float | None:
    """User and system CPU seconds of these processes, from /proc (Linux)."""
    if not pids:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = stat[stat.rfind(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _activity_threads_cpu_seconds() -> float | None:
    """CPU time of the threads that run the synchronous activities (database, email)."""
    try:
        return sum(
            time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
            for thread in threading.enumerate()
            if thread.name.startswith(ACTIVITY_THREAD_PREFIX) and thread.ident is not None
        )
    except (AttributeError, OSError):  # not on this platform, or a thread just ended
        return None


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


@asynccontextmanager
async def measured(
    server_pids: Sequence[int], into: dict[str, float | None]
) -> AsyncIterator[None]:
    """Wall time, this process's CPU (worker, activities, driver) and the server's CPU."""
    server_before = processes_cpu_seconds(server_pids)
    threads_before = _activity_threads_cpu_seconds()
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    yield
    into["wall"] = time.perf_counter() - wall_before
    into["cpu"] = time.process_time() - cpu_before
    into["activity_cpu"] = _delta(threads_before, _activity_threads_cpu_seconds())
    into["server_cpu"] = _delta(server_before, processes_cpu_seconds(server_pids))


# The environment


async def start_environment() -> WorkflowEnvironment:
    # The SDK core logs to stdout by default; send its errors to a Python logger
    # (stderr), so `--json` output stays clean. Its warning that the test server is
    # older than 1.16 (heartbeat details) is expected here and filtered out.
    runtime = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("bench.temporal")),
            )
        )
    )
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=liftoff_data_converter,
        test_server_existing_path=venv_binary("temporal-test-server"),
        runtime=runtime,
    )
    await add_search_attributes(env.client)
    return env


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _batches(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


# Phase 1: journeys


def _measured(week: int) -> Callable[[OnboardingStatus], bool]:
    return lambda status: status.state.week_index >= week or status.state.stage.terminal


class JourneyDriver:
    """Plays the CSM and the product's usage for a batch of customers at once."""

    def __init__(
        self,
        env: WorkflowEnvironment,
        client: Client,
        task_queue: str,
        database: Database,
        playbook: Playbook,
    ) -> None:
        self.env = env
        # The environment's client, or one with another data converter.
        self.client = client
        self.task_queue = task_queue
        self.database = database
        self.playbook = playbook
        # Status queries sent while waiting for the workflows to catch up.
        self.queries = 0
        # CPU spent inserting the simulated usage (the product's job, not Liftoff's).
        self.usage_cpu_seconds = 0.0

    def reset_counts(self) -> None:
        self.queries = 0
        self.usage_cpu_seconds = 0.0

    async def wait_all(
        self,
        handles: Sequence[AnyHandle],
        done: Callable[[OnboardingStatus], bool],
        what: str,
    ) -> list[OnboardingStatus]:
        """Poll the status query until every journey has caught up (or the wait runs out)."""
        statuses: dict[int, OnboardingStatus] = {}
        pending = list(range(len(handles)))
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while True:
            self.queries += len(pending)
            results: list[OnboardingStatus] = await asyncio.gather(
                *(handles[i].query(CustomerOnboardingWorkflow.status) for i in pending)
            )
            still = []
            for i, status in zip(pending, results, strict=True):
                statuses[i] = status
                if not done(status):
                    still.append(i)
            pending = still
            if not pending:
                return [statuses[i] for i in range(len(handles))]
            if time.monotonic() > deadline:
                stages = Counter(statuses[i].state.stage.value for i in pending)
                raise RuntimeError(
                    f"{len(pending)} journeys never reached {what}; stages: {stages}"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def _record(self, handles: Sequence[AnyHandle], event: OnboardingEvent) -> None:
        await asyncio.gather(*(h.execute_update(RECORD_EVENT, event) for h in handles))

    async def run_batch(self, size: int) -> list[tuple[AnyHandle, OnboardingResult]]:
        handoffs = [make_handoff() for _ in range(size)]
        # As `liftoff start` and the API start a customer (search attributes set at start).
        onboarding = OnboardingClient(self.client, self.task_queue)
        await asyncio.gather(*(onboarding.start(h, self.playbook) for h in handoffs))
        handles: list[AnyHandle] = [
            self.client.get_workflow_handle(
                visibility.workflow_id_for(handoff.customer_id), result_type=OnboardingResult
            )
            for handoff in handoffs
        ]
        await self.wait_all(handles, lambda s: s.state.stage is Stage.KICKOFF, "kickoff")
        today = (await self.env.get_current_time()).date()
        await self._record(handles, KickoffHeld(held_on=today, goals=["Scan every invoice"]))
        await self._record(handles, TrainingHeld(held_on=today, attendees=["Ari Admin"]))

        for week, usage in enumerate(USAGE_WEEKS, start=1):
            now = await self.env.get_current_time()
            inserting = time.thread_time()
            for handoff in handoffs:
                add_usage(self.database, handoff.customer_id, now, **usage)
            self.usage_cpu_seconds += time.thread_time() - inserting
            # The first verdict comes the grace period after the week; the next a week later.
            grace = self.playbook.measurement.grace_period if week == 1 else timedelta(0)
            await self.env.sleep(WEEK + grace)
            await self.wait_all(handles, _measured(week), f"the measurement of week {week}")

        statuses = await self.wait_all(handles, lambda s: True, "status")
        in_review = [s.state.stage is Stage.COMPLETION_REVIEW for s in statuses]
        ready = [h for h, due in zip(handles, in_review, strict=True) if due]
        others = [h for h, due in zip(handles, in_review, strict=True) if not due]
        today = (await self.env.get_current_time()).date()
        await self._record(ready, CompletionReviewHeld(held_on=today, success_confirmed=True))
        # Journeys that did not meet the criteria are not counted; end them cleanly.
        await self._record(others, Cancelled(reason="benchmark over"))
        await asyncio.gather(*(h.result() for h in others))
        results: list[OnboardingResult] = await asyncio.gather(*(h.result() for h in ready))
        return list(zip(ready, results, strict=True))


# Phase 2: bare workflows


async def run_bare_batch(
    env: WorkflowEnvironment, task_queue: str, size: int, bare_input: BareInput
) -> list[tuple[AnyHandle, BareResult]]:
    handles: list[AnyHandle] = await asyncio.gather(
        *(
            env.client.start_workflow(
                BareWorkflow.run, bare_input, id=f"bare-{uuid.uuid4()}", task_queue=task_queue
            )
            for _ in range(size)
        )
    )
    test_service = env.client.test_service
    await test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
    try:
        results: list[BareResult] = await asyncio.gather(*(h.result() for h in handles))
    finally:
        await test_service.lock_time_skipping(LockTimeSkippingRequest())
    return list(zip(handles, results, strict=True))


# The run


async def history_shapes(handles: Sequence[AnyHandle]) -> list[HistoryShape]:
    histories = await asyncio.gather(*(h.fetch_history() for h in handles))
    return [HistoryShape.of(history) for history in histories]


def bare_input_from(shapes: Sequence[HistoryShape]) -> BareInput:
    """The commonest journey shape: its activity groups and its number of timers."""
    (batches, local, timers), _ = Counter(s.temporal_work for s in shapes).most_common(1)[0]
    return BareInput(
        activity_batches=list(batches), local_activity_batches=list(local), timers=timers
    )


async def _phase(
    batches: Sequence[int],
    server_pids: Sequence[int],
    run_batch: Callable[[int], Awaitable[list[tuple[AnyHandle, Any]]]],
    before_measuring: Callable[[], None] = lambda: None,
) -> tuple[dict[str, float | None], list[tuple[AnyHandle, Any]]]:
    # One workflow first, not counted: the worker's first task pays for loading the
    # workflow into the sandbox, which a long-running worker pays once.
    await run_batch(WARM_UP_WORKFLOWS)
    before_measuring()
    timing: dict[str, float | None] = {}
    finished: list[tuple[AnyHandle, Any]] = []
    async with measured(server_pids, timing):
        for size in batches:
            finished += await run_batch(size)
            _log(f"  {len(finished)} done")
    return timing, finished


def _figures(
    workflows: int,
    completed: int,
    timing: dict[str, float | None],
    shapes: list[HistoryShape],
    status_queries: int = 0,
    usage_insert_cpu_seconds: float = 0.0,
) -> PhaseFigures:
    return PhaseFigures(
        workflows=workflows,
        completed=completed,
        wall_seconds=timing["wall"] or 0.0,
        cpu_seconds=timing["cpu"] or 0.0,
        activity_cpu_seconds=timing["activity_cpu"],
        server_cpu_seconds=timing["server_cpu"],
        status_queries=status_queries,
        usage_insert_cpu_seconds=usage_insert_cpu_seconds,
        history=HistoryFigures.over(shapes),
    )


@asynccontextmanager
async def fresh_environment() -> AsyncIterator[tuple[WorkflowEnvironment, list[int]]]:
    """A test server of its own for each phase: the server keeps every finished
    workflow in memory and slows down as they pile up, which would penalise
    whichever phase ran second."""
    env = await start_environment()
    try:
        # The SDK must not unlock the clock on its own around result() calls.
        with env.auto_time_skipping_disabled():
            yield env, _test_server_pids()
    finally:
        await env.shutdown()


@contextmanager
def journey_database(kind: str, scratch: Path) -> Iterator[Database]:
    """The journeys' database: a file in `scratch`, or a fresh PostgreSQL schema."""
    if kind == "sqlite":
        yield Database(f"sqlite:///{scratch / 'bench.db'}")
        return
    reason = postgres.unreachable()
    if reason is not None:
        raise RuntimeError(reason)
    with postgres.fresh_schema("bench_journeys") as database:
        yield database


async def run_bench(
    journeys: int = DEFAULT_JOURNEYS,
    batch_size: int = DEFAULT_BATCH,
    *,
    playbooks_by_reference: bool = False,
    database_kind: str = "sqlite",
) -> BenchReport:
    if journeys < 1 or batch_size < 1:
        raise ValueError("journeys and batch size must be at least 1")
    batch_size = min(batch_size, journeys)
    batches = _batches(journeys, batch_size)
    mode = "sequential" if batch_size == 1 else f"concurrent, in batches of up to {batch_size}"
    playbook = make_playbook()
    notes: list[str] = []

    with (
        tempfile.TemporaryDirectory(prefix="liftoff-bench-") as scratch,
        ThreadPoolExecutor(ACTIVITY_THREADS, ACTIVITY_THREAD_PREFIX) as pool,
        journey_database(database_kind, Path(scratch)) as database,
    ):
        database.migrate()
        try:
            async with fresh_environment() as (env, server_pids):
                journey_queue = f"bench-journey-{uuid.uuid4()}"
                client = env.client
                if playbooks_by_reference:
                    settings = Settings(
                        database_url=database.url.render_as_string(hide_password=False),
                        playbooks_by_reference=True,
                    )
                    client = with_data_converter(client, data_converter(settings))
                async with build_worker(
                    client,
                    task_queue=journey_queue,
                    database=database,
                    mailer=OutboxMailer(Path(scratch) / "outbox"),
                    templates=build_template_environment(TEMPLATES),
                    sender=SENDER,
                    activity_executor=pool,
                ):
                    driver = JourneyDriver(env, client, journey_queue, database, playbook)
                    _log(f"phase 1: {journeys} journeys, {mode}")
                    journey_timing, finished = await _phase(
                        batches, server_pids, driver.run_batch, driver.reset_counts
                    )
                onboarded = [h for h, s in finished if s.stage is Stage.ONBOARDED]
                journey_shapes = await history_shapes(onboarded)
        finally:
            database.dispose()
    database_name = "PostgreSQL" if database_kind == "postgresql" else "SQLite"

    if any(s.runs > 1 for _, s in finished):
        notes.append("some journeys continued as new: only their first run is counted")
    if not journey_shapes:
        raise RuntimeError("no journey was onboarded: nothing to compare against")
    journey = _figures(
        journeys,
        len(onboarded),
        journey_timing,
        journey_shapes,
        driver.queries,
        driver.usage_cpu_seconds,
    )
    if journey.history.distinct_shapes > 1:
        notes.append(
            f"journey histories had {journey.history.distinct_shapes} different sets of "
            "activity groups and timers (it depends on when updates land); the bare "
            "workflow copies the commonest one"
        )

    bare_input = bare_input_from(journey_shapes)
    async with fresh_environment() as (env, server_pids):
        bare_queue = f"bench-bare-{uuid.uuid4()}"
        async with Worker(
            env.client, task_queue=bare_queue, workflows=[BareWorkflow], activities=[do_nothing]
        ):
            _log(f"phase 2: {journeys} bare workflows, {mode}")
            bare_timing, bare_finished = await _phase(
                batches,
                server_pids,
                lambda size: run_bare_batch(env, bare_queue, size, bare_input),
            )
        bare_shapes = await history_shapes([h for h, _ in bare_finished])
    bare = _figures(journeys, len(bare_finished), bare_timing, bare_shapes)

    if playbooks_by_reference:
        notes.append(
            "journeys ran with LIFTOFF_PLAYBOOKS_BY_REFERENCE: each history names the "
            "playbook by its hash, kept once in the database"
        )
    return BenchReport(
        journeys=journeys,
        batch_size=batch_size,
        mode=mode,
        journey=journey,
        bare=bare,
        bare_input=bare_input,
        notes=notes,
        database=database_name,
    )


# Output


def format_report(report: BenchReport) -> str:
    j, b = report.journey, report.bare

    def cpu_ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 1000:.0f}"

    def ratio(a: float | None, z: float | None) -> str:
        return f"{a / z:.2f}x" if a is not None and z else ""

    rows: list[tuple[str, str, str, str]] = [
        ("workflows completed", f"{j.completed}/{j.workflows}", f"{b.completed}/{b.workflows}", ""),
        (
            "wall time, all workflows (s)",
            f"{j.wall_seconds:.2f}",
            f"{b.wall_seconds:.2f}",
            f"{report.ratio:.2f}x",
        ),
        ("throughput (workflows/s)", f"{j.throughput:.1f}", f"{b.throughput:.1f}", ""),
        (
            "worker CPU per workflow (ms)",
            cpu_ms(j.cpu_per_workflow),
            cpu_ms(b.cpu_per_workflow),
            ratio(j.cpu_per_workflow, b.cpu_per_workflow),
        ),
        (
            "  of which activity threads (DB, email)",
            cpu_ms(j.activity_cpu_per_workflow),
            "-",
            "",
        ),
        (
            "  of which inserting simulated usage",
            cpu_ms(j.usage_insert_cpu_seconds / j.workflows),
            "-",
            "",
        ),
        (
            "  the rest: workflow tasks, updates, queries",
            cpu_ms(j.rest_cpu_per_workflow),
            cpu_ms(b.rest_cpu_per_workflow),
            ratio(j.rest_cpu_per_workflow, b.rest_cpu_per_workflow),
        ),
        (
            "test server CPU per workflow (ms)",
            cpu_ms(j.server_cpu_per_workflow),
            cpu_ms(b.server_cpu_per_workflow),
            ratio(j.server_cpu_per_workflow, b.server_cpu_per_workflow),
        ),
        (
            "history events per workflow",
            f"{j.history.events:.0f}",
            f"{b.history.events:.0f}",
            ratio(j.history.events, b.history.events),
        ),
        (
            "  fewest - most",
            f"{j.history.events_min} - {j.history.events_max}",
            f"{b.history.events_min} - {b.history.events_max}",
            "",
        ),
        (
            "history size, protobuf (KB)",
            f"{j.history.proto_bytes / 1024:.1f}",
            f"{b.history.proto_bytes / 1024:.1f}",
            ratio(j.history.proto_bytes, b.history.proto_bytes),
        ),
        (
            "  with LIFTOFF_PAYLOAD_COMPRESSION (KB)",
            f"{j.history.compressed_proto_bytes / 1024:.1f}",
            f"{b.history.compressed_proto_bytes / 1024:.1f}",
            ratio(j.history.compressed_proto_bytes, b.history.compressed_proto_bytes),
        ),
        (
            "history size, JSON export (KB)",
            f"{j.history.json_bytes / 1024:.1f}",
            f"{b.history.json_bytes / 1024:.1f}",
            ratio(j.history.json_bytes, b.history.json_bytes),
        ),
        (
            "activities per workflow",
            f"{j.history.activities:.0f}",
            f"{b.history.activities:.0f}",
            "",
        ),
        (
            "local activities per workflow (database work)",
            f"{j.history.local_activities:.0f}",
            f"{b.history.local_activities:.0f}",
            "",
        ),
        (
            "  scheduled in groups",
            str(len(report.bare_input.activity_batches)),
            str(len(report.bare_input.activity_batches)),
            "",
        ),
        (
            "timers started / fired / cancelled",
            f"{j.history.timers_started:.0f} / {j.history.timers_fired:.0f}"
            f" / {j.history.timers_cancelled:.0f}",
            f"{b.history.timers_started:.0f} / {b.history.timers_fired:.0f}"
            f" / {b.history.timers_cancelled:.0f}",
            "",
        ),
        ("updates (CSM events)", f"{j.history.updates:.0f}", f"{b.history.updates:.0f}", ""),
        (
            "status queries while waiting",
            f"{j.status_queries / j.workflows:.1f}",
            f"{b.status_queries / b.workflows:.1f}",
            "",
        ),
        (
            "workflow tasks completed",
            f"{j.history.workflow_tasks:.0f}",
            f"{b.history.workflow_tasks:.0f}",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [
        f"Liftoff benchmark: {report.journeys} onboarding journeys vs {report.journeys} "
        "bare workflows, time-skipping test server",
        f"Driven {report.mode}; weeks skipped with env.sleep, clock locked otherwise;",
        "each phase on a fresh test server.",
        "Journey: start, kickoff, training, 2 weekly measurements with good usage,",
        f"completion review -> onboarded; real activities, {report.database}, outbox on disk.",
        "Bare: the same activity groups and timers as one journey, activities do nothing.",
        f"Each phase warms its worker up with {WARM_UP_WORKFLOWS} workflow, not counted.",
        "",
        f"{'':{width}}  {'journey':>12}  {'bare':>12}  {'ratio':>8}",
    ]
    lines += [f"{r[0]:{width}}  {r[1]:>12}  {r[2]:>12}  {r[3]:>8}" for r in rows]
    lines += [
        "",
        "Worker CPU is this process's CPU time (workflow tasks, activities, and the driver's",
        "updates, queries and usage inserts) divided by the number of workflows. The bare",
        "activities are async and run on the event loop, so they have no activity threads.",
    ]
    lines += [f"Note: {note}" for note in report.notes]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--journeys", type=int, default=DEFAULT_JOURNEYS, help="workflows per phase (default 50)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        help="workflows driven at once (default 50; 1 drives them one at a time)",
    )
    parser.add_argument(
        "--mail-sends",
        type=int,
        default=DEFAULT_SENDS,
        help=f"emails sent to the loopback SendGrid (default {DEFAULT_SENDS})",
    )
    parser.add_argument(
        "--intake-events",
        type=int,
        default=DEFAULT_INTAKE_EVENTS,
        help=f"usage events posted to /v1/batch, per database (default {DEFAULT_INTAKE_EVENTS})",
    )
    parser.add_argument(
        "--list-customers",
        type=int,
        default=DEFAULT_LIST_CUSTOMERS,
        help=f"customers in the projection for the list pages (default {DEFAULT_LIST_CUSTOMERS})",
    )
    parser.add_argument(
        "--playbooks-by-reference",
        action="store_true",
        help="run the journeys with LIFTOFF_PLAYBOOKS_BY_REFERENCE on",
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the journeys' database (default sqlite; postgresql: a fresh schema on the "
        "server of LIFTOFF_TEST_POSTGRES_URL, 127.0.0.1:5432/test by default)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the figures as JSON (the table goes to stderr)"
    )
    args = parser.parse_args(argv)
    if args.mail_sends < 1:
        parser.error("--mail-sends must be at least 1")  # before minutes of journeys
    if args.intake_events < 1:
        parser.error("--intake-events must be at least 1")
    if args.list_customers < 1:
        parser.error("--list-customers must be at least 1")
    # The collector as the service's worker runs it (worker.run_worker).
    with fewer_collections():
        report = asyncio.run(
            run_bench(
                args.journeys,
                args.batch_size,
                playbooks_by_reference=args.playbooks_by_reference,
                database_kind=args.database,
            )
        )
    _log(f"email: rendering every template, then {args.mail_sends} sends")
    mail = run_mail_bench(args.mail_sends)
    _log(f"usage intake: {args.intake_events} events through /v1/batch, per database")
    intake = run_intake_bench(args.intake_events)
    _log(f"lists: {args.list_customers} customers in the projection, per database")
    lists = run_list_bench(args.list_customers)
    codec = run_codec_bench()
    table = "\n\n".join(
        [
            format_report(report),
            format_mail_report(mail),
            format_intake_report(intake),
            format_list_report(lists),
            format_codec_report(codec),
        ]
    )
    if args.json:
        # JSON for machines on stdout; the table still reaches a human on stderr.
        figures = {
            **report.to_json(),
            "mail": mail.to_json(),
            "intake": intake.to_json(),
            "lists": lists.to_json(),
            "codec": codec.to_json(),
        }
        print(json.dumps(figures, indent=2))
        print(table, file=sys.stderr)
    else:
        print(table)
    return 0


if __name__ == "__main__":
    from client.connection import exit_without_finalizing

    exit_without_finalizing(main())
