"""Routes: tasks. The list is read from the database (records the worker wrote); a task
is completed through the customer's workflow, which owns its open tasks."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, Field

from api.deps import AppServices, Staff
from api.routes.customers import COMMAND_REFUSALS, CustomerId, authorize, recorded_by
from models.events import TaskCompleted
from models.handoff import CUSTOMER_ID_PATTERN, Email
from models.onboarding import EventResult
from records.reports import TaskRow, list_tasks
from records.tokens import TokenRole

router = APIRouter(tags=["tasks"])


class TaskState(StrEnum):
    OPEN = "open"
    DONE = "done"
    ALL = "all"


class TaskDone(BaseModel):
    note: str = Field(default="", max_length=2000, description="what was done, for the timeline")


@router.get("/api/tasks", summary="Tasks for CSMs and leaders, the oldest first")
async def get_tasks(
    who: Staff,
    services: AppServices,
    assignee: Annotated[Email | None, Query(description="the CSM's or leader's email")] = None,
    state: TaskState = TaskState.OPEN,
    customer: Annotated[
        str | None, Query(pattern=CUSTOMER_ID_PATTERN, description="one customer's tasks")
    ] = None,
) -> list[TaskRow]:
    # A CSM sees the tasks of their own customers, and any assigned to them.
    csm = who.csm if who.role is TokenRole.CSM else None
    return await asyncio.to_thread(
        list_tasks,
        services.database,
        assignee=assignee,
        customer_id=customer,
        include_done=True,
        state=None if state is TaskState.ALL else state.value,
        csm=csm,
    )


@router.post(
    "/api/customers/{customer_id}/tasks/{task_id}/done",
    summary="Mark a task done (through the customer's workflow)",
    responses=COMMAND_REFUSALS,
)
async def complete_task(
    customer_id: CustomerId,
    task_id: Annotated[str, Path(min_length=1, max_length=100)],
    who: Staff,
    services: AppServices,
    done: Annotated[TaskDone | None, Body()] = None,
) -> EventResult:
    await authorize(who, services, customer_id)
    event = TaskCompleted(
        task_id=task_id, note=done.note if done else "", recorded_by=recorded_by(who)
    )
    return await services.onboarding.record(customer_id, event)
