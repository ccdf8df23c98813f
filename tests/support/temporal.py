"""Temporal for the tests: one server of each kind per session, fresh queues per test,
and the real worker (worker.build_worker) with its emails kept in an outbox."""

from __future__ import annotations

import contextlib
import time
import uuid
import warnings
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from client.payloads import liftoff_data_converter
from emails.mailers import Mailer, OutboxMailer
from emails.opt_out_links import OptOutLinks
from emails.render import build_template_environment
from emails.survey_links import SurveyLinks
from records.database import Database
from testkit.factories import PUBLIC_URL, SENDER, SURVEY_SECRET, TEMPLATES
from testkit.temporal import add_search_attributes, start_dev_server, venv_binary
from worker import build_worker, sandboxed_runner

ACTIVITY_THREADS = 8
# A probe of the shared clock: skipped at once when time skipping works, waited out
# in real time when something holds the lock.
CLOCK_PROBE = timedelta(seconds=2)
LEAKED_LOCKS_AT_MOST = 5


@contextlib.asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of its own, its clock starting now."""
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=liftoff_data_converter,
        test_server_existing_path=venv_binary("temporal-test-server"),
    )
    await add_search_attributes(environment.client)
    async with environment:
        yield environment


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping server, for anything measured in days; shared, so its clock
    is wherever the tests before left it."""
    async with time_skipping_server() as environment:
        yield environment


async def clock_held(env: WorkflowEnvironment) -> bool:
    """Whether the test server's clock only moves in real time: its time-skipping
    lock is held by something."""
    started = time.monotonic()
    await env.sleep(CLOCK_PROBE)
    return time.monotonic() - started >= CLOCK_PROBE.total_seconds() * 0.95


@pytest.fixture(autouse=True)
async def shared_clock_left_free(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After each test on the shared server, give back any time-skipping lock a
    terminated run kept. The test server (1.x) keeps the lock of a workflow task or
    activity that was in flight when its run was terminated (a harness ending a test
    mid-write), and then the clock moves only in real time: every later `env.sleep`
    of days hangs the suite. Seen in CI; reproduced in tests/test_test_server.py."""
    yield
    if "env" not in request.fixturenames:
        return
    env: WorkflowEnvironment = request.getfixturevalue("env")
    released = 0
    while await clock_held(env):
        if released == LEAKED_LOCKS_AT_MOST:
            pytest.fail(f"the shared clock stays held after {released} locks given back")
        await env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
        released += 1
    if released:
        warnings.warn(
            f"{request.node.nodeid} left {released} time-skipping lock(s) held on the "
            "shared test server; given back",
            stacklevel=1,
        )


@pytest.fixture(scope="session")
async def local_env() -> AsyncIterator[WorkflowEnvironment]:
    """One dev server for the session."""
    environment = await start_dev_server()
    async with environment:
        yield environment


@pytest.fixture
def client(env: WorkflowEnvironment) -> Client:
    return env.client


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4()}"


@asynccontextmanager
async def onboarding_worker(
    client: Client,
    task_queue: str,
    database: Database,
    outbox: Path,
    version: WorkerDeploymentVersion | None = None,
    mailer: Mailer | None = None,
) -> AsyncIterator[Worker]:
    """The worker as `python worker.py` wires it, sending its emails to `outbox` (or
    through `mailer`); with `version`, one build of a versioned deployment."""
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(
            client,
            task_queue=task_queue,
            database=database,
            mailer=mailer or OutboxMailer(outbox),
            templates=build_template_environment(TEMPLATES),
            sender=SENDER,
            activity_executor=executor,
            survey_links=SurveyLinks(SURVEY_SECRET, PUBLIC_URL),
            opt_out_links=OptOutLinks(SURVEY_SECRET, PUBLIC_URL),
            version=version,
            # The strict sandbox: a clock read in workflow code fails the tests.
            workflow_runner=sandboxed_runner(strict=True),
        ) as worker:
            yield worker
