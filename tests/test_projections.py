"""The customer projection: written with each timeline entry, idempotent, only moving
forward, rebuildable from the timeline, and still there when Temporal has forgotten
the workflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import delete
from temporalio.testing import ActivityEnvironment

from activities.store import StoreActivities
from models.activity_io import RecordTimelineInput
from models.events import Cancelled, CompletionReviewHeld
from models.onboarding import DueKind, Stage
from models.projection import ProjectionSnapshot
from models.tables import CustomerProjection
from records.database import Database
from records.projections import projection_rows, rebuild
from testkit.factories import make_handoff, store_customer
from tests.support.workflow_harness import Harness, through_training

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _snapshot(**overrides: Any) -> ProjectionSnapshot:
    fields: dict[str, Any] = {
        "name": "Acme Logistics",
        "csm": "csm@liftoff.example",
        "cs_leader": "lead@liftoff.example",
        "stage": Stage.KICKOFF,
        "stage_since": AT,
        "stage_entered": {Stage.HANDOFF: AT, Stage.KICKOFF: AT},
        "started_at": AT,
        "playbook_name": "default",
        "playbook_version": "1",
        "purposes": ["A"],
        "seats_contracted": 120,
    }
    return ProjectionSnapshot(**(fields | overrides))


def _entry(customer_id: str, seq: int, **overrides: Any) -> RecordTimelineInput:
    fields: dict[str, Any] = {
        "customer_id": customer_id,
        "seq": seq,
        "at": AT,
        "kind": "task_opened",
        "stage": Stage.KICKOFF,
        "summary": "a task",
        "details": {},
    }
    return RecordTimelineInput(**(fields | overrides))


def test_each_timeline_write_sets_the_row_once_and_never_moves_it_back(
    database: Database,
) -> None:
    store = StoreActivities(database)
    env = ActivityEnvironment()
    later = AT + timedelta(days=3)
    training = _snapshot(
        stage=Stage.TRAINING,
        stage_since=later,
        stage_entered={Stage.HANDOFF: AT, Stage.KICKOFF: AT, Stage.TRAINING: later},
        open_tasks=2,
        next_due_kind=DueKind.REMIND_CSM,
        next_due_at=later + timedelta(days=5),
    )
    env.run(store.record_timeline, _entry("acme", 1, snapshot=_snapshot(open_tasks=1)))
    env.run(store.record_timeline, _entry("acme", 3, at=later, snapshot=training))
    # A retry of 3 and a late 2 (written after 3 by a parallel activity) change nothing.
    env.run(store.record_timeline, _entry("acme", 3, at=later, snapshot=training))
    env.run(store.record_timeline, _entry("acme", 2, snapshot=_snapshot(open_tasks=7)))

    row = projection_rows(database)["acme"]
    assert (row["stage"], row["stage_since"], row["last_seq"]) == ("training", later, 3)
    assert (row["open_tasks"], row["next_due_kind"]) == (2, "remind_csm")
    assert row["kickoff_seconds"] == timedelta(days=3).total_seconds()
    assert row["training_seconds"] is None  # still in it
    assert (row["furthest"], row["seats_band"], row["outcome"]) == (2, "51-200", None)


def test_an_entry_without_a_snapshot_changes_what_it_says(database: Database) -> None:
    """Writes queued by a workflow before snapshots existed still move the row."""
    handoff = make_handoff()
    store_customer(database, handoff)
    store = StoreActivities(database)
    env = ActivityEnvironment()
    customer = handoff.customer_id
    env.run(
        store.record_timeline,
        _entry(customer, 1, kind="transition", details={"from": None, "to": "handoff"}),
    )
    env.run(
        store.record_timeline,
        _entry(customer, 2, kind="transition", details={"from": "handoff", "to": "kickoff"}),
    )
    env.run(store.record_timeline, _entry(customer, 3, kind="setup_stuck"))
    ended = AT + timedelta(days=10)
    env.run(
        store.record_timeline,
        _entry(
            customer, 4, at=ended, kind="transition", details={"from": "kickoff", "to": "cancelled"}
        ),
    )
    row = projection_rows(database)[customer]
    assert (row["stage"], row["outcome"], row["ended_at"]) == ("cancelled", "cancelled", ended)
    assert row["setup_stuck"] is False  # an ended onboarding carries no flags
    assert row["kickoff_seconds"] == timedelta(days=10).total_seconds()
    assert (row["csm"], row["furthest"], row["started_at"]) == (handoff.csm, 1, AT)


async def test_a_rebuild_equals_the_live_projection_after_a_journey(h: Harness) -> None:
    onboarded, cancelled, running = make_handoff(), make_handoff(), make_handoff(seats_contracted=3)
    handles = [await h.start(handoff) for handoff in (onboarded, cancelled, running)]
    await through_training(h, handles[0])
    await h.usage(onboarded, active_users=7, quota_units=40)
    await h.next_week(handles[0])
    await h.usage(onboarded, active_users=8)
    status = await h.next_week(handles[0])
    await h.record(
        handles[0],
        CompletionReviewHeld(held_on=await h.today(), success_confirmed=True),
    )
    await h.wait_for(handles[0], lambda s: s.state.stage is Stage.ONBOARDED)
    await h.record(handles[1], Cancelled(reason="budget cut"))
    await h.wait_for(handles[1], lambda s: s.state.stage is Stage.CANCELLED)
    waiting = await h.wait_for(handles[2], lambda s: True)

    live = projection_rows(h.database)
    assert live[onboarded.customer_id]["outcome"] == "onboarded"
    assert live[onboarded.customer_id]["onboard_seconds"] > 0
    assert live[onboarded.customer_id]["adoption_seconds"] is not None
    assert live[cancelled.customer_id]["outcome"] == "cancelled"
    assert live[running.customer_id]["stage"] == "kickoff"
    # Two weeks passed: the kickoff task, its reminder and the escalation are open.
    assert live[running.customer_id]["open_tasks"] == len(waiting.state.open_tasks) == 3
    assert live[running.customer_id]["escalations"] == 1
    assert waiting.next_due is not None
    assert live[running.customer_id]["next_due_at"] == waiting.next_due.at
    assert status.state.stage is Stage.COMPLETION_REVIEW

    with h.database.session() as session:
        session.exec(delete(CustomerProjection))
    assert rebuild(h.database) == 3
    assert projection_rows(h.database) == live
    # A second rebuild over the rows it wrote is harmless.
    assert rebuild(h.database) == 3
    assert projection_rows(h.database) == live
