"""Two tiny workflows for the sandbox test, in a module of their own: the sandbox
imports a workflow's module, and this one imports nothing it would refuse."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow


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
