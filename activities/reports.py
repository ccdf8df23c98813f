"""What people read back from the database: a customer's timeline, the task list.

Plain functions for the CLI (and later the HTTP API). Workflow state is never
read here: stage, goals and verdicts come from the workflow's status query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select

from activities.database import Database
from models.tables import Customer, Task, TimelineEntry


class TimelineRow(BaseModel):
    seq: int
    at: datetime
    kind: str
    stage: str
    summary: str
    details: dict[str, Any]


class TaskRow(BaseModel):
    task_id: str
    customer_id: str
    kind: str
    assignee: str
    title: str
    state: str
    opened_at: datetime
    due_at: datetime | None
    closed_at: datetime | None
    resolution: str | None


class UnknownCustomer(LookupError):
    pass


def customer_timeline(
    database: Database, *, customer_id: str, kinds: list[str] | None = None
) -> list[TimelineRow]:
    """Every entry the workflow wrote for the customer, oldest first."""
    with database.session() as session:
        if session.get(Customer, customer_id) is None:
            raise UnknownCustomer(customer_id)
        query = select(TimelineEntry).where(col(TimelineEntry.customer_id) == customer_id)
        if kinds:
            query = query.where(col(TimelineEntry.kind).in_(kinds))
        rows = session.exec(query.order_by(col(TimelineEntry.seq))).all()
        return [TimelineRow.model_validate(row, from_attributes=True) for row in rows]


def list_tasks(
    database: Database,
    *,
    assignee: str | None = None,
    customer_id: str | None = None,
    include_done: bool = False,
) -> list[TaskRow]:
    """Tasks for CSMs and leaders, the oldest open one first."""
    query = select(Task)
    if assignee is not None:
        query = query.where(col(Task.assignee) == assignee.strip().lower())
    if customer_id is not None:
        query = query.where(col(Task.customer_id) == customer_id)
    if not include_done:
        query = query.where(col(Task.state) == "open")
    with database.session() as session:
        rows = session.exec(query.order_by(col(Task.opened_at), col(Task.task_id))).all()
        return [TaskRow.model_validate(row, from_attributes=True) for row in rows]
