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
from sqlalchemy import text
from sqlmodel import Session, select
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
from records.projections import apply_entry
from records.review import REVIEW_TASK_KIND, open_review_if_due, review_task_id
from testkit.factories import make_handoff, make_playbook, store_customer
from testkit.outcomes import SEATS_DRIVE_OUTCOMES, write_outcome_cohort
from tests.support.api_harness import ApiHarness
from tests.support.eventually import eventually_blocking

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


def _end_in(session: Session, customer_id: str) -> bool:
    """One worker's ending of `customer_id` (the 3rd or 4th of threshold 4), as
    record_timeline does it: fold into the projection, then the trigger."""
    entry = _ending(customer_id, Stage.FAILED, threshold=4)
    apply_entry(
        session,
        customer_id=customer_id,
        seq=entry.seq,
        at=entry.at,
        kind=entry.kind,
        details=entry.details,
        snapshot=entry.snapshot,
    )
    return open_review_if_due(session, customer_id=customer_id, version="7", threshold=4, at=AT)


def test_the_second_of_two_overlapping_endings_counts_after_the_first_commits(
    postgres_database: Database,
) -> None:
    """Worker A has ended the 3rd customer and counted 3, not committed yet; worker B
    ends the 4th meanwhile. B must count 4 (else both saw 3 and no task ever opens):
    the per-version lock makes B wait for A's commit."""
    database = postgres_database
    for customer_id in ("w1", "w2", "w3", "w4"):
        store_customer(database, make_handoff(customer_id=customer_id))
    with database.session() as session:
        for customer_id in ("w1", "w2"):
            _end_in(session, customer_id)
    b_opened: list[bool] = []
    with Session(database.engine) as a:
        assert _end_in(a, "w3") is False  # 3 of 4 in A's view

        def worker_b() -> None:
            with database.session() as b:
                b_opened.append(_end_in(b, "w4"))

        b = threading.Thread(target=worker_b)
        b.start()
        # B is either done (it did not wait: the race this test exists for) or waiting
        # on A's lock; commit A only then.
        eventually_blocking(
            lambda: not b.is_alive() or _waiting_on_a_lock(database),
            what="worker B done or waiting on the version's lock",
        )
        a.commit()
    b.join()
    assert b_opened == [True]
    assert [t.task_id for t in _review_tasks(database)] == ["review:7"]


def _waiting_on_a_lock(database: Database) -> bool:
    with database.engine.connect() as connection:
        waiting = connection.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).scalar_one()
    return bool(waiting)


def test_the_threshold_is_a_bounded_playbook_field_defaulting_to_fifty() -> None:
    assert make_playbook().review.after_finished == limits.REVIEW_AFTER_DEFAULT == 50
    assert ReviewPolicy(after_finished=1).after_finished == 1
    for wrong in (0, limits.REVIEW_AFTER_MAX + 1):
        with pytest.raises(ValidationError, match="after_finished"):
            ReviewPolicy(after_finished=wrong)


# The suggestions: one hand-built case per branch of the rule

KEY = CriterionKey(metric="active_seat_ratio", purpose=None, threshold=0.6, weeks=2)


def _share(count: int, n: int) -> Proportion:
    return Proportion(count, n, count / n if n else None, None, None)


