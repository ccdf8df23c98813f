"""The worker's two sandboxes: the strict one (the test suite's) fails a workflow task that
reads the clock outside `workflow.now()`; the shared one (the service's default, for
memory) does not, which is why the tests run the strict one. Workflows share one decoded
copy of each playbook."""

from __future__ import annotations

import gc
import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from testkit.factories import make_playbook
from tests.support.clock_workflows import Deterministic, ReadsTheClock
from tests.support.eventually import eventually
from worker import sandboxed_runner
from workflows import shared_playbooks


# On the dev server: a workflow whose task keeps failing would hold the time-skipping
# server's clock still for the tests after it.
async def test_the_strict_sandbox_fails_a_clock_read_and_accepts_workflow_now(
    local_env: WorkflowEnvironment,
) -> None:
    client = local_env.client
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ReadsTheClock, Deterministic],
        workflow_runner=sandboxed_runner(strict=True),
    ):
        fine = await client.execute_workflow(
            Deterministic.run, id=f"fine-{queue}", task_queue=queue
        )
        assert fine
        handle = await client.start_workflow(
            ReadsTheClock.run, id=f"clock-{queue}", task_queue=queue
        )

        async def failures() -> list[str]:
            history = await handle.fetch_history()
            return [
                event.workflow_task_failed_event_attributes.failure.message
                for event in history.events
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            ]

        found = await eventually(failures, bool, what="a failed workflow task", timeout=20)
        assert "datetime.datetime.now" in found[0] or "restricted" in found[0].lower()
        await handle.terminate("test over")


async def test_the_shared_sandbox_lets_a_clock_read_through(local_env: WorkflowEnvironment) -> None:
    client = local_env.client
    # The trade-off the service's default makes for memory, checked so that the docs
    # stay true if the SDK changes.
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[ReadsTheClock], workflow_runner=sandboxed_runner()
    ):
        read = await client.execute_workflow(
            ReadsTheClock.run, id=f"clock-{queue}", task_queue=queue
        )
    assert read.startswith("20")


def test_equal_playbooks_share_one_copy_and_a_changed_one_gets_its_own() -> None:
    first, equal = make_playbook(), make_playbook()
    assert first is not equal and first == equal
    kept = shared_playbooks.shared(first)
    assert shared_playbooks.shared(equal) is kept
    changed = make_playbook(version="v-changed")
    assert shared_playbooks.shared(changed) is changed
    # Held weakly: once no workflow uses a version, its copy goes.
    assert any(copy.version == "v-changed" for copy in shared_playbooks._copies.values())
    del changed
    gc.collect()
    assert not any(copy.version == "v-changed" for copy in shared_playbooks._copies.values())
