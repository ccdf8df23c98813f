"""Several workers and API processes: a cohort on two of each survives losing one of each.

One PostgreSQL database (a fresh schema) and one dev server; two `worker.py` processes
on the same task queue and two `liftoff serve` processes, all started at once, so the
four migrate the empty schema together. Emails go to the loopback SendGrid with
scheduled sends on (LIFTOFF_SENDGRID_SEND_DELAY_MINUTES), so every message a recipient
would get is counted here.

The cohort plays what people and the product do, through the APIs only: each customer
is started by REST, its CSM records the kickoff, a goal, the training and (once the
weekly measurements met the criteria) the completion review, and the product sends each
adoption week's usage to the Segment intake. Requests take turns between the two APIs;
one that does not answer is sent to the other, with the same event id or messageId, as
an integration retrying would. Customers start one after another (each once the one
before had its kickoff recorded), so when half the cohort is in adoption the others are
still being started and kicked off; then one worker and one API process are killed with
SIGKILL, in the middle of that traffic.

Then every workflow has completed, onboarded; each CSM event is on its customer's
timeline once; every usage call sent is stored once (by its messageId); and every
(customer, ledger key, recipient) was delivered once, as the email ledger says.

No activity heartbeats, so one the killed worker had started is retried only after its
start-to-close timeout, and its customer's loop waits for it: an email in flight holds
that customer's measurements for MAIL_TIMEOUT and the first retry interval (65 s), a
measurement in flight for MEASURE_TIMEOUT. The waits allow for the longest, and the
playbook's deadline is moved past it, so such a customer is late, not failed. With an
email held up, as in most runs, the test takes about 90 s.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from client.payloads import liftoff_data_converter
from models import visibility
from models.handoff import Contact, Role
from models.onboarding import OnboardingResult, Stage
from models.tables import TimelineEntry, UnmatchedUsage, UsageEvent
from records.database import Database
from records.tokens import TokenRole, create_token
from testkit import postgres
from testkit.factories import demo_playbook_copy, make_handoff
from testkit.sendgrid import SendGridServer
from tests.support.eventually import eventually
from tests.support.processes import (
    free_port,
    launch_api,
    launch_worker,
    liftoff_environment,
    stop,
    wait_until_api_ready,
    wait_until_worker_started,
)
from tests.support.sendgrid import Key, key_of, ledger
from workflows.activity_options import MAIL_RETRY, MAIL_TIMEOUT, MEASURE_TIMEOUT, STORE_TIMEOUT

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

RUN = uuid.uuid4().hex[:8]
COHORT = 12
CSM = "csm@liftoff.example"
LEADER = "leader@liftoff.example"
# The demo's 3-minute deadline and 90-second momentum meeting moved past the longest
# wait for a retried activity, so a customer the kill delays still onboards.
PLAYBOOK_CHANGES = (
    (r'momentum_after = "\d+s"', 'momentum_after = "500s"'),
    (r'deadline = "\d+s"', 'deadline = "600s"'),
)
# A week of usage meeting the demo's criteria for 10 seats and a quota of 100:
# 7 active users, 21 key actions (document_scanned), 40 quota units the first week.
ACTIVE_USERS = 7
KEY_ACTIONS_PER_USER = 3
QUOTA_UNITS = 40.0
CSM_EVENT_KINDS = ("kickoff_held", "goal_agreed", "training_held", "completion_review_held")
# Long enough for a request held up by the killed worker (a workflow task it had taken
# times out in 10 s; the sticky queue moves on after 5 s).
REQUEST_TIMEOUT_SECONDS = 60.0
# An activity the killed worker had started is retried once its timeout has passed.
RETRIED_AFTER = max(
    STORE_TIMEOUT, MAIL_TIMEOUT + (MAIL_RETRY.initial_interval or MAIL_TIMEOUT), MEASURE_TIMEOUT
).total_seconds()
# Each step of a journey (a stage reached, a week measured) comes within this.
STEP_TIMEOUT_SECONDS = RETRIED_AFTER + 60
POLL_SECONDS = 0.3


def expected_emails(customer: str) -> set[Key]:
    def to(role: Role) -> str:
        return f"{role.value}@{customer}.example"

    admin, decider, user = Role.ADMINISTRATOR, Role.DECISION_MAKER, Role.END_USER
    return {
        (customer, f"task:{customer}-1", CSM),  # schedule the kickoff
        *((customer, f"campaign:A:welcome:{role.value}", to(role)) for role in Role),
        (customer, "campaign:shared:setup:administrator", to(admin)),
        *(
            (customer, f"survey:{touchpoint}:{role.value}", to(role))
            for touchpoint, roles in (
                ("after_kickoff", (decider, admin)),
                ("after_training", (admin, user)),
                ("at_completion_review", (decider, admin, user)),
            )
            for role in roles
        ),
    }


@dataclass
class Processes:
    workers: list[subprocess.Popen[str]]
    apis: list[subprocess.Popen[str]]
    urls: list[str]


@contextmanager
def two_of_each(environment: dict[str, str], workdir: Path) -> Iterator[Processes]:
    """Two workers and two APIs, launched together (so they migrate together), once
    all four are ready; each stopped with SIGTERM at the end unless already gone."""
    ports = [free_port(), free_port()]
    found = Processes(
        workers=[launch_worker(environment, workdir, workdir / f"worker-{n}.log") for n in (1, 2)],
        apis=[
            launch_api(environment, workdir, workdir / f"api-{n}.log", port)
            for n, port in zip((1, 2), ports, strict=True)
        ],
        urls=[f"http://127.0.0.1:{port}" for port in ports],
    )
    try:
        for n, worker in enumerate(found.workers, start=1):
            wait_until_worker_started(worker, workdir / f"worker-{n}.log")
        for api, url in zip(found.apis, found.urls, strict=True):
            wait_until_api_ready(api, url)
        yield found
    finally:
        for process in found.workers + found.apis:
            stop(process)


@dataclass
class Cohort:
    """The CSM and the product, talking to whichever API answers: requests take turns,
    and one that gets no answer goes to the other API, unchanged."""

    http: httpx.AsyncClient
    urls: list[str]
    csm_token: str
    write_key: str
    turns: Iterator[int] = field(default_factory=itertools.count)
    # Requests the API of their turn did not answer, by the error, all sent again.
    unanswered: Counter[str] = field(default_factory=Counter)
    events_sent: list[tuple[str, str]] = field(default_factory=list)
    duplicate_answers: int = 0
    usage_sent: dict[str, str] = field(default_factory=dict)  # messageId -> customer
    in_adoption: int = 0
    midway: asyncio.Event = field(default_factory=asyncio.Event)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        first = next(self.turns) % len(self.urls)
        errors: list[str] = []
        for url in self.urls[first:] + self.urls[:first]:
            try:
                return await self.http.request(method, url + path, **kwargs)
            except httpx.TransportError as err:
                errors.append(type(err).__name__)
                self.unanswered[type(err).__name__] += 1
        raise AssertionError(f"no API answered {method} {path}: {errors}")

    def _as_csm(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.csm_token}"}

    async def start(self, customer: str) -> None:
        handoff = make_handoff(
            customer_id=customer,
            csm=CSM,
            cs_leader=LEADER,
            contacts=[
                Contact(email=f"{role.value}@{customer}.example", name=role.value, role=role)
                for role in Role
            ],
        )
        response = await self.request(
            "POST", "/api/customers", json=handoff.model_dump(mode="json"), headers=self._as_csm()
        )
        # 200 when an unanswered start had started it after all.
        assert response.status_code in (200, 201), response.text

    async def record(self, customer: str, kind: str, **fields: Any) -> None:
        event = {"kind": kind, "event_id": f"{customer}:{kind}", **fields}
        response = await self.request(
            "POST", f"/api/customers/{customer}/events", json=event, headers=self._as_csm()
        )
        assert response.status_code == 200, (customer, kind, response.text)
        self.duplicate_answers += response.json()["duplicate"]
        self.events_sent.append((customer, kind))

    async def status(self, customer: str) -> dict[str, Any]:
        response = await self.request("GET", f"/api/customers/{customer}", headers=self._as_csm())
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()["state"]
        return state

    async def until(self, customer: str, done: Any, what: str) -> dict[str, Any]:
        state: dict[str, Any] = await eventually(
            lambda: self.status(customer),
            done,
            what=f"{customer}: {what}",
            timeout=STEP_TIMEOUT_SECONDS,
            interval=POLL_SECONDS,
        )
        return state

    async def send_week_of_usage(self, customer: str, week: int) -> None:
        """Now-stamped, so it falls in the week being measured."""
        now = datetime.now(UTC).isoformat()

        def track(n: int, event: str, **properties: Any) -> dict[str, Any]:
            return {
                "type": "track",
                "userId": f"user-{n}",
                "event": event,
                "messageId": f"{customer}:w{week}:{event}:{n}:{len(calls)}",
                "timestamp": now,
                "context": {"groupId": customer},
                "properties": properties,
            }

        calls: list[dict[str, Any]] = []
        for n in range(ACTIVE_USERS):
            for _ in range(KEY_ACTIONS_PER_USER):
                calls.append(track(n, "document_scanned"))
        if week == 0:
            calls.append(track(0, "document_processed", quantity=QUOTA_UNITS))
        response = await self.request(
            "POST", "/v1/batch", json={"batch": calls}, auth=(self.write_key, "")
        )
        assert response.status_code == 200, response.text
        # A call can find its customer's row not yet stored (its first store write was
        # on the killed worker): kept as unmatched, then stored when the row is.
        assert response.json()["rejected"] == [], response.text
        self.usage_sent.update(dict.fromkeys((call["messageId"] for call in calls), customer))

    async def journey(
        self, customer: str, after: asyncio.Event | None, kicked_off: asyncio.Event
    ) -> None:
        if after is not None:
            await after.wait()
        today = datetime.now(UTC).date().isoformat()
        await self.start(customer)
        await self.until(customer, lambda s: s["stage"] == Stage.KICKOFF, "in kickoff")
        await self.record(customer, "kickoff_held", held_on=today, goals=["Scan every invoice"])
        kicked_off.set()
        await self.record(customer, "goal_agreed", goal="Approve expenses within a day")
        await self.record(customer, "training_held", held_on=today, attendees=["Admin"])
        self.in_adoption += 1
        if self.in_adoption == COHORT // 2:
            self.midway.set()
        # A week's usage, sent as each week begins, until the criteria have been met.
        week = 0
        while True:
            state = await self.until(
                customer,
                lambda s, week=week: s["stage"] != Stage.ADOPTION or s["week_index"] >= week,
                f"week {week} measured",
            )
            if state["stage"] != Stage.ADOPTION:
                break
            await self.send_week_of_usage(customer, week)
            week += 1
        assert state["stage"] == Stage.COMPLETION_REVIEW, state
        await self.record(customer, "completion_review_held", held_on=today, success_confirmed=True)


async def timed_out(client: Client, customers: list[str]) -> Counter[str]:
    """Workflow tasks, and activity attempts by type, that timed out: what the kill
    held up (a retried attempt shows only as the next attempt's start)."""
    found: Counter[str] = Counter()
    for customer in customers:
        handle = client.get_workflow_handle(visibility.workflow_id_for(customer))
        activities: dict[int, str] = {}
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled = event.activity_task_scheduled_event_attributes
                activities[event.event_id] = scheduled.activity_type.name
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started = event.activity_task_started_event_attributes
                if started.last_failure.HasField("timeout_failure_info"):
                    found[activities[started.scheduled_event_id]] += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                found["workflow task"] += 1
    return found


async def completed(client: Client, customers: list[str]) -> dict[str, str]:
    """Each customer's workflow status as Temporal has it."""
    found = {}
    for customer in customers:
        handle = client.get_workflow_handle(visibility.workflow_id_for(customer))
        status = (await handle.describe()).status
        found[customer] = status.name if status is not None else "unknown"
    return found


def stored_usage(database: Database, customers: list[str]) -> Counter[str]:
    """How many usage rows each messageId has."""
    with database.session() as session:
        keys = session.exec(
            select(UsageEvent.event_key).where(col(UsageEvent.customer_id).in_(customers))
        ).all()
    return Counter(str(key) for key in keys)


def csm_events_on_timelines(database: Database, customers: list[str]) -> Counter[tuple[str, str]]:
    with database.session() as session:
        rows = session.exec(
            select(TimelineEntry.customer_id, TimelineEntry.kind).where(
                col(TimelineEntry.customer_id).in_(customers),
                col(TimelineEntry.kind).in_((*CSM_EVENT_KINDS, "event_rejected")),
            )
        ).all()
    return Counter((customer, kind) for customer, kind in rows)


def unmatched_usage(database: Database) -> int:
    with database.session() as session:
        return session.exec(select(func.count()).select_from(UnmatchedUsage)).one()


async def test_a_cohort_survives_losing_one_worker_and_one_api_process(
    sendgrid_server: SendGridServer,
    temporal_address: str,
    postgres_admin_url: str,
    tmp_path: Path,
) -> None:
    customers = [f"multi-{n:02d}-{RUN}" for n in range(COHORT)]
    began = time.monotonic()
    with postgres.fresh_schema("multi", postgres_admin_url) as database:
        environment = liftoff_environment(
            temporal_address,
            tmp_path,
            DATABASE_URL=database.url.render_as_string(hide_password=False),
            LIFTOFF_PLAYBOOK=str(demo_playbook_copy(tmp_path, PLAYBOOK_CHANGES, "multi.toml")),
            LIFTOFF_MAIL_BACKEND="sendgrid",
            SENDGRID_API_KEY=sendgrid_server.api_key,
            LIFTOFF_SENDGRID_HOST=sendgrid_server.url,
            LIFTOFF_SENDGRID_SEND_DELAY_MINUTES="15",
        )
        with two_of_each(environment, tmp_path) as processes:
            csm_token, _ = create_token(database, name="Yuki", role=TokenRole.CSM, csm=CSM)
            write_key, _ = create_token(database, name="Segment", role=TokenRole.INGEST)
            temporal = await Client.connect(
                temporal_address, namespace="default", data_converter=liftoff_data_converter
            )
            async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as http:
                cohort = Cohort(http, processes.urls, csm_token, write_key)

                async def kill_one_of_each_midway() -> None:
                    await cohort.midway.wait()
                    for process in (processes.workers[0], processes.apis[0]):
                        process.send_signal(signal.SIGKILL)
                    for process in (processes.workers[0], processes.apis[0]):
                        await asyncio.to_thread(process.wait, 10)

                kicked_off = [asyncio.Event() for _ in customers]
                ready = time.monotonic()
                await asyncio.gather(
                    kill_one_of_each_midway(),
                    *(
                        cohort.journey(customer, kicked_off[n - 1] if n else None, kicked_off[n])
                        for n, customer in enumerate(customers)
                    ),
                )
            # A workflow completes once its emails went out: none is to come after.
            statuses: dict[str, str] = await eventually(
                lambda: completed(temporal, customers),
                lambda found: set(found.values()) == {WorkflowExecutionStatus.COMPLETED.name},
                what="every workflow completed",
                timeout=STEP_TIMEOUT_SECONDS,
                interval=POLL_SECONDS,
            )
            results = [
                await temporal.get_workflow_handle(
                    visibility.workflow_id_for(customer), result_type=OnboardingResult
                ).result()
                for customer in customers
            ]
            survivors = (processes.workers[1], processes.apis[1])
            held_up = await timed_out(temporal, customers)
        rows = ledger(database)
        usage = stored_usage(database, customers)
        events = csm_events_on_timelines(database, customers)
        unmatched = unmatched_usage(database)

    log.info(
        "several processes: ready after %.1f s, cohort over after %.1f s more; "
        "requests sent again: %s; timed out after the kill: %s; "
        "duplicate event answers: %d; usage calls: %d; "
        "emails accepted %d, delivered %d",
        ready - began,
        time.monotonic() - ready,
        dict(cohort.unanswered),
        dict(held_up),
        cohort.duplicate_answers,
        len(cohort.usage_sent),
        len(sendgrid_server.accepted),
        len(sendgrid_server.delivered),
    )
    assert processes.workers[0].returncode == processes.apis[0].returncode == -signal.SIGKILL
    # SIGTERM: the worker exits 0; `liftoff serve` shuts down cleanly and then, as
    # uvicorn does, re-raises the signal, so it ends by it.
    assert survivors[0].returncode == 0
    assert survivors[1].returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in (tmp_path / "api-2.log").read_text()
    assert len(statuses) == COHORT
    assert {result.stage for result in results} == {Stage.ONBOARDED}

    # Every CSM event once on its customer's timeline, none refused; every answer 200.
    assert len(cohort.events_sent) == COHORT * len(CSM_EVENT_KINDS)
    assert events == Counter(cohort.events_sent)

    # Every usage call once, under its customer.
    assert usage == Counter(dict.fromkeys(cohort.usage_sent, 1))
    assert unmatched == 0

    # Every email once to its recipient, and the ledger says each was sent, as delivered.
    delivered = Counter(map(key_of, sendgrid_server.delivered))
    assert {key: times for key, times in delivered.items() if times > 1} == {}
    assert set(delivered) == set(rows)
    assert {row.status for row in rows.values()} == {"sent"}
    batches: dict[Key, str] = {key_of(body): body["batch_id"] for body in sendgrid_server.delivered}
    assert {key: row.batch_id for key, row in rows.items()} == batches
    # Among them, what every journey sends whatever its timing (a kickoff recorded late
    # also gets the kickoff step, a slow week the nudge): its first task's email, the
    # adoption steps and the three surveys.
    for customer in customers:
        assert expected_emails(customer) <= set(delivered), customer
