"""The store activities on SQLite and PostgreSQL: what a retry does."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel
from sqlmodel import SQLModel, col, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.store import CLOSE_WAITS_FOR_OPEN_ATTEMPTS, TASK_TITLE_CHARS, StoreActivities
from models import limits
from models.activity_io import (
    AddContactInput,
    CloseTasksInput,
    OpenTaskInput,
    RecordTimelineInput,
    StoreBatchInput,
    StoreWrite,
    UpsertCustomerInput,
)
from models.events import TaskCompleted
from models.handoff import Contact, CustomerHandoff, Role
from models.onboarding import Stage, TaskKind
from models.playbook import Playbook, Purpose
from models.projection import ProjectionSnapshot
from models.tables import (
    Customer,
    CustomerContact,
    CustomerProjection,
    Task,
    TimelineEntry,
    UsageEvent,
)
from records.database import Database
from testkit.factories import make_handoff


@pytest.fixture
def store(database: Database) -> StoreActivities:
    return StoreActivities(database)


@pytest.fixture
def activity_env() -> ActivityEnvironment:
    return ActivityEnvironment()


def upsert(env: ActivityEnvironment, store: StoreActivities, handoff: CustomerHandoff) -> None:
    env.run(
        store.upsert_customer,
        UpsertCustomerInput(
            handoff=handoff,
            playbook_name="default",
            playbook_version="1",
            workflow_id=f"onboarding-{handoff.customer_id}",
        ),
    )


def customer_row(database: Database, customer_id: str) -> Customer:
    with database.session() as session:
        row = session.get(Customer, customer_id)
    if row is None:
        raise AssertionError(f"customer {customer_id} not stored")
    return row


def contact_emails(database: Database, customer_id: str) -> list[str]:
    with database.session() as session:
        emails = session.exec(
            select(CustomerContact.email)
            .where(col(CustomerContact.customer_id) == customer_id)
            .order_by(col(CustomerContact.email))
        ).all()
    return list(emails)


def test_upsert_customer_retry_keeps_one_customer_with_its_contacts(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    handoff = make_handoff(name="Acme Logistics", purposes=["A", "B"])
    upsert(activity_env, store, handoff)
    upsert(activity_env, store, handoff)
    # A rerun with edited data changes nothing: the first record stands.
    upsert(activity_env, store, handoff.model_copy(update={"name": "Renamed"}))

    row = customer_row(database, handoff.customer_id)
    assert row.name == "Acme Logistics"
    assert row.purposes == ["A", "B"]
    assert row.stage == Stage.HANDOFF.value
    assert row.workflow_id == f"onboarding-{handoff.customer_id}"
    assert row.created_at.tzinfo is not None
    assert row.created_at.utcoffset() == timedelta(0)
    assert contact_emails(database, handoff.customer_id) == [
        "admin@acme.example",
        "boss@acme.example",
        "user@acme.example",
    ]


def test_add_contact_twice_stores_it_once(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    handoff = make_handoff()
    upsert(activity_env, store, handoff)
    newcomer = Contact(email="New.Admin@Acme.example", name="Nia New", role=Role.ADMINISTRATOR)
    activity_env.run(
        store.add_contact, AddContactInput(customer_id=handoff.customer_id, contact=newcomer)
    )
    activity_env.run(
        store.add_contact, AddContactInput(customer_id=handoff.customer_id, contact=newcomer)
    )

    emails = contact_emails(database, handoff.customer_id)
    assert emails.count("new.admin@acme.example") == 1
    assert len(emails) == 4


def test_a_retried_batch_writes_each_of_its_writes_once_in_one_go(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    handoff = make_handoff()
    customer_id = handoff.customer_id
    at = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    newcomer = Contact(email="New.Admin@Acme.example", name="Nia New", role=Role.ADMINISTRATOR)
    writes = [
        StoreWrite(
            upsert_customer=UpsertCustomerInput(
                handoff=handoff,
                playbook_name="default",
                playbook_version="1",
                workflow_id=f"onboarding-{customer_id}",
            )
        ),
        StoreWrite(
            record_timeline=RecordTimelineInput(
                customer_id=customer_id,
                seq=1,
                at=at,
                kind="transition",
                stage=Stage.KICKOFF,
                summary="handoff received: schedule the kickoff",
                details={"from": "handoff", "cause": "started"},
            )
        ),
        StoreWrite(
            open_task=OpenTaskInput(
                task_id=f"{customer_id}-1",
                customer_id=customer_id,
                kind=TaskKind.SCHEDULE_KICKOFF,
                assignee="csm@liftoff.example",
                title="Schedule the kickoff meeting",
                opened_at=at,
            )
        ),
        StoreWrite(add_contact=AddContactInput(customer_id=customer_id, contact=newcomer)),
        # Closed in the same batch that opened it: the open is written first.
        StoreWrite(
            close_tasks=CloseTasksInput(
                customer_id=customer_id,
                task_ids=[f"{customer_id}-1"],
                closed_at=at + timedelta(hours=1),
                resolution="kickoff held",
            )
        ),
    ]
    batch = StoreBatchInput(customer_id=customer_id, writes=writes)
    activity_env.run(store.store_batch, batch)
    activity_env.run(store.store_batch, batch)

    assert customer_row(database, customer_id).stage == Stage.KICKOFF.value
    assert contact_emails(database, customer_id).count("new.admin@acme.example") == 1
    with database.session() as session:
        entries = session.exec(
            select(TimelineEntry).where(col(TimelineEntry.customer_id) == customer_id)
        ).all()
        tasks = session.exec(select(Task).where(col(Task.customer_id) == customer_id)).all()
    assert [entry.seq for entry in entries] == [1]
    assert [(task.state, task.resolution) for task in tasks] == [("done", "kickoff held")]


def _attempt_writes(
    customer_id: str,
    attempt_order: int,
    at: datetime,
    entries: list[tuple[int, str, str]],
    *,
    began: datetime | None = None,
) -> StoreBatchInput:
    """A workflow task attempt's batch: its entries (seq, kind, the task it opens or
    ""), each task opened before its entry, as the workflow queues them; the attempt
    began at `began` (default `at`)."""
    stamp = {"attempt_order": attempt_order, "attempt_at": began or at}
    writes: list[StoreWrite] = []
    for seq, kind, task_id in entries:
        if task_id:
            writes.append(
                StoreWrite(
                    open_task=OpenTaskInput(
                        task_id=task_id,
                        customer_id=customer_id,
                        kind=TaskKind.OVERDUE_REMINDER,
                        assignee="csm@liftoff.example",
                        title=f"opened at seq {seq} by attempt {attempt_order}",
                        opened_at=at,
                        **stamp,
                    )
                )
            )
        writes.append(
            StoreWrite(
                record_timeline=RecordTimelineInput(
                    customer_id=customer_id,
                    seq=seq,
                    at=at,
                    kind=kind,
                    stage=Stage.KICKOFF,
                    summary=f"{kind} by attempt {attempt_order}",
                    details={"task_id": task_id} if task_id else {},
                    **stamp,
                )
            )
        )
    stage = Stage.TRAINING if any(kind == "kickoff_held" for _, kind, _ in entries) else None
    snapshot = ProjectionSnapshot(
        name="Acme Logistics",
        csm="csm@liftoff.example",
        cs_leader="lead@liftoff.example",
        stage=stage or Stage.KICKOFF,
        stage_since=at,
        started_at=at,
        playbook_name="default",
        playbook_version="1",
        seats_contracted=120,
        open_tasks=sum(1 for _, _, task_id in entries if task_id),
    )
    return StoreBatchInput(customer_id=customer_id, writes=writes, snapshot=snapshot)


def test_a_later_workflow_task_attempt_replaces_what_a_dead_one_wrote(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    handoff = make_handoff()
    customer_id = handoff.customer_id
    upsert(activity_env, store, handoff)
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    first = f"{customer_id}-1"
    reminder = f"{customer_id}-2"
    lived = _attempt_writes(customer_id, 1 << 32 | 10, at, [(1, "note", ""), (2, "x", first)])
    # Died after its writes: its workflow task never completed.
    died = _attempt_writes(
        customer_id, 1 << 32 | 20, at, [(3, "task_opened", reminder), (4, "note", "")]
    )
    # The retry saw a longer history (a CSM's kickoff came first) and used seq 3 for it.
    retried = _attempt_writes(customer_id, 1 << 32 | 25, at, [(3, "kickoff_held", "")])
    for batch in (lived, died, retried, retried):
        activity_env.run(store.store_batch, batch)

    def stored() -> tuple[list[tuple[int, str]], dict[str, str], CustomerProjection | None]:
        with database.session() as session:
            entries = session.exec(
                select(TimelineEntry)
                .where(col(TimelineEntry.customer_id) == customer_id)
                .order_by(col(TimelineEntry.seq))
            ).all()
            tasks = session.exec(select(Task).where(col(Task.customer_id) == customer_id)).all()
            return (
                [(entry.seq, entry.kind) for entry in entries],
                {task.task_id: task.title for task in tasks},
                session.get(CustomerProjection, customer_id),
            )

    entries, tasks, projection = stored()
    assert entries == [(1, "note"), (2, "x"), (3, "kickoff_held")]
    assert tasks == {first: f"opened at seq 2 by attempt {1 << 32 | 10}"}
    assert projection is not None
    assert (projection.last_seq, projection.stage) == (3, Stage.TRAINING.value)

    # The dead attempt, still running somewhere, writes late: it writes nothing.
    activity_env.run(store.store_batch, died)
    assert stored() == (entries, tasks, projection)


def test_the_retries_after_a_failed_attempt_are_ordered_by_when_they_began(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    """The server gives the second and later retries of a failed workflow task the same
    history (an update adds no event until accepted), so the same history length; a
    crash audit's third attempt, begun with a CSM's update, kept the second's rows."""
    customer_id = make_handoff().customer_id
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    order = 1 << 32 | 40
    reminder = f"{customer_id}-2"
    second = _attempt_writes(customer_id, order, at, [(5, "task_opened", reminder)])
    third = _attempt_writes(
        customer_id, order, at, [(5, "kickoff_held", "")], began=at + timedelta(seconds=12)
    )
    # The same attempt again (a local activity's retry) and the second, late: no change.
    for batch in (second, third, third, second):
        activity_env.run(store.store_batch, batch)

    with database.session() as session:
        kinds = session.exec(
            select(TimelineEntry.kind).where(col(TimelineEntry.customer_id) == customer_id)
        ).all()
        tasks = session.exec(select(Task.task_id).where(col(Task.customer_id) == customer_id))
        assert (list(kinds), list(tasks)) == (["kickoff_held"], [])


