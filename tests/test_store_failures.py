"""A write the database refuses for good (a value, a constraint) must neither freeze a
customer (retrying forever) nor end it: it is recorded, a task goes to the CS leader,
and the customer's timers go on. Proven with a real refusal on PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import col, select
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.onboarding import Stage, TaskKind
from models.tables import Task
from records.database import Database
from testkit.factories import make_handoff, make_playbook
from tests.support.temporal import onboarding_worker
from tests.support.workflow_harness import Harness, open_kinds


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

    # The kickoff's reminder and the deadline still fire.
    await h.env.sleep(playbook.timers.kickoff.remind_csm_after)
    await h.wait_for(handle, lambda s: TaskKind.OVERDUE_REMINDER in open_kinds(s))
    stored = [t.kind for t in stored_tasks(h.database, handoff.customer_id)]
    assert stored == ["store_failed", "overdue_reminder"]
    await h.env.sleep(playbook.deadline)
    status = await h.wait_for(handle, lambda s: s.state.stage is Stage.FAILED)
    assert "deadline_missed" in [t.kind for t in stored_tasks(h.database, handoff.customer_id)]
    assert len(status.state.failures) == 1
