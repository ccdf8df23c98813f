"""The HTTP app over a real worker on a local dev server (visibility queries need it).

`api` gives each test a fresh database, a worker on its own task queue, the app
wired as `liftoff serve` wires it, and httpx clients that speak to it in-process.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.mail import MailActivities
from activities.store import StoreActivities
from api.app import create_app
from api.services import Services
from client.onboarding import OnboardingClient
from emails.mailers import OutboxMailer
from emails.render import build_template_environment
from models import visibility
from records.database import Database
from records.playbooks import load_playbook
from records.tokens import TokenRole, create_token
from tests.conftest import REPO, venv_binary
from worker import onboarding_activities
from workflows.onboarding import CustomerOnboardingWorkflow

CSM = "csm@liftoff.example"
OTHER_CSM = "other-csm@liftoff.example"
LEADER = "lead@liftoff.example"
BASE_URL = "http://liftoff.test"


@dataclass
class ApiHarness:
    app: FastAPI
    services: Services
    database: Database
    temporal: Client
    outbox: Path

    def token(self, role: TokenRole, csm: str | None = None) -> str:
        token, _ = create_token(self.database, name=f"test {role.value}", role=role, csm=csm)
        return token

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, headers=headers
        )

    def as_csm(self, csm: str = CSM) -> httpx.AsyncClient:
        return self.client(self.token(TokenRole.CSM, csm))

    def as_lead(self) -> httpx.AsyncClient:
        return self.client(self.token(TokenRole.LEAD))


@pytest.fixture(scope="session")
async def local_env() -> AsyncIterator[WorkflowEnvironment]:
    """One dev server for the session, with Liftoff's search attributes registered."""
    environment = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=list(visibility.ALL),
        dev_server_log_level="error",
        ui=False,
    )
    async with environment:
        yield environment


@pytest.fixture
async def api(
    local_env: WorkflowEnvironment, sqlite_database: Database, tmp_path: Path
) -> AsyncIterator[ApiHarness]:
    task_queue = f"api-{uuid.uuid4()}"
    outbox = tmp_path / "outbox"
    mail = MailActivities(
        sqlite_database,
        OutboxMailer(outbox),
        build_template_environment(REPO / "templates" / "email"),
        sender="onboarding@liftoff.example",
    )
    services = Services(
        onboarding=OnboardingClient(local_env.client, task_queue),
        database=sqlite_database,
        playbook=load_playbook(REPO / "playbooks" / "default.toml"),
    )
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with Worker(
            local_env.client,
            task_queue=task_queue,
            workflows=[CustomerOnboardingWorkflow],
            activities=onboarding_activities(StoreActivities(sqlite_database), mail),
            activity_executor=executor,
        ):
            yield ApiHarness(
                app=create_app(services),
                services=services,
                database=sqlite_database,
                temporal=local_env.client,
                outbox=outbox,
            )
