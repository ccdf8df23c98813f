"""Tiny workflows for the sandbox tests, in a module of their own: the sandbox
imports a workflow's module, and this one imports nothing it would refuse."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity, workflow


@workflow.defn
class ReadsTheClock:
    @workflow.run
    async def run(self) -> str:
        return datetime.now().isoformat()  # what the sandbox must refuse


@workflow.defn
class Deterministic:
    @workflow.run
    async def run(self) -> str:
        return workflow.now().isoformat()


@activity.defn
async def echo(text: str) -> str:
    return text


@workflow.defn
class SchedulesActivities:
    """Every kind of payload a journey's workflow tasks carry: an activity's input and
    result, a local activity's, a timer between, the workflow's own result."""

    @workflow.run
    async def run(self, text: str) -> str:
        remote = await workflow.execute_activity(
            echo, text, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.sleep(timedelta(seconds=1))
        local = await workflow.execute_local_activity(
            echo, text.upper(), start_to_close_timeout=timedelta(seconds=10)
        )
        return f"{remote} {local}"
