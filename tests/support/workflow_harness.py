"""A worker on the time-skipping server with its database and outbox, and helpers
to drive one customer the way a CSM and the product's usage would."""

from __future__ import annotations

import contextlib
import email
import json
import os
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from client.onboarding import RECORD_EVENT, OnboardingClient, start_args
from emails.mailers import Mailer
from models import visibility
from models.events import KickoffHeld, OnboardingEvent, TrainingHeld
from models.handoff import CustomerHandoff
from models.onboarding import (
    TIMELINE_KINDS,
    DueKind,
    EventResult,
    OnboardingStatus,
    Stage,
    TaskKind,
)
from models.playbook import Playbook
from models.tables import StoredPayload, TimelineEntry
from records.database import Database
from records.stored_payloads import store_payloads
from testkit.factories import add_usage, make_playbook
from tests.support.eventually import eventually
from tests.support.temporal import onboarding_worker
from workflows.onboarding import CustomerOnboardingWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
# What saved histories name by reference, under their SHA-256 (save_stored_payloads).
STORED_PAYLOADS = HISTORIES / "stored"
WEEK = timedelta(days=7)


@dataclass
class Harness:
    """A running worker with its database and outbox, and helpers to drive a customer."""

    env: WorkflowEnvironment
    client: Client
    task_queue: str
    database: Database
    outbox: Path
    started: list[WorkflowHandle[Any, Any]] = field(default_factory=list)

    async def start(
        self,
        handoff: CustomerHandoff,
        playbook: Playbook | None = None,
        *,
        max_history_events: int | None = None,
        settle: bool = True,
    ) -> WorkflowHandle[Any, Any]:
        """Start a customer; unless `settle` is false, wait until kickoff is written."""
        handle = await self.client.start_workflow(
            CustomerOnboardingWorkflow.run,
            args=start_args(
                handoff,
                playbook or make_playbook(),
                self.client.data_converter,
                max_history_events=max_history_events,
            ),
            id=visibility.workflow_id_for(handoff.customer_id),
            task_queue=self.task_queue,
        )
        self.started.append(handle)
        if settle:
            await self.wait_for(handle, lambda s: s.state.stage is Stage.KICKOFF)
        return handle

    @property
    def onboarding(self) -> OnboardingClient:
        """Liftoff's own client layer (what the CLI and the API use), on this worker's queue."""
        return OnboardingClient(self.client, self.task_queue)

    async def record(self, handle: WorkflowHandle[Any, Any], event: OnboardingEvent) -> Any:
        return await handle.execute_update(RECORD_EVENT, event, result_type=EventResult)

    async def status(self, handle: WorkflowHandle[Any, Any]) -> OnboardingStatus:
        return await handle.query(CustomerOnboardingWorkflow.status)

    async def wait_for(
        self,
        handle: WorkflowHandle[Any, Any],
        predicate: Callable[[OnboardingStatus], bool],
        *,
        seconds: float = 15,
    ) -> OnboardingStatus:
        """Poll the query until the workflow has caught up and written its side effects."""
        return await eventually(
            lambda: self.status(handle),
            lambda status: predicate(status) and status.pending_side_effects == 0,
            what="workflow condition",
            timeout=seconds,
            interval=0.05,
        )

    async def today(self) -> date:
        return (await self.env.get_current_time()).date()

    async def usage(self, handoff: CustomerHandoff, **week: Any) -> None:
        add_usage(self.database, handoff.customer_id, await self.env.get_current_time(), **week)

    async def next_week(self, handle: WorkflowHandle[Any, Any]) -> OnboardingStatus:
        """Skip to the next measurement (the window's end plus the grace) and its verdict."""
        status = await self.status(handle)
        weeks_before = status.state.week_index
        measure = min(
            (d.at for d in status.state.agenda if d.kind is DueKind.MEASURE), default=None
        )
        now = await self.env.get_current_time()
        # A minute past it: the server then returns once the measurement (and a
        # continue-as-new after it) is done, so no query races a run's end.
        await self.env.sleep(measure - now + timedelta(minutes=1) if measure else WEEK)
        return await self.wait_for(
            handle, lambda s: s.state.week_index > weeks_before or s.state.stage.terminal
        )

    def emails(self, template_subject: str = "") -> list[email.message.Message]:
        messages = [
            email.message_from_bytes(path.read_bytes())
            for path in sorted(self.outbox.glob("*.eml"))
        ]
        return [m for m in messages if template_subject in str(m["Subject"])]

    def timeline(self, customer_id: str) -> list[TimelineEntry]:
        with self.database.session() as session:
            rows = session.exec(
                select(TimelineEntry)
                .where(TimelineEntry.customer_id == customer_id)
                .order_by(TimelineEntry.seq)  # type: ignore[arg-type]
            ).all()
        # A kind the workflow writes that filters do not know fails every test reading it.
        unknown = {row.kind for row in rows} - set(TIMELINE_KINDS)
        assert not unknown, f"timeline kinds missing from TIMELINE_KINDS: {unknown}"
        return list(rows)