def _figures(
    *,
    met: int,
    not_met: int,
    churn: Estimate | None = None,
    health: Estimate | None = None,
) -> CriterionAtHorizon:
    none = Estimate(0.0, -0.1, 0.1, Verdict.NOT_CONCLUSIVE, min(met, not_met))
    return CriterionAtHorizon(
        criterion=KEY,
        confidence=0.95,
        churn_met=_share(met // 10, met),
        churn_not_met=_share(not_met // 5, not_met),
        churn_difference=churn or none,
        churn_lift=Estimate(None, None, None, Verdict.NOT_CONCLUSIVE, min(met, not_met)),
        high_health_met=_share(met // 2, met),
        high_health_not_met=_share(not_met // 3, not_met),
        health_lift=health or Estimate(1.0, 0.8, 1.3, Verdict.NOT_CONCLUSIVE, min(met, not_met)),
    )


TOO_FEW = Estimate(None, None, None, Verdict.TOO_FEW, 3)


def _missing(share: float) -> MissingCriterion:
    return MissingCriterion(
        criterion="active_seat_ratio",
        metric="active_seat_ratio",
        purpose=None,
        customers=round(20 * share),
        failed=10,
        stalled=10,
        share=share,
        median_weeks_missing=3.0,
        longest_weeks_missing=6,
        median_days_missing=21.0,
    )


@pytest.mark.parametrize(
    ("figures", "missing", "action", "reason"),
    [
        # Missing it went with 12 points more churn (interval 3…21): it separates.
        (
            _figures(met=30, not_met=20, churn=Estimate(0.12, 0.03, 0.21, Verdict.CONCLUSIVE, 20)),
            None,
            Action.KEEP,
            Reason.SEPARATES,
        ),
        # Meeting it went with high health 2.1x as often (1.2…3.6): it separates.
        (
            _figures(met=30, not_met=20, health=Estimate(2.1, 1.2, 3.6, Verdict.CONCLUSIVE, 20)),
            None,
            Action.KEEP,
            Reason.SEPARATES,
        ),
        # Missing it went with 15 points *less* churn (−25…−5): the wrong way round.
        (
            _figures(
                met=30, not_met=20, churn=Estimate(-0.15, -0.25, -0.05, Verdict.CONCLUSIVE, 20)
            ),
            None,
            Action.DROP,
            Reason.WRONG_WAY,
        ),
        # 28 of 30 met it, too few missed it to compare: nearly all met it.
        (
            _figures(met=28, not_met=2, churn=TOO_FEW, health=TOO_FEW),
            None,
            Action.RAISE,
            Reason.NEARLY_ALL_MET,
        ),
        # 1 of 25 met it: nearly no one.
        (
            _figures(met=1, not_met=24, churn=TOO_FEW, health=TOO_FEW),
            None,
            Action.LOWER,
            Reason.NEARLY_NONE_MET,
        ),
        # 8 and 5: too few either way, and too few in all for "nearly all".
        (
            _figures(met=8, not_met=5, churn=TOO_FEW, health=TOO_FEW),
            None,
            Action.NOT_ENOUGH_DATA,
            Reason.TOO_FEW,
        ),
        # 18 of 19 met it but only 19 judged (< 20): still not enough data.
        (
            _figures(met=18, not_met=1, churn=TOO_FEW, health=TOO_FEW),
            None,
            Action.NOT_ENOUGH_DATA,
            Reason.TOO_FEW,
        ),
        # Enough on both sides, no difference: 45 of 55 met it (82% ≥ 80%): raise.
        (_figures(met=45, not_met=10), None, Action.RAISE, Reason.MOST_MET),
        # 10 of 55 met it (18% ≤ 20%): lower.
        (_figures(met=10, not_met=45), None, Action.LOWER, Reason.FEW_MET),
        # 25 and 25, no difference, but 60% of failed and stalled customers missed it.
        (_figures(met=25, not_met=25), _missing(0.6), Action.KEEP, Reason.TROUBLED_MISS_IT),
        # 25 and 25, no difference, 30% of the troubled missed it: drop.
        (_figures(met=25, not_met=25), _missing(0.3), Action.DROP, Reason.NO_DIFFERENCE),
        # Churn says keep, health says the opposite: no conclusion.
        (
            _figures(
                met=30,
                not_met=20,
                churn=Estimate(0.12, 0.03, 0.21, Verdict.CONCLUSIVE, 20),
                health=Estimate(0.5, 0.3, 0.8, Verdict.CONCLUSIVE, 20),
            ),
            None,
            Action.NOT_ENOUGH_DATA,
            Reason.TOO_FEW,
        ),
    ],
)
def test_each_suggestion_follows_its_rule_with_the_figures_behind_it(
    figures: CriterionAtHorizon,
    missing: MissingCriterion | None,
    action: Action,
    reason: Reason,
) -> None:
    found = suggest(figures, missing, months=12)
    assert (found.action, found.reason) == (action, reason)
    assert (found.met, found.not_met) == (figures.churn_met.n, figures.churn_not_met.n)
    assert found.churn_difference == figures.churn_difference
    assert found.health_lift == figures.health_lift
    assert found.criterion == "active_seat_ratio ≥ 0.6, 2 weeks"
    assert found.troubled_share == (missing.share if missing else None)


# The report


async def test_leads_read_the_review_as_page_markdown_csv_and_json_csms_are_refused(
    api: ApiHarness,
) -> None:
    write_outcome_cohort(
        api.database, SEATS_DRIVE_OUTCOMES, count=80, as_of=date(2026, 12, 1), version="3"
    )
    # The cohort's writes went through the store activity: 80 ≥ 50 opened the review.
    [task] = _review_tasks(api.database)
    assert task.task_id == "review:3" and task.assignee == LEADER
    base = "/api/playbook-versions/3/review"
    async with api.as_lead() as lead:
        found = (await lead.get(base)).json()
        table = await lead.get(base, params={"format": "csv"})
        md_en = await lead.get(base, params={"format": "md"})
        md_ja = await lead.get(base, params={"format": "md", "lang": "ja"})
        page_en = await lead.get("/cohort/review", params={"version": "3"})
        page_ja = await lead.get("/cohort/review", params={"version": "3", "lang": "ja"})
        hostile = await lead.get("/cohort/review", params={"version": "<b>x</b>"})
        missing = await lead.get("/cohort/review")
    assert found["finished"] == 80 and found["task"]["assignee"] == LEADER
    actions = {s["action"] for s in found["suggestions"]}
    assert found["suggestions"] and actions <= {a.value for a in Action}
    # The planted relationship (seat ratio drives churn) shows as a criterion to keep.
    seats = next(s for s in found["suggestions"] if s["criterion"].startswith("active_seat_ratio"))
    assert seats["action"] == "keep" and seats["churn_difference"][3] == "conclusive"
    assert seats["reason"]["ja"] and "churn difference" in seats["figures"]

    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert table.headers["content-type"].startswith("text/csv")
    assert 'filename="review-3.csv"' in table.headers["content-disposition"]
    sections = {r["section"] for r in rows}
    assert {"cohort", "funnel", "time_to_onboard", "outcomes", "suggestion"} <= sections
    assert {
        "section": "suggestion",
        "item": seats["criterion"],
        "measure": "action",
        "value": "keep",
    } in rows

    assert md_en.headers["content-type"].startswith("text/markdown")
    assert md_en.text.startswith("# Playbook review: 3")
    assert "| active_seat_ratio" in md_en.text and "## Funnel" in md_en.text
    assert md_ja.text.startswith("# プレイブックのレビュー：3") and "維持" in md_ja.text

    assert page_en.status_code == 200 and 'data-action="keep"' in page_en.text
    assert "Download CSV" in page_en.text and "lead@liftoff.example" in page_en.text
    assert page_ja.status_code == 200 and "完了基準への提案" in page_ja.text
    assert "<b>x</b>" not in hostile.text and "&lt;b&gt;x&lt;/b&gt;" in hostile.text
    assert missing.status_code == 404

    async with api.as_csm() as csm:
        refused = await csm.get(base)
        page = await csm.get("/cohort/review", params={"version": "3"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "csm tokens cannot do this (allowed: lead, ops)"
    assert page.status_code == 403


def test_markdown_cells_cannot_break_the_table() -> None:
    from api.dashboard.review import _cell

    assert _cell("a|b\nc") == "a\\|b c"
