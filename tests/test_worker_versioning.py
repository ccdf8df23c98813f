"""Rolling out a new build with Temporal Worker Versioning, on the dev server.

A versioned worker gets no task until its version is made current; once it is, a
customer already in flight moves to it at its next workflow task (auto-upgrade),
and the old build can stop. docs/operations.md, "Rolling out a workflow change".
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import RoutingConfigUpdateState
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from client.onboarding import OnboardingClient
from models import visibility
from models.events import KickoffHeld, MeetingRequested
from models.onboarding import Stage
from records.database import Database
from settings import Settings
from testkit.factories import make_handoff, make_playbook
from tests.support.eventually import eventually
from tests.support.temporal import onboarding_worker

ROUTED = RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_COMPLETED


async def make_current(client: Client, version: WorkerDeploymentVersion) -> None:
    """What `temporal worker deployment set-current-version` does; the version exists
    once one of its workers has polled, so this waits for that."""

    async def made_current() -> bool:
        try:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace,
                    deployment_name=version.deployment_name,
                    build_id=version.build_id,
                    identity="liftoff rollout test",
                )
            )
        except RPCError:
            return False
        return True

    await eventually(made_current, what=f"{version.to_canonical_string()} made current")

    async def routed() -> bool:
        described = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(
                namespace=client.namespace, deployment_name=version.deployment_name
            )
        )
        info = described.worker_deployment_info
        return (
            info.routing_config.current_deployment_version.build_id == version.build_id
            and info.routing_config_update_state == ROUTED
        )

    # The routing reaches the task queues a moment later, as it would in a rollout.
    await eventually(routed, what=f"tasks routed to {version.to_canonical_string()}")


async def build_of(client: Client, customer_id: str) -> str:
    """The build the customer's last workflow task ran on."""
    handle = client.get_workflow_handle(visibility.workflow_id_for(customer_id))
    described = await handle.describe()
    versioning = described.raw_description.workflow_execution_info.versioning_info
    return versioning.deployment_version.build_id


async def test_a_customer_moves_to_the_new_build_once_it_is_made_current(
    local_env: WorkflowEnvironment, sqlite_database: Database, tmp_path: Path
) -> None:
    client = local_env.client
    deployment = f"liftoff-{uuid.uuid4().hex[:8]}"
    old, new = (WorkerDeploymentVersion(deployment, build) for build in ("2026.12.1", "2026.12.2"))
    task_queue = f"rollout-{uuid.uuid4()}"
    onboarding = OnboardingClient(client, task_queue)
    handoff = make_handoff()
    customer = handoff.customer_id
    today = datetime.now(UTC).date()

    async with onboarding_worker(client, task_queue, sqlite_database, tmp_path, old) as first:
        await make_current(client, old)
        await onboarding.start(handoff, make_playbook())
        await eventually(lambda: build_of(client, customer), "2026.12.1".__eq__, what="on old")

        async with onboarding_worker(client, task_queue, sqlite_database, tmp_path, new):
            # Deployed but not current: the customer's next task stays on the old build.
            await onboarding.record(customer, MeetingRequested(notes="before the switch"))
            assert await build_of(client, customer) == "2026.12.1"

            await make_current(client, new)
            result = await onboarding.record(customer, KickoffHeld(held_on=today, goals=["Go"]))
            assert result.stage in (Stage.KICKOFF, Stage.TRAINING)
            assert await build_of(client, customer) == "2026.12.2"

            # The old build can go: the customer carries on without it.
            await first.shutdown()
            await onboarding.record(customer, MeetingRequested(notes="after the switch"))
            status = await onboarding.status(customer)
            assert [m.notes for m in status.state.meetings if m.notes].count("after the switch")
            assert await build_of(client, customer) == "2026.12.2"


@pytest.mark.parametrize(
    ("environment", "says"),
    [
        ({"LIFTOFF_WORKER_DEPLOYMENT": "liftoff"}, "go together"),
        ({"LIFTOFF_WORKER_BUILD_ID": "2026.12.2"}, "go together"),
        (
            {"LIFTOFF_WORKER_DEPLOYMENT": "lift.off", "LIFTOFF_WORKER_BUILD_ID": "1"},
            "LIFTOFF_WORKER_DEPLOYMENT",
        ),
    ],
)
def test_a_half_or_malformed_versioning_setting_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], says: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=says):
        Settings()


def test_both_settings_name_the_version_the_worker_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIFTOFF_WORKER_DEPLOYMENT", "liftoff")
    monkeypatch.setenv("LIFTOFF_WORKER_BUILD_ID", "2026.12.2")
    assert Settings().worker_version() == WorkerDeploymentVersion("liftoff", "2026.12.2")
    monkeypatch.delenv("LIFTOFF_WORKER_DEPLOYMENT")
    monkeypatch.delenv("LIFTOFF_WORKER_BUILD_ID")
    assert Settings().worker_version() is None
