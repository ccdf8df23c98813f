"""The bare-Temporal baseline: a journey's activities and timers, with nothing inside.

It lives in its own module so the workflow sandbox can import it on its own.
The bench gives it the shape of a real journey's history: how many activities
were scheduled together in each workflow task, and how many timers were started.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import activity, workflow

ACTIVITY_TIMEOUT = timedelta(seconds=30)


class BareInput(BaseModel):
    # A first wait until this instant (bench/scale_bench.py's weekly tick); none by default.
    wake_at: datetime | None = None
    # Activities scheduled together (one workflow task each), in history order.
    activity_batches: list[int] = Field(default_factory=list)
    # Local activities run by each of those workflow tasks (the journey's database work).
    local_activity_batches: list[int] = Field(default_factory=list)
    timers: int = 0
    timer_duration: timedelta = timedelta(days=7)
    # A last wait, so the workflow stays open (bench/scale_bench.py); none by default.
    final_sleep: timedelta = timedelta(0)


class BareResult(BaseModel):
    activities: int
    timers: int


@activity.defn
async def do_nothing(step: int) -> int:
    return step


@workflow.defn
class BareWorkflow:
    def __init__(self) -> None:
        self._activities = 0

    @workflow.run
    async def run(self, input: BareInput) -> BareResult:
        activities = 0
        timers = 0
        if input.wake_at is not None and input.wake_at > workflow.now():
            await workflow.sleep(input.wake_at - workflow.now())
        for index in range(max(len(input.activity_batches), input.timers)):
            if index < len(input.activity_batches):
                size = input.activity_batches[index]
                local = (input.local_activity_batches or [0] * (index + 1))[index]
                await asyncio.gather(
                    *(
                        workflow.execute_activity(
                            do_nothing, activities + n, start_to_close_timeout=ACTIVITY_TIMEOUT
                        )
                        for n in range(size)
                    ),
                    *(
                        workflow.execute_local_activity(
                            do_nothing, n, start_to_close_timeout=ACTIVITY_TIMEOUT
                        )
                        for n in range(local)
                    ),
                )
                activities += size
                self._activities = activities
            if index < input.timers:
                await workflow.sleep(input.timer_duration)
                timers += 1
        if input.final_sleep:
            await workflow.sleep(input.final_sleep)
        return BareResult(activities=activities, timers=timers)

    # What bench/scale_bench.py times against Liftoff's status query and update.
    @workflow.query
    def progress(self) -> int:
        return self._activities

    @workflow.update
    def ping(self) -> int:
        return self._activities
