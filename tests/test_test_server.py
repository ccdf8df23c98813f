"""The time-skipping test server's lock, which the shared-clock guard in
tests/support/temporal.py gives back after each test."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.support.eventually import eventually
from tests.support.temporal import clock_held, time_skipping_server

running = threading.Event()
released = threading.Event()


@activity.defn
def held_until_released() -> None:
    running.set()
    released.wait(timeout=30)


@workflow.defn(sandboxed=False)
class OneActivityThenAWeek:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            held_until_released, start_to_close_timeout=timedelta(minutes=1)
        )
        await workflow.sleep(timedelta(days=7))


async def test_a_run_terminated_mid_activity_holds_the_clock_until_given_back() -> None:
    async with time_skipping_server() as env:
        task_queue = f"clock-{uuid.uuid4()}"
        with ThreadPoolExecutor(max_workers=2) as executor:
            async with Worker(
                env.client,
                task_queue=task_queue,
                workflows=[OneActivityThenAWeek],
                activities=[held_until_released],
                activity_executor=executor,
                workflow_runner=UnsandboxedWorkflowRunner(),
            ):
                assert not await clock_held(env)
                handle = await env.client.start_workflow(
                    OneActivityThenAWeek.run, id=f"clock-{uuid.uuid4()}", task_queue=task_queue
                )
                await eventually(running.is_set, what="the activity is running")
                await handle.terminate("test ended mid-activity")
                released.set()
                await asyncio.sleep(0.5)  # the activity's late completion is refused

        # What the guard sees after such a test, and what giving one lock back does.
        assert await clock_held(env)
        await env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
        assert not await clock_held(env)
