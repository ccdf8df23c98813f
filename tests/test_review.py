"""The playbook review: the leader's task opens when exactly the threshold of a
version's customers finished, once (retries, later endings and two workers at the same
time do not open it again); each completion criterion's suggestion follows its rule;
the report reads as a page (en, ja, escaped), Markdown, CSV and JSON, for leads only."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.store import StoreActivities
from analytics.outcomes import (
    CriterionAtHorizon,
    CriterionKey,
    Estimate,
    Proportion,
    Verdict,
)
from analytics.review import Action, Reason, suggest
from analytics.stalls import MissingCriterion
from models import limits
from models.activity_io import RecordTimelineInput
from models.onboarding import Stage
from models.playbook import ReviewPolicy
from models.projection import ProjectionSnapshot
from models.tables import Task
from records.database import Database
from records.review import REVIEW_TASK_KIND, review_task_id
from testkit.factories import make_handoff, make_playbook, store_customer
from testkit.outcomes import SEATS_DRIVE_OUTCOMES, write_outcome_cohort
from tests.support.api_harness import ApiHarness

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)
LEADER = "lead@liftoff.example"


def _ending(
    customer_id: str, outcome: Stage, *, version: str = "7", threshold: int = 3
) -> RecordTimelineInput:
    ended = AT + timedelta(days=30)
    return RecordTimelineInput(
        customer_id=customer_id,
        seq=5,
        at=ended,
        kind="transition",
        stage=outcome,
        summary=f"onboarding ended: {outcome.value}",
        details={"from": Stage.ADOPTION.value, "to": outcome.value},
        snapshot=ProjectionSnapshot(
            name=f"Customer {customer_id}",
            csm="csm@liftoff.example",
            cs_leader=LEADER,
            stage=outcome,
            stage_since=ended,
            stage_entered={Stage.HANDOFF: AT, outcome: ended},
            started_at=AT,
            playbook_name="default",
            playbook_version=version,
            purposes=["A"],
            seats_contracted=10,
            review_after=threshold,
        ),
    )


def _finish(database: Database, customer_id: str, outcome: Stage, **kwargs: object) -> None:
    store_customer(database, make_handoff(customer_id=customer_id))
    ActivityEnvironment().run(
        StoreActivities(database).record_timeline,
        _ending(customer_id, outcome, **kwargs),  # type: ignore[arg-type]
    )


def _review_tasks(database: Database) -> list[Task]:
    with database.session() as session:
        return list(session.exec(select(Task).where(Task.kind == REVIEW_TASK_KIND)).all())


# The trigger


def test_the_review_task_opens_at_exactly_the_threshold_and_only_once(
    database: Database,
) -> None:
    _finish(database, "c1", Stage.ONBOARDED)
    _finish(database, "c2", Stage.FAILED)
    # Another version's ending does not count toward this one.
    _finish(database, "other", Stage.ONBOARDED, version="8")
    assert _review_tasks(database) == []  # N-1 finished: no task yet

    _finish(database, "c3", Stage.CANCELLED)  # the Nth
    [task] = _review_tasks(database)
    assert task.task_id == review_task_id("7") and task.assignee == LEADER
    assert task.state == "open" and task.customer_id == "c3"
    assert "/cohort/review?version=7" in task.detail and "3 customers" in task.title

    # A retried write of the same ending, and a later customer, open nothing more.
    ActivityEnvironment().run(
        StoreActivities(database).record_timeline, _ending("c3", Stage.CANCELLED)
    )
    _finish(database, "c4", Stage.ONBOARDED)
    assert [t.task_id for t in _review_tasks(database)] == ["review:7"]


def test_two_workers_finishing_the_last_two_together_open_it_once(database: Database) -> None:
    """Each worker's transaction counts after the other's ending is committed (a lock per
    version on PostgreSQL, SQLite's single writer), so neither sees N-1 only."""
    for customer_id in ("w1", "w2", "w3", "w4"):
        store_customer(database, make_handoff(customer_id=customer_id))
    store = StoreActivities(database)
    for customer_id in ("w1", "w2"):
        ActivityEnvironment().run(
            store.record_timeline, _ending(customer_id, Stage.ONBOARDED, threshold=4)
        )
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(customer_id: str) -> None:
        try:
            start.wait()
            ActivityEnvironment().run(
                store.record_timeline, _ending(customer_id, Stage.FAILED, threshold=4)
            )
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(c,)) for c in ("w3", "w4")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [t.task_id for t in _review_tasks(database)] == ["review:7"]


def test_the_threshold_is_a_bounded_playbook_field_defaulting_to_fifty() -> None:
    assert make_playbook().review.after_finished == limits.REVIEW_AFTER_DEFAULT == 50
    assert ReviewPolicy(after_finished=1).after_finished == 1
    for wrong in (0, limits.REVIEW_AFTER_MAX + 1):
        with pytest.raises(ValidationError, match="after_finished"):
            ReviewPolicy(after_finished=wrong)
