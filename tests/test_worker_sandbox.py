"""The worker's two sandboxes: the strict one (the test suite's) fails a workflow task that
reads the clock outside `workflow.now()`; the shared one (the service's default, for
memory) does not, which is why the tests run the strict one. Both ask the workflow for a
payload's serialization context directly, with the SDK's answer. Workflows share one
decoded copy of each playbook."""

from __future__ import annotations

import gc
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.api.enums.v1 import CommandType, EventType
from temporalio.converter import ActivitySerializationContext, WorkflowSerializationContext
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker, WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox._runner import _Instance

from testkit.factories import make_playbook
from tests.support.clock_workflows import Deterministic, ReadsTheClock, SchedulesActivities, echo
from tests.support.eventually import eventually
from worker import DirectContextSandboxedRunner, _DirectContextInstance, sandboxed_runner
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


@dataclass
class Asked:
    command_type: int | None
    direct: Any
    through_exec: Any
    found_the_workflow: bool


def comparing_runner(strict: bool, asked: list[Asked]) -> DirectContextSandboxedRunner:
    """The service's runner, also asking each question the SDK's way (`exec` in the
    sandbox) and keeping both answers."""

    class Comparing(_DirectContextInstance):
        def get_serialization_context(self, command_info: Any) -> Any:
            direct = super().get_serialization_context(command_info)
            through_exec = _Instance.get_serialization_context(self, command_info)
            kind = None if command_info is None else command_info.command_type
            asked.append(Asked(kind, direct, through_exec, self._in_sandbox() is not None))
            return direct

        def get_external_store_context(self, command_info: Any) -> Any:
            direct = super().get_external_store_context(command_info)
            through_exec = _Instance.get_external_store_context(self, command_info)
            asked.append(Asked(-1, direct, through_exec, self._in_sandbox() is not None))
            return direct

    class ComparingRunner(DirectContextSandboxedRunner):
        def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
            return Comparing(det, self.runner_class, self.restrictions)

    restrictions = sandboxed_runner(strict=strict).restrictions
    return ComparingRunner(restrictions=restrictions)


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "shared"])
async def test_the_serialization_context_asked_directly_is_the_sdks_answer(
    env: WorkflowEnvironment, strict: bool
) -> None:
    asked: list[Asked] = []
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[SchedulesActivities],
        activities=[echo],
        workflow_runner=comparing_runner(strict, asked),
    ):
        result = await env.client.execute_workflow(
            SchedulesActivities.run, "hello", id=f"ctx-{queue}", task_queue=queue
        )
    assert result == "hello HELLO"
    # The direct path was taken: a later SDK that moves the sandboxed workflow makes
    # the runner fall back to `exec`, and this says so.
    assert asked and all(a.found_the_workflow for a in asked)
    assert [a for a in asked if a.direct != a.through_exec] == []
    contexts = [a.direct for a in asked if a.command_type != -1]
    scheduled = [
        a.direct for a in asked if a.command_type == CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK
    ]
    # Both kinds of answer were compared, not only the workflow's own.
    assert any(isinstance(c, WorkflowSerializationContext) for c in contexts)
    assert any(
        isinstance(c, ActivitySerializationContext) and c.activity_type == "echo" for c in scheduled
    )
