"""A write the database refuses for good (a value, a constraint) must neither freeze a
customer (retrying forever) nor end it: it is recorded, a task goes to the CS leader,
and the customer's timers go on. Proven with a real refusal on PostgreSQL. A database
that is down for a while gets every write once it is back, and the wait costs the
customer's history nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.onboarding import Stage, TaskKind
from models.tables import Task
from records.database import Database
from testkit.factories import make_handoff, make_playbook
from tests.support.eventually import eventually
from tests.support.temporal import onboarding_worker
from tests.support.workflow_harness import (
    Harness,
    activities_scheduled,
    local_activities_run,
    open_kinds,
    running_harness,
    through_training,
)


@pytest.fixture
async def on_postgres(
    env: WorkflowEnvironment, task_queue: str, postgres_database: Database, tmp_path: Path
) -> AsyncIterator[Harness]:
    outbox = tmp_path / "outbox"
    async with onboarding_worker(env.client, task_queue, postgres_database, outbox):
        harness = Harness(env, env.client, task_queue, postgres_database, outbox)
        yield harness
        for handle in harness.started:
            with contextlib.suppress(RPCError):
                await handle.terminate("test finished")


def stored_tasks(database: Database, customer_id: str) -> list[Task]:
    with database.session() as session:
        rows = session.exec(
            select(Task).where(col(Task.customer_id) == customer_id).order_by(col(Task.opened_at))
        ).all()
    return list(rows)


async def test_a_write_the_database_refuses_is_recorded_and_the_timers_go_on(
    on_postgres: Harness,
) -> None:
    h = on_postgres
    # PostgreSQL refuses this one task for good, as it refused a too-long title before.
    with h.database.session() as session:
        session.exec(  # type: ignore[call-overload]
            text(
                "ALTER TABLE tasks ADD CONSTRAINT refuse_kickoff_tasks "
                "CHECK (kind <> 'schedule_kickoff')"
            )
        )
    handoff = make_handoff()
    playbook = make_playbook()
    handle = await h.start(handoff, playbook)

    status = await h.wait_for(handle, lambda s: TaskKind.STORE_FAILED in open_kinds(s))
    assert len(status.state.failures) == 1
    assert status.state.failures[0].startswith("open_task: (psycopg.errors.CheckViolation)")
    assert "refuse_kickoff_tasks" in status.state.failures[0]
    ops_task = next(t for t in status.state.open_tasks if t.kind is TaskKind.STORE_FAILED)
    assert ops_task.assignee == handoff.cs_leader
    assert ops_task.title.startswith("Liftoff could not store open_task for this customer")
    failed = [row for row in h.timeline(handoff.customer_id) if row.kind == "store_failed"]
    assert [row.details["activity"] for row in failed] == ["open_task"]
    assert [t.kind for t in stored_tasks(h.database, handoff.customer_id)] == ["store_failed"]
    # The refusal was known from the local attempt: no retry went to the server.
    scheduled = activities_scheduled(await handle.fetch_history())
    assert not {"store_batch", "open_task"} & set(scheduled)

    # The kickoff's reminder and the deadline still fire.
    await h.env.sleep(playbook.timers.kickoff.remind_csm_after)
    await h.wait_for(handle, lambda s: TaskKind.OVERDUE_REMINDER in open_kinds(s))
    stored = [t.kind for t in stored_tasks(h.database, handoff.customer_id)]
    assert stored == ["store_failed", "overdue_reminder"]
    await h.env.sleep(playbook.deadline)
    status = await h.wait_for(handle, lambda s: s.state.stage is Stage.FAILED)
    assert "deadline_missed" in [t.kind for t in stored_tasks(h.database, handoff.customer_id)]
    assert len(status.state.failures) == 1


def waits_on_the_server(history: WorkflowHistory) -> bool:
    """The first batch is retried as an ordinary activity, the email beside it is sent,
    and no workflow task is open."""
    completed = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    ]
    scheduled = activities_scheduled(history)
    return (
        scheduled["store_batch"] == 1
        and len(completed) == scheduled["send_email"]
        and history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )


async def test_a_database_down_for_a_while_gets_every_write_once_it_is_back(
    env: WorkflowEnvironment, task_queue: str, database: Database, tmp_path: Path
) -> None:
    # In real time: skipped time would fire the customer's timers during the wait.
    with env.auto_time_skipping_disabled():
        async with running_harness(env, env.client, task_queue, database, tmp_path / "outbox") as h:
            with database.session() as session:
                session.exec(text("ALTER TABLE tasks RENAME TO tasks_away"))  # type: ignore[call-overload]
            handoff = make_handoff()
            handle = await h.start(handoff, make_playbook(), settle=False)

            # A few quick attempts inside the workflow task, then the write waits as an
            # ordinary activity, retried by the server, not by workflow tasks kept open.
            history = await eventually(
                handle.fetch_history, waits_on_the_server, what="the batch waiting on the server"
            )
            assert local_activities_run(history)["store_batch"] == 1  # its failure, recorded
            # A local activity retrying would heartbeat its workflow task every 8 s.
            await asyncio.sleep(9)
            assert len((await handle.fetch_history()).events) == len(history.events)

            with database.session() as session:
                session.exec(text("ALTER TABLE tasks_away RENAME TO tasks"))  # type: ignore[call-overload]
            status = await h.wait_for(
                handle, lambda s: TaskKind.SCHEDULE_KICKOFF in open_kinds(s), seconds=90
            )
            assert status.state.failures == []
            assert [t.kind for t in stored_tasks(database, handoff.customer_id)] == [
                "schedule_kickoff"
            ]
            assert h.timeline(handoff.customer_id)

            # The next writes run locally again.
            await through_training(h, handle)
            await h.wait_for(handle, lambda s: s.state.stage is Stage.ADOPTION)
            history = await handle.fetch_history()
            assert local_activities_run(history)["store_batch"] > 1
            assert activities_scheduled(history)["store_batch"] == 1