@contextlib.asynccontextmanager
async def running_harness(
    env: WorkflowEnvironment,
    client: Client,
    task_queue: str,
    database: Database,
    outbox: Path,
    *,
    mailer: Mailer | None = None,
) -> AsyncIterator[Harness]:
    """A harness whose worker and commands go through `client` (e.g. one that encrypts),
    its emails through `mailer` when given."""
    async with onboarding_worker(client, task_queue, database, outbox, mailer=mailer):
        harness = Harness(env, client, task_queue, database, outbox)
        yield harness
        # A failed test must not leave timers behind that hold the shared clock.
        for handle in harness.started:
            with contextlib.suppress(RPCError):
                await handle.terminate("test finished")


@pytest.fixture
async def harness(
    env: WorkflowEnvironment, task_queue: str, sqlite_database: Database, tmp_path: Path
) -> AsyncIterator[Harness]:
    async with running_harness(
        env, env.client, task_queue, sqlite_database, tmp_path / "outbox"
    ) as harness:
        yield harness


def body_text(message: email.message.Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else ""


KICKOFF_STEP = ":kickoff_prep:"


def received(h: Harness, *, kickoff_step: bool = False) -> dict[str, Counter[str]]:
    """Ledger keys each address received, counted. The kickoff step is left out unless
    asked for: whether it goes out depends on how long a test lets kickoff last."""
    by_address: dict[str, Counter[str]] = defaultdict(Counter)
    for message in h.emails():
        key = str(message["X-Liftoff-Ledger-Key"])
        if kickoff_step or KICKOFF_STEP not in key:
            by_address[str(message["To"])][key] += 1
    return by_address


def open_kinds(status: OnboardingStatus) -> list[TaskKind]:
    return [task.kind for task in status.state.open_tasks]


async def through_training(h: Harness, handle: WorkflowHandle[Any, Any]) -> None:
    today = await h.today()
    await h.record(handle, KickoffHeld(held_on=today, goals=["Scan every invoice"]))
    await h.record(handle, TrainingHeld(held_on=today, attendees=["Ari Admin"]))


async def until_sent(h: Harness, handle: WorkflowHandle[Any, Any], ref: str) -> None:
    """Moves the clock to when the campaign step is due (again, if the daily cap defers
    it) until the step is sent or skipped."""
    while True:
        status = await h.wait_for(
            handle,
            lambda s: ref in s.state.campaign_done or any(d.ref == ref for d in s.state.agenda),
        )
        if ref in status.state.campaign_done:
            return
        due = next(d for d in status.state.agenda if d.ref == ref)
        await h.env.sleep(due.at - await h.env.get_current_time() + timedelta(minutes=1))


def activities_scheduled(history: WorkflowHistory) -> Counter[str]:
    """The ordinary activities a history scheduled on the server, by type."""
    return Counter(
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )


def local_activities_run(history: WorkflowHistory) -> Counter[str]:
    """The local activities a history recorded (one marker each), by type."""
    return Counter(
        json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)[
            "activity_type"
        ]
        for event in history.events
        if event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    )


def save_history(name: str, history_json: str) -> None:
    """With LIFTOFF_SAVE_HISTORIES=1, keep this run's history for test_replay.py.

    Saved histories are committed and never overwritten by a plain test run:
    they stand for customers already in flight under older code.
    """
    target = HISTORIES / f"{name}.json"
    if os.environ.get("LIFTOFF_SAVE_HISTORIES") == "1" and not target.exists():
        HISTORIES.mkdir(exist_ok=True)
        target.write_text(history_json)


def save_stored_payloads(database: Database) -> None:
    """With LIFTOFF_SAVE_HISTORIES=1, keep the payloads saved histories name by reference
    (LIFTOFF_PLAYBOOKS_BY_REFERENCE), each as STORED_PAYLOADS/<sha256>.pb."""
    if os.environ.get("LIFTOFF_SAVE_HISTORIES") != "1":
        return
    STORED_PAYLOADS.mkdir(parents=True, exist_ok=True)
    with database.session() as session:
        for row in session.exec(select(StoredPayload)):
            target = STORED_PAYLOADS / f"{row.sha256}.pb"
            if not target.exists():
                target.write_bytes(row.data)


def replay_database_url(directory: Path) -> str:
    """A database holding every payload the saved histories name, for replaying them."""
    database = Database(f"sqlite:///{directory / 'replay.db'}")
    database.migrate()
    try:
        store_payloads(database, [path.read_bytes() for path in STORED_PAYLOADS.glob("*.pb")])
    finally:
        database.dispose()
    return f"sqlite:///{directory / 'replay.db'}"


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness
