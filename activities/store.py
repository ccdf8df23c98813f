"""Activities that write the customer's record.

Every write is keyed (customer id, timeline seq, task id, week index), so a
retried activity changes nothing: the workflow may run each as often as it needs.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

import observability.metrics as metrics
from models.activity_io import (
    AddContactInput,
    CloseTasksInput,
    MoveTaskDueInput,
    OpenTaskInput,
    RecordTimelineInput,
    StoreBatchInput,
    UpsertCustomerInput,
)
from models.handoff import Contact
from models.limits import REVIEW_AFTER_DEFAULT
from models.onboarding import Stage, TimelineKind
from models.tables import (
    Customer,
    CustomerContact,
    Task,
    TimelineEntry,
    UtcDateTime,
    utc_now,
)
from records.database import Database, insert_ignore
from records.projections import apply_entry, refold
from records.review import open_review_if_due
from records.surveys import REVIEW_KIND, store_review_answers
from records.usage.unmatched import adopt_unmatched

TRANSITION = "transition"
# The tasks.title column.
TASK_TITLE_CHARS = 500
# A close that finds its task not stored yet retries this many times (about 30 s
# with the store retry policy) for the open running beside it, then gives up.
CLOSE_WAITS_FOR_OPEN_ATTEMPTS = 5

# Statements run at many writes, built once with their values bound at each run (as in
# activities/mail.py). Entries may be written out of order: the latest transition wins.
_MOVE_STAGE = (
    update(Customer)
    .where(col(Customer.customer_id) == bindparam("row_customer_id"))
    .where(
        or_(
            col(Customer.stage_since).is_(None),
            col(Customer.stage_since) <= bindparam("row_since"),
        )
    )
)
# Only open tasks: a retry keeps the first closing time and resolution.
_CLOSE_OPEN_TASKS = (
    update(Task)
    .where(col(Task.customer_id) == bindparam("row_customer_id"))
    .where(col(Task.task_id).in_(bindparam("task_ids", expanding=True)))
    .where(col(Task.state) == "open")
)


def _earlier_attempt(order: Any, at: Any, than_order: Any, than_at: Any) -> Any:
    """Whether a row was written by an earlier workflow task attempt than (than_order,
    than_at) (workflows/effects.py attempt_stamp). NULL, written before orders, is the
    earliest."""
    return or_(func.coalesce(order, -1) < than_order, and_(order == than_order, at < than_at))


def _earlier_than_bound(table: Any) -> Any:
    return _earlier_attempt(
        table.c.attempt_order,
        table.c.attempt_at,
        bindparam("attempt_order"),
        bindparam("attempt_at", type_=UtcDateTime()),
    )


# The entry at a seq, if a later attempt than the bound one wrote it.
_LATER_ATTEMPT_AT_SEQ = (
    select(TimelineEntry.seq)
    .where(col(TimelineEntry.customer_id) == bindparam("row_customer_id"))
    .where(col(TimelineEntry.seq) == bindparam("row_seq"))
    .where(
        _earlier_attempt(
            bindparam("attempt_order"),
            bindparam("attempt_at", type_=UtcDateTime()),
            col(TimelineEntry.attempt_order),
            col(TimelineEntry.attempt_at),
        )
    )
)
# Rows a workflow task attempt wrote that a later attempt writes again.
_DEAD_ATTEMPT_ENTRIES = (
    delete(TimelineEntry)
    .where(col(TimelineEntry.customer_id) == bindparam("row_customer_id"))
    .where(col(TimelineEntry.seq) >= bindparam("row_seq"))
    .where(_earlier_than_bound(TimelineEntry.__table__))  # type: ignore[attr-defined]
    .returning(col(TimelineEntry.kind), col(TimelineEntry.details))
)
_DEAD_ATTEMPT_TASKS = (
    delete(Task)
    .where(col(Task.customer_id) == bindparam("row_customer_id"))
    .where(col(Task.task_id).in_(bindparam("task_ids", expanding=True)))
    .where(_earlier_than_bound(Task.__table__))  # type: ignore[attr-defined]
)
# Only an open task: a closed one keeps the date it had.
_MOVE_TASK_DUE = (
    update(Task)
    .where(col(Task.customer_id) == bindparam("row_customer_id"))
    .where(col(Task.task_id) == bindparam("row_task_id"))
    .where(col(Task.state) == "open")
)
_STORED_TASKS = (
    select(Task.task_id)
    .where(col(Task.customer_id) == bindparam("row_customer_id"))
    .where(col(Task.task_id).in_(bindparam("task_ids", expanding=True)))
)


def _insert_contact(session: Session, customer_id: str, contact: Contact) -> None:
    insert_ignore(
        session,
        CustomerContact,
        {
            "customer_id": customer_id,
            "email": contact.email,
            "name": contact.name,
            "role": contact.role.value,
            "unsubscribed": False,
        },
        ["customer_id", "email"],
    )


def _fit_title(title: str, detail: str) -> tuple[str, str]:
    """A title longer than its column is cut, and kept whole in the detail: PostgreSQL
    refuses what does not fit, and a write no retry can mend would freeze the customer."""
    if len(title) <= TASK_TITLE_CHARS:
        return title, detail
    whole = f"{detail}\n\n{title}" if detail else title
    return title[: TASK_TITLE_CHARS - 1] + "…", whole


class StoreActivities:
    def __init__(self, database: Database) -> None:
        self._database = database

    @activity.defn
    def upsert_customer(self, input: UpsertCustomerInput) -> None:
        """Create the customer and its contacts once; a rerun leaves the stored record as is."""
        with self._database.session() as session:
            _upsert_customer(session, input)

    @activity.defn
    def add_contact(self, input: AddContactInput) -> None:
        with self._database.session() as session:
            _insert_contact(session, input.customer_id, input.contact)

    @activity.defn
    def record_timeline(self, input: RecordTimelineInput) -> None:
        """Store the entry and move the customer projection forward, in one transaction."""
        with self._database.session() as session:
            inserted = _record_timeline(session, input)
        # Counted once committed, and only by the attempt that inserted the entry.
        if inserted:
            _count_entry(input)

    @activity.defn
    def open_task(self, input: OpenTaskInput) -> None:
        with self._database.session() as session:
            _open_task(session, input)

    @activity.defn
    def close_tasks(self, input: CloseTasksInput) -> None:
        if not input.task_ids:
            return
        with self._database.session() as session:
            stored = _close_tasks(session, input)
        _wait_for_open(input, stored)

    @activity.defn
    def move_task_due(self, input: MoveTaskDueInput) -> None:
        with self._database.session() as session:
            _move_task_due(session, input)

    @activity.defn
    def store_batch(self, input: StoreBatchInput) -> None:
        """The writes one workflow task queued, in their order, in one transaction.

        Each write is keyed as in its own activity (customer and seq, task id, contact
        email), so a retried batch changes nothing it already wrote.
        """
        inserted: list[RecordTimelineInput] = []
        waits: list[tuple[CloseTasksInput, set[str]]] = []
        with self._database.session() as session:
            if _outlived(session, input):
                return
            for write in input.writes:
                if write.upsert_customer is not None:
                    _upsert_customer(session, write.upsert_customer)
                if write.add_contact is not None:
                    contact = write.add_contact
                    _insert_contact(session, contact.customer_id, contact.contact)
                if write.record_timeline is not None:
                    entry = write.record_timeline
                    if entry.snapshot is None and input.snapshot is not None:
                        entry = entry.model_copy(update={"snapshot": input.snapshot})
                    if _record_timeline(session, entry):
                        inserted.append(entry)
                if write.open_task is not None:
                    _open_task(session, write.open_task)
                if write.close_tasks is not None and write.close_tasks.task_ids:
                    close = write.close_tasks
                    waits.append((close, _close_tasks(session, close)))
                if write.move_task_due is not None:
                    _move_task_due(session, write.move_task_due)
        for entry in inserted:
            _count_entry(entry)
        for close, stored in waits:
            _wait_for_open(close, stored)


def _upsert_customer(session: Session, input: UpsertCustomerInput) -> None:
    handoff = input.handoff
    now = utc_now()
    insert_ignore(
        session,
        Customer,
        {
            "customer_id": handoff.customer_id,
            "name": handoff.name,
            "csm": handoff.csm,
            "cs_leader": handoff.cs_leader,
            "seats_contracted": handoff.seats_contracted,
            "quota_contracted": handoff.quota_contracted,
            "time_zone": handoff.time_zone,
            "locale": handoff.locale,
            "purposes": list(handoff.purposes),
            "trial_used": handoff.trial_used,
            "already_using": handoff.already_using,
            "handoff_notes": handoff.handoff_notes,
            "playbook_name": input.playbook_name,
            "playbook_version": input.playbook_version,
            "workflow_id": input.workflow_id,
            "stage": Stage.HANDOFF.value,
            # Set by the first transition: the workflow's clock, not this one,
            # orders transitions (see record_timeline).
            "stage_since": None,
            "created_at": now,
        },
        ["customer_id"],
    )
    for contact in handoff.contacts:
        _insert_contact(session, handoff.customer_id, contact)
    # Usage sent before the onboarding started (a trial, say) counts from now on.
    adopt_unmatched(session, handoff.customer_id)


def _outlived(session: Session, input: StoreBatchInput) -> bool:
    """Whether a later workflow task attempt wrote this batch's first entry already: the
    batch comes from an attempt that died and is still running somewhere (its worker
    cut off, its local activity not), and writes nothing, not even the task it opens."""
    first = next((w.record_timeline for w in input.writes if w.record_timeline), None)
    if first is None or first.attempt_order is None or first.attempt_at is None:
        return False
    later = session.connection().execute(
        _LATER_ATTEMPT_AT_SEQ,
        {
            "row_customer_id": first.customer_id,
            "row_seq": first.seq,
            "attempt_order": first.attempt_order,
            "attempt_at": first.attempt_at,
        },
    )
    return later.first() is not None


def _drop_dead_attempts(session: Session, input: RecordTimelineInput) -> None:
    """Remove what a workflow task attempt that died wrote from this entry's seq on.

    Entries before this one were written by attempts that lived, in seq order; from it
    on, a row of an earlier attempt was written by one whose workflow task never
    completed, and the workflow, replaying from before it, numbers its own entries
    (and task ids) afresh. Without this, the dead attempt's entries, tasks and
    projection stayed: a timeline without the CSM's event, a task no one closes.
    """
    if input.attempt_order is None:
        return
    dropped = (
        session.connection()
        .execute(
            _DEAD_ATTEMPT_ENTRIES,
            {
                "row_customer_id": input.customer_id,
                "row_seq": input.seq,
                "attempt_order": input.attempt_order,
                "attempt_at": input.attempt_at,
            },
        )
        .all()
    )
    if not dropped:
        return
    task_ids = [
        str(details["task_id"])
        for kind, details in dropped
        if kind == "task_opened" and isinstance(details, dict) and "task_id" in details
    ]
    if task_ids:
        session.connection().execute(
            _DEAD_ATTEMPT_TASKS,
            {
                "row_customer_id": input.customer_id,
                "task_ids": task_ids,
                "attempt_order": input.attempt_order,
                "attempt_at": input.attempt_at,
            },
        )
    refold(session, input.customer_id)


def _record_timeline(session: Session, input: RecordTimelineInput) -> bool:
    """The entry, the projection fold and the stage; True if this call inserted the entry."""
    _drop_dead_attempts(session, input)
    snapshot = input.snapshot.model_dump(mode="json") if input.snapshot else None
    inserted = insert_ignore(
        session,
        TimelineEntry,
        {
            "customer_id": input.customer_id,
            "seq": input.seq,
            "at": input.at,
            "kind": input.kind,
            "stage": input.stage.value,
            "summary": input.summary,
            "details": input.details,
            "snapshot": snapshot,
            "attempt_order": input.attempt_order,
            "attempt_at": input.attempt_at,
        },
        ["customer_id", "seq"],
    )
    apply_entry(
        session,
        customer_id=input.customer_id,
        seq=input.seq,
        at=input.at,
        kind=input.kind,
        details=input.details,
        snapshot=input.snapshot,
    )
    if input.kind == REVIEW_KIND:
        # The review's NPS answers join the survey answers (the first one stands).
        store_review_answers(session, input.customer_id, input.details, input.at)
    if input.kind == TRANSITION:
        session.connection().execute(
            _MOVE_STAGE,
            {
                "row_customer_id": input.customer_id,
                "row_since": input.at,
                "stage": input.stage.value,
                "stage_since": input.at,
            },
        )
        if input.stage.terminal:
            _open_review_if_due(session, input)
    return bool(inserted)


def _open_review_if_due(session: Session, input: RecordTimelineInput) -> None:
    """The playbook review: at the version's threshold of finished customers, the
    leader's task (records/review.py), in the transaction that recorded the ending."""
    snapshot = input.snapshot
    version = snapshot.playbook_version if snapshot else None
    if version is None:
        row = session.get(Customer, input.customer_id)
        version = row.playbook_version if row else None
    if version:
        open_review_if_due(
            session,
            customer_id=input.customer_id,
            version=version,
            threshold=snapshot.review_after if snapshot else REVIEW_AFTER_DEFAULT,
            at=input.at,
        )


def _count_entry(input: RecordTimelineInput) -> None:
    meter = metrics.activity_meter()
    metrics.count(meter, metrics.TIMELINE_ENTRIES, {"kind": input.kind})
    if input.kind == TimelineKind.WEEKLY_MEASUREMENT:
        verdict = metrics.verdict_of(input.details)
        metrics.count(meter, metrics.VERDICTS, {"verdict": verdict})


def _open_task(session: Session, input: OpenTaskInput) -> None:
    """Open the task once; a later workflow task attempt's open of the same id replaces a
    dead attempt's (see _drop_dead_attempts), a retry of the same one changes nothing."""
    title, detail = _fit_title(input.title, input.detail)
    row = {
        "task_id": input.task_id,
        "customer_id": input.customer_id,
        "kind": input.kind.value,
        "assignee": input.assignee,
        "title": title,
        "detail": detail,
        "state": "open",
        "opened_at": input.opened_at,
        "due_at": input.due_at,
        "closed_at": None,
        "resolution": None,
        "attempt_order": input.attempt_order,
        "attempt_at": input.attempt_at,
    }
    if input.attempt_order is None:
        insert_ignore(session, Task, row, ["task_id"])
        return
    statement = _open_task_statement(session.get_bind().dialect.name)
    session.connection().execute(statement, row)


@functools.cache
def _open_task_statement(dialect: str) -> Any:
    table = Task.__table__  # type: ignore[attr-defined]
    insert: Any = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    # The same customer's only: a task id is "<customer id>-<n>".
    excluded = insert.excluded
    later = _earlier_attempt(
        table.c.attempt_order, table.c.attempt_at, excluded.attempt_order, excluded.attempt_at
    ) & (table.c.customer_id == excluded.customer_id)
    return insert.on_conflict_do_update(
        index_elements=["task_id"],
        set_={name: insert.excluded[name] for name in table.columns.keys() if name != "task_id"},
        where=later,
    )


def _move_task_due(session: Session, input: MoveTaskDueInput) -> None:
    session.connection().execute(
        _MOVE_TASK_DUE,
        {
            "row_customer_id": input.customer_id,
            "row_task_id": input.task_id,
            "due_at": input.due_at,
        },
    )


def _close_tasks(session: Session, input: CloseTasksInput) -> set[str]:
    """Close the open ones; returns the ids stored (open or closed)."""
    connection = session.connection()
    tasks = {"row_customer_id": input.customer_id, "task_ids": list(input.task_ids)}
    connection.execute(
        _CLOSE_OPEN_TASKS,
        {
            **tasks,
            "state": "done",
            "closed_at": input.closed_at,
            "resolution": input.resolution,
        },
    )
    return set(connection.execute(_STORED_TASKS, tasks).scalars())


def _wait_for_open(input: CloseTasksInput, stored: set[str]) -> None:
    # Task ids are "<customer id>-<n>": another customer's id is never waited for.
    own = {task_id for task_id in input.task_ids if task_id.startswith(f"{input.customer_id}-")}
    missing = sorted(own - stored)
    if missing and activity.info().attempt < CLOSE_WAITS_FOR_OPEN_ATTEMPTS:
        # The workflow queued each task's open before its close, but one batch of
        # effects runs at once: wait for the open to land rather than lose the close.
        raise ApplicationError(
            f"task(s) {', '.join(missing)} not stored yet; closing again shortly",
            type="TaskNotStoredYet",
            category=ApplicationErrorCategory.BENIGN,
        )
