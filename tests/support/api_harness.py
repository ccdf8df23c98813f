"""The HTTP app over a real worker on a local dev server (visibility queries need it).

`api` gives each test a fresh database, a worker on its own task queue, the app
wired as `liftoff serve` wires it, and httpx clients that speak to it in-process.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.services import Services
from client.onboarding import OnboardingClient
from models.onboarding import OnboardingStatus, Stage
from records.database import Database
from records.playbooks import load_playbook
from records.tokens import TokenRole, create_token
from testkit.factories import REPO
from tests.support.eventually import eventually
from tests.support.temporal import onboarding_worker

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

    async def past_handoff(self, customer_id: str, *, timeout: float = 30.0) -> OnboardingStatus:
        """Once the workflow's first task and its stored effects have run: an update sent
        sooner meets the initial handoff state, and the customer's pages need its row."""
        return await eventually(
            lambda: self.services.onboarding.status(customer_id),
            lambda status: (
                status.state.stage is not Stage.HANDOFF and status.pending_side_effects == 0
            ),
            what=f"{customer_id} past its handoff",
            timeout=timeout,
            interval=0.05,
        )

    async def settled(self, customer_id: str, *, timeout: float = 30.0) -> OnboardingStatus:
        """Once every effect the workflow queued has run: the lists and the cohort read
        the projection its store writes keep, which an update's reply does not wait for."""
        return await eventually(
            lambda: self.services.onboarding.status(customer_id),
            lambda status: status.pending_side_effects == 0,
            what=f"{customer_id}'s effects written",
            timeout=timeout,
            interval=0.05,
        )


@pytest.fixture
async def api(
    local_env: WorkflowEnvironment, sqlite_database: Database, tmp_path: Path
) -> AsyncIterator[ApiHarness]:
    task_queue = f"api-{uuid.uuid4()}"
    outbox = tmp_path / "outbox"
    services = Services(
        onboarding=OnboardingClient(local_env.client, task_queue),
        database=sqlite_database,
        playbook=load_playbook(REPO / "playbooks" / "default.toml"),
    )
    async with onboarding_worker(local_env.client, task_queue, sqlite_database, outbox):
        yield ApiHarness(
            app=create_app(services),
            services=services,
            database=sqlite_database,
            temporal=local_env.client,
            outbox=outbox,
        )
