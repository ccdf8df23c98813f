"""The customer projection: written with each timeline entry, idempotent, only moving
forward, rebuildable from the timeline, and still there when Temporal has forgotten
the workflow."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import delete
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.testing import ActivityEnvironment

from activities.store import StoreActivities
from cli.main import main
from client.errors import UnknownCustomerError
from models import visibility
from models.activity_io import RecordTimelineInput
from models.events import Cancelled, CompletionReviewHeld, Paused
from models.onboarding import DueKind, Stage
from models.projection import ProjectionSnapshot
from models.tables import CustomerProjection
from records import customer_lists
from records.database import Database
from records.projections import projection_rows, rebuild
from testkit.factories import make_handoff, make_playbook, store_customer
from testkit.projections import DAY, insert_projection_rows, projection_row
from tests.support.api_harness import ApiHarness
from tests.support.eventually import eventually
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
    paused = make_handoff()
    handles = [await h.start(handoff) for handoff in (onboarded, cancelled, running, paused)]
    await h.record(handles[3], Paused(reason="customer merger"))
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
    held = await h.wait_for(handles[3], lambda s: True)

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
    assert held.state.pause is not None
    row = live[paused.customer_id]
    assert (row["paused"], row["pause_reason"]) == (True, "customer merger")
    assert row["paused_since"] == held.state.pause.since
    assert not live[running.customer_id]["paused"]
    # Paused a fortnight ago: no reminder or escalation was opened meanwhile.
    assert row["open_tasks"] == 1 and row["escalations"] == 0

    with h.database.session() as session:
        session.exec(delete(CustomerProjection))
    assert rebuild(h.database) == 4
    assert projection_rows(h.database) == live
    # A second rebuild over the rows it wrote is harmless.
    assert rebuild(h.database) == 4
    assert projection_rows(h.database) == live


NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def test_lists_filter_order_and_page_in_sql(database: Database) -> None:
    mine, theirs = "csm@liftoff.example", "other@liftoff.example"
    insert_projection_rows(
        database,
        [
            projection_row("k-old", NOW, stage_since=NOW - 9 * DAY),
            projection_row("k-new", NOW, stage_since=NOW - DAY),
            projection_row("a-stalled", NOW, stage="adoption", furthest=3, stalled=True),
            projection_row("a-stuck", NOW, stage="adoption", furthest=3, setup_stuck=True),
            projection_row("a-fine", NOW, stage="adoption", furthest=3, stage_since=NOW - 30 * DAY),
            projection_row("done", NOW, stage="onboarded", furthest=5, ended_at=NOW - DAY),
            projection_row("gone", NOW, stage="failed", furthest=3, ended_at=NOW - 2 * DAY),
            projection_row("theirs", NOW, csm=theirs, open_tasks=4),
            projection_row("k-paused", NOW, csm=theirs, paused=True, playbook_version="2"),
            projection_row("k-v2", NOW, csm=theirs, playbook_version="2"),
            projection_row("gone-v2", NOW, stage="failed", csm=theirs, playbook_version="2"),
        ],
    )
    on_v2 = customer_lists.Filters(ended=False, playbook_version="2")
    assert customer_lists.customer_ids(database, on_v2) == ["k-paused", "k-v2"]
    paused = customer_lists.Filters(ended=False, paused=True, playbook_version="2")
    assert customer_lists.customer_ids(database, paused) == ["k-paused"]
    ongoing = customer_lists.Filters(csm=mine.upper(), ended=False)
    page = customer_lists.list_page(
        database, ongoing, order=customer_lists.Order.ATTENTION, limit=3
    )
    # Along the path, stuck then stalled first, then the longest in stage.
    assert [r.customer_id for r in page.rows] == ["k-old", "k-new", "a-stuck"]
    assert page.total == 5
    rest = customer_lists.list_page(
        database, ongoing, order=customer_lists.Order.ATTENTION, limit=3, offset=3
    )
    assert [r.customer_id for r in rest.rows] == ["a-stalled", "a-fine"]

    ended = customer_lists.Filters(csm=mine, ended=True)
    by_end = customer_lists.list_page(database, ended, order=customer_lists.Order.ENDED, limit=10)
    assert [r.customer_id for r in by_end.rows] == ["done", "gone"]
    stalled = customer_lists.Filters(stalled=True)
    assert (
        customer_lists.list_page(database, stalled, order=customer_lists.Order.ID, limit=10).total
        == 1
    )

    # A page number typed into the address bar: an empty page, never a database error.
    far = customer_lists.list_page(
        database, ongoing, order=customer_lists.Order.ATTENTION, limit=3, offset=10**20
    )
    assert (far.rows, far.total) == ([], 5)

    summary = customer_lists.summary(database, customer_lists.Filters(csm=mine))
    assert (summary.ongoing, summary.ended, summary.stuck, summary.stalled) == (5, 2, 1, 1)
    assert summary.open_tasks == 5
    assert customer_lists.csms(database) == [mine, theirs]


def test_the_cohort_counts_the_funnel_medians_and_ended_customers(database: Database) -> None:
    hours = 3600.0
    insert_projection_rows(
        database,
        [
            # Stays in kickoff of 1, 2 and 4 h, finished: median 2 h.
            projection_row(
                "on-1",
                NOW,
                stage="onboarded",
                furthest=5,
                kickoff_seconds=hours,
                onboard_seconds=10 * hours,
            ),
            projection_row(
                "on-2",
                NOW,
                stage="onboarded",
                furthest=5,
                kickoff_seconds=2 * hours,
                onboard_seconds=30 * hours,
            ),
            projection_row("failed", NOW, stage="failed", furthest=3, kickoff_seconds=4 * hours),
            # In kickoff for 1 h and 3 h: median 2 h so far.
            projection_row("k-1", NOW, stage_since=NOW - timedelta(hours=1), escalations=1),
            projection_row("k-2", NOW, stage_since=NOW - timedelta(hours=3), stalled=True),
        ],
    )
    figures = customer_lists.cohort(database, customer_lists.Filters(), NOW)
    assert (figures.total, figures.active, figures.onboarded, figures.failed) == (5, 2, 2, 1)
    assert (figures.stalled, figures.escalations) == (1, 1)
    assert figures.median_time_to_onboard == 20 * hours
    funnel = {row.stage: (row.reached, row.now) for row in figures.funnel}
    assert funnel[Stage.KICKOFF] == (5, 2)
    assert funnel[Stage.ADOPTION] == (3, 0)
    assert funnel[Stage.ONBOARDED] == (2, 2)
    kickoff = next(t for t in figures.times if t.stage is Stage.KICKOFF)
    assert (kickoff.median_done, kickoff.done) == (2 * hours, 3)
    assert (kickoff.median_now, kickoff.now) == (2 * hours, 2)


async def test_a_customer_temporal_has_forgotten_is_still_listed_and_counted(
    api: ApiHarness,
) -> None:
    csm = f"csm-{uuid.uuid4().hex[:8]}@liftoff.example"
    ended, running = make_handoff(csm=csm), make_handoff(csm=csm)
    for handoff in (ended, running):
        await api.services.onboarding.start(handoff, make_playbook())
        await api.past_handoff(handoff.customer_id)
    await api.services.onboarding.record(ended.customer_id, Cancelled(reason="budget cut"))
    await eventually(
        lambda: asyncio.to_thread(projection_rows, api.database),
        lambda rows: rows[ended.customer_id]["outcome"] == "cancelled",
        what="the cancellation in the projection",
    )
    # Past retention the closed workflow is gone from Temporal, history and visibility;
    # the running one is terminated behind the worker's back.
    await api.temporal.get_workflow_handle(
        visibility.workflow_id_for(running.customer_id)
    ).terminate("retention test")
    await api.temporal.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=api.temporal.namespace,
            workflow_execution=WorkflowExecution(
                workflow_id=visibility.workflow_id_for(ended.customer_id)
            ),
        )
    )

    async def forgotten() -> bool:
        try:
            await api.services.onboarding.status(ended.customer_id)
        except UnknownCustomerError:
            return True
        return False

    # The dev server carries a deletion out about half a minute later.
    await eventually(
        forgotten, what="Temporal to forget the ended customer", timeout=90, interval=1
    )

    async with api.as_lead() as lead:
        listed = await lead.get("/api/customers", params={"csm": csm})
        home = (await lead.get("/", params={"csm": csm})).text
        cohort = (await lead.get("/cohort", params={"csm": csm})).text
        # Its page is read from Liftoff's records, for whoever may see it.
        page = await lead.get(f"/customers/{ended.customer_id}")
    async with api.as_csm(csm) as own, api.as_csm("someone-else@liftoff.example") as other:
        own_page = await own.get(f"/customers/{ended.customer_id}")
        hidden = await other.get(f"/customers/{ended.customer_id}")
    assert page.status_code == own_page.status_code == 200
    assert 'id="record-only"' in page.text and ended.name in page.text
    assert 'data-kind="cancelled"' in page.text and "budget cut" in page.text
    assert hidden.status_code == 404
    assert listed.headers["X-Total-Count"] == "2"
    rows = {row["customer_id"]: row for row in listed.json()}
    assert rows[ended.customer_id]["stage"] == "cancelled"
    assert rows[running.customer_id]["stage"] == "kickoff"
    assert ended.customer_id in home and running.customer_id in home
    assert "Ended (1)" in home
    figures = re.findall(r'figure-value">([^<]*)<', cohort)
    assert figures[:5] == ["2", "1", "0", "0", "1"]  # customers, active, ..., cancelled


def test_liftoff_projections_rebuild_fills_the_rows_from_the_timeline(
    sqlite_database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = StoreActivities(sqlite_database)
    env = ActivityEnvironment()
    env.run(store.record_timeline, _entry("acme", 1, snapshot=_snapshot(open_tasks=2)))
    live = projection_rows(sqlite_database)
    with sqlite_database.session() as session:
        session.exec(delete(CustomerProjection))
    monkeypatch.setenv("DATABASE_URL", str(sqlite_database.url))

    assert main(["projections", "rebuild", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"rebuilt": 1, "review_answers_stored": 0}
    assert projection_rows(sqlite_database) == live


async def test_my_customers_pages_a_long_list_and_counts_all_of_it(api: ApiHarness) -> None:
    csm = f"csm-{uuid.uuid4().hex[:8]}@liftoff.example"
    now = datetime.now(UTC)
    insert_projection_rows(
        api.database,
        [
            projection_row(f"long-{n:03d}", now, csm=csm, stage_since=now - (n + 1) * DAY)
            for n in range(250)
        ]
        + [projection_row("long-ended", now, csm=csm, stage="onboarded", ended_at=now)],
    )
    async with api.as_csm(csm) as browser:
        first = (await browser.get("/")).text
        last = (await browser.get("/", params={"page": 3})).text
    assert "250 in onboarding" in first and "Ended (1)" in first
    assert first.count('data-customer="long-') == 100 + 1  # a page, and the ended one
    # The longest in kickoff first; the stage's count is all of them, not the page's.
    assert first.index("long-249") < first.index("long-248")
    assert '<span class="count">250</span>' in first
    assert "1–100 of 250" in first and 'rel="next"' in first and 'rel="prev"' not in first
    assert "201–250 of 250" in last and 'rel="next"' not in last and "long-000" in last