def test_writes_from_before_attempt_orders_keep_the_first_content(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    """A write queued by a worker of an earlier version carries no order: as before,
    a retry keeps the first content and removes nothing."""
    customer_id = make_handoff().customer_id
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    unordered = _attempt_writes(customer_id, 0, at, [(1, "note", ""), (2, "x", "")])
    for write in unordered.writes:
        assert write.record_timeline is not None
        write.record_timeline.attempt_order = None
    activity_env.run(store.store_batch, unordered)
    again = RecordTimelineInput(
        customer_id=customer_id, seq=1, at=at, kind="other", stage=Stage.KICKOFF, summary="-"
    )
    activity_env.run(store.record_timeline, again)
    with database.session() as session:
        kinds = session.exec(
            select(TimelineEntry.kind)
            .where(col(TimelineEntry.customer_id) == customer_id)
            .order_by(col(TimelineEntry.seq))
        ).all()
    assert list(kinds) == ["note", "x"]


def test_timeline_retry_writes_one_entry_and_transitions_move_the_stage(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    handoff = make_handoff()
    upsert(activity_env, store, handoff)
    kickoff_at = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    entry = RecordTimelineInput(
        customer_id=handoff.customer_id,
        seq=1,
        at=kickoff_at,
        kind="transition",
        stage=Stage.KICKOFF,
        summary="handoff received: schedule the kickoff",
        details={"from": "handoff", "cause": "started"},
    )
    activity_env.run(store.record_timeline, entry)
    activity_env.run(store.record_timeline, entry)
    training_at = kickoff_at + timedelta(days=5)
    activity_env.run(
        store.record_timeline,
        entry.model_copy(update={"seq": 3, "at": training_at, "stage": Stage.TRAINING}),
    )
    # Other kinds of entries leave the stage alone.
    activity_env.run(
        store.record_timeline,
        entry.model_copy(update={"seq": 2, "at": kickoff_at + timedelta(days=1), "kind": "note"}),
    )

    with database.session() as session:
        entries = session.exec(
            select(TimelineEntry)
            .where(col(TimelineEntry.customer_id) == handoff.customer_id)
            .order_by(col(TimelineEntry.seq))
        ).all()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].details == {"from": "handoff", "cause": "started"}
    assert entries[0].at == kickoff_at
    row = customer_row(database, handoff.customer_id)
    assert row.stage == Stage.TRAINING.value
    assert row.stage_since == training_at


def test_late_older_transition_does_not_move_the_stage_back(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    handoff = make_handoff()
    upsert(activity_env, store, handoff)
    now = datetime.now(UTC) + timedelta(days=1)
    newer = RecordTimelineInput(
        customer_id=handoff.customer_id,
        seq=2,
        at=now,
        kind="transition",
        stage=Stage.TRAINING,
        summary="kickoff held",
    )
    older = newer.model_copy(
        update={"seq": 1, "at": now - timedelta(hours=1), "stage": Stage.KICKOFF}
    )
    activity_env.run(store.record_timeline, newer)
    activity_env.run(store.record_timeline, older)

    assert customer_row(database, handoff.customer_id).stage == Stage.TRAINING.value


def test_open_task_retry_opens_one_task_and_close_keeps_the_first_resolution(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    opened_at = datetime(2025, 3, 1, tzinfo=UTC)
    task = OpenTaskInput(
        task_id="cust-1-1",
        customer_id="cust-1",
        kind=TaskKind.SCHEDULE_KICKOFF,
        assignee="csm@liftoff.example",
        title="Schedule the kickoff meeting",
        opened_at=opened_at,
        due_at=opened_at + timedelta(days=14),
    )
    activity_env.run(store.open_task, task)
    activity_env.run(store.open_task, task)
    closing = CloseTasksInput(
        customer_id="cust-1",
        task_ids=["cust-1-1"],
        closed_at=opened_at + timedelta(days=3),
        resolution="kickoff held",
    )
    activity_env.run(store.close_tasks, closing)
    activity_env.run(
        store.close_tasks,
        closing.model_copy(update={"closed_at": opened_at + timedelta(days=9), "resolution": "x"}),
    )

    with database.session() as session:
        tasks = session.exec(select(Task).where(col(Task.customer_id) == "cust-1")).all()
    assert len(tasks) == 1
    assert tasks[0].state == "done"
    assert tasks[0].resolution == "kickoff held"
    assert tasks[0].closed_at == opened_at + timedelta(days=3)
    assert tasks[0].due_at == opened_at + timedelta(days=14)


def test_a_close_that_runs_before_its_tasks_open_waits_for_it_then_closes_it(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    # One batch of effects runs at once: a stage entered and left in one batch queues
    # the task's open and its close side by side.
    opened_at = datetime(2025, 3, 1, tzinfo=UTC)
    closing = CloseTasksInput(
        customer_id="cust-1",
        task_ids=["cust-1-2"],
        closed_at=opened_at,
        resolution="stage training ended",
    )
    with pytest.raises(ApplicationError) as early:
        activity_env.run(store.close_tasks, closing)
    assert early.value.type == "TaskNotStoredYet" and not early.value.non_retryable

    activity_env.run(
        store.open_task,
        OpenTaskInput(
            task_id="cust-1-2",
            customer_id="cust-1",
            kind=TaskKind.SCHEDULE_TRAINING,
            assignee="csm@liftoff.example",
            title="Schedule the product training",
            opened_at=opened_at,
        ),
    )
    activity_env.run(store.close_tasks, closing)  # the retry
    with database.session() as session:
        row = session.exec(select(Task).where(col(Task.task_id) == "cust-1-2")).one()
    assert (row.state, row.resolution) == ("done", "stage training ended")

    # An open that never lands (refused for good) is waited for a few attempts only.
    late = ActivityEnvironment()
    late.info = dataclasses.replace(late.info, attempt=CLOSE_WAITS_FOR_OPEN_ATTEMPTS)
    late.run(store.close_tasks, closing.model_copy(update={"task_ids": ["cust-1-9"]}))


def test_open_task_with_a_title_longer_than_its_column_keeps_the_whole_text_in_the_detail(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    # A CSM's 600-character note became a task title; PostgreSQL refused it forever.
    title = "Hold an on-demand meeting (customer request): " + "長い説明" * 150
    task = OpenTaskInput(
        task_id="cust-1-1",
        customer_id="cust-1",
        kind=TaskKind.MEETING,
        assignee="csm@liftoff.example",
        title=title,
        opened_at=datetime(2025, 3, 1, tzinfo=UTC),
    )
    activity_env.run(store.open_task, task)

    with database.session() as session:
        row = session.exec(select(Task).where(col(Task.task_id) == "cust-1-1")).one()
    assert len(row.title) == TASK_TITLE_CHARS
    assert row.title.endswith("…") and title.startswith(row.title[:-1])
    assert row.detail == title


def test_close_tasks_leaves_other_customers_tasks_open(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    opened_at = datetime(2025, 3, 1, tzinfo=UTC)
    for customer in ("cust-a", "cust-b"):
        activity_env.run(
            store.open_task,
            OpenTaskInput(
                task_id=f"{customer}-1",
                customer_id=customer,
                kind=TaskKind.STALL_FOLLOW_UP,
                assignee="csm@liftoff.example",
                title="Usage stalled: call the customer",
                opened_at=opened_at,
            ),
        )
    activity_env.run(
        store.close_tasks,
        CloseTasksInput(
            customer_id="cust-a",
            task_ids=["cust-a-1", "cust-b-1"],
            closed_at=opened_at,
            resolution="usage recovered",
        ),
    )
    with database.session() as session:
        states = dict(session.exec(select(Task.task_id, Task.state)).all())
    assert states == {"cust-a-1": "done", "cust-b-1": "open"}


def _max_length(model: type[BaseModel], field: str) -> int:
    bounds = [m.max_length for m in model.model_fields[field].metadata if hasattr(m, "max_length")]
    assert bounds, f"{model.__name__}.{field} has no bound"
    return int(bounds[0])


def _column_length(table: type[SQLModel], column: str) -> int:
    length = table.__table__.c[column].type.length  # type: ignore[attr-defined]
    assert isinstance(length, int), f"{table.__name__}.{column} is not a bounded string"
    return length


@pytest.mark.parametrize(
    ("bound", "column"),
    [
        (_max_length(CustomerHandoff, "name"), (Customer, "name")),
        (_max_length(CustomerHandoff, "time_zone"), (Customer, "time_zone")),
        (_max_length(Contact, "name"), (CustomerContact, "name")),
        (limits.EMAIL_CHARS, (CustomerContact, "email")),
        (limits.EMAIL_CHARS, (Customer, "csm")),
        (limits.EMAIL_CHARS, (Task, "assignee")),
        (_max_length(Playbook, "name"), (Customer, "playbook_name")),
        (_max_length(Playbook, "version"), (Customer, "playbook_version")),
        (_max_length(Purpose, "key_action"), (UsageEvent, "event")),
        (_max_length(TaskCompleted, "task_id"), (Task, "task_id")),
    ],
    ids=lambda value: f"{value[0].__name__}.{value[1]}" if isinstance(value, tuple) else str(value),
)
def test_every_bound_on_input_fits_the_column_it_is_stored_in(
    bound: int, column: tuple[type[SQLModel], str]
) -> None:
    assert bound <= _column_length(*column)


def test_a_handoff_at_every_bound_in_japanese_is_stored_whole(
    database: Database, store: StoreActivities, activity_env: ActivityEnvironment
) -> None:
    def email(n: int) -> str:
        local = f"{n}-" + "a" * (limits.EMAIL_CHARS - len(f"{n}-") - len("@acme.example"))
        return f"{local}@acme.example"

    contacts = [
        Contact(email=email(n), name="名" * limits.NAME_CHARS, role=Role.END_USER)
        for n in range(limits.CONTACTS)
    ]
    handoff = make_handoff(
        name="株" * limits.NAME_CHARS,
        contacts=contacts,
        handoff_notes="メモ" * (limits.HANDOFF_NOTES_CHARS // 2),
    )
    activity_env.run(
        store.upsert_customer,
        UpsertCustomerInput(
            handoff=handoff,
            playbook_name="版" * limits.NAME_CHARS,
            playbook_version="v" * limits.VERSION_CHARS,
            workflow_id=f"onboarding-{handoff.customer_id}",
        ),
    )
    row = customer_row(database, handoff.customer_id)
    assert row.name == handoff.name
    assert row.handoff_notes == handoff.handoff_notes
    assert len(contact_emails(database, handoff.customer_id)) == limits.CONTACTS
