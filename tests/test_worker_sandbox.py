"""The worker's sandbox shares modules between workflows (for memory) and still fails a
workflow task that reads the clock outside `workflow.now()`."""

from __future__ import annotations

import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from tests.support.clock_workflows import Deterministic, ReadsTheClock
from tests.support.eventually import eventually


async def test_a_clock_read_fails_the_task_and_workflow_now_is_fine(client: Client) -> None:
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ReadsTheClock, Deterministic],
        workflow_runner=__import__(
            "temporalio.worker.workflow_sandbox", fromlist=["x"]
        ).SandboxedWorkflowRunner(),
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
