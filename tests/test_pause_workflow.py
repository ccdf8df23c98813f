"""Pause and resume on the time-skipping server, with the real activities.

A paused customer gets no email, reminder, escalation or verdict; what the CSM and
the product report meanwhile is kept and counted; on resume every clock moves by
the time paused and the step emails go out spread as they were planned.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from cli import connections
from cli.commands.onboarding import cmd_pause_or_resume
from cli.output import status_text
from cli.parser import build_parser
from client.onboarding import OnboardingClient
from models import limits
from models.events import (
    Cancelled,
    GoalAgreed,
    KickoffHeld,
    MeetingKind,
    MeetingRequested,
    Paused,
    Resumed,
)
from models.onboarding import (
    Due,
    DueKind,
    OnboardingResult,
    OnboardingState,
    OnboardingStatus,
    PauseState,
    Stage,
    TaskKind,
)
from models.tables import CustomerProjection, Task, WeeklyMeasurementRecord
from records.database import Database
from settings import Settings
from testkit.factories import make_handoff, make_playbook
from tests.support.workflow_harness import (
    Harness,
    open_kinds,
    save_history,
    through_training,
)
from workflows import events

DAY = timedelta(days=1)


def agenda_at(status: OnboardingStatus, kind: DueKind) -> datetime:
    return next(due.at for due in status.state.agenda if due.kind is kind)


def ledger_keys(h: Harness) -> list[str]:
    return sorted(str(message["X-Liftoff-Ledger-Key"]) for message in h.emails())


def projection(h: Harness, customer_id: str) -> CustomerProjection:
    with h.database.session() as session:
        row = session.get(CustomerProjection, customer_id)
    assert row is not None
    return row


async def pause(h: Harness, handle: WorkflowHandle[Any, Any], event: Paused) -> datetime:
    """Pauses the customer; returns the workflow time the pause began."""
    await h.record(handle, event)
    status = await h.wait_for(handle, lambda s: s.state.pause is not None)
    assert status.state.pause is not None
    return status.state.pause.since


async def test_a_pause_sends_nothing_keeps_every_event_and_resume_moves_every_clock(
    h: Harness,
) -> None:
    handoff = make_handoff()
    playbook = make_playbook()
    handle = await h.start(handoff, playbook)
    before = await h.status(handle)
    deadline = agenda_at(before, DueKind.DEADLINE)
    momentum = agenda_at(before, DueKind.MOMENTUM)
    sent_before = ledger_keys(h)

    paused_at = await pause(h, handle, Paused(reason="customer is reorganising"))
    row = projection(h, handoff.customer_id)
    assert row.paused and row.pause_reason == "customer is reorganising"
    assert row.paused_since is not None

    # Three weeks pass: long past the kickoff's reminder (7 days) and escalation (14).
    await h.env.sleep(21 * DAY)
    # The CSM records what happened meanwhile; the product reports usage.
    today = await h.today()
    await h.record(handle, KickoffHeld(held_on=today, goals=["Scan every invoice"]))
    await h.record(handle, GoalAgreed(goal="Go paperless at reception"))
    await h.record(handle, MeetingRequested(meeting=MeetingKind.CUSTOMER_REQUEST, notes="soon"))
    await h.usage(handoff, active_users=4)
    await h.env.sleep(10 * DAY)
    status = await h.wait_for(handle, lambda s: s.state.stage is Stage.TRAINING)

    # Nothing went out and nothing was judged: no reminder, escalation or email.
    assert ledger_keys(h) == sent_before
    assert TaskKind.OVERDUE_REMINDER not in open_kinds(status)
    assert TaskKind.OVERDUE_ESCALATION not in open_kinds(status)
    # The CSM's events were applied as they came: the stage, the goals, the tasks.
    assert [g.text for g in status.state.goals] == [
        "Scan every invoice",
        "Go paperless at reception",
    ]
    assert open_kinds(status) == [TaskKind.SCHEDULE_TRAINING, TaskKind.MEETING]
    assert status.state.agenda == []  # every timer is held
    assert "PAUSED since" in status_text(status) and "(customer is reorganising)" in status_text(
        status
    )
    entered_training = status.state.stage_since
    assert entered_training is not None

    await h.record(handle, Resumed())
    status = await h.wait_for(handle, lambda s: s.state.pause is None)
    resumed_at = (await h.env.get_current_time()).replace(microsecond=0)
    paused_for = status.state.paused_seconds
    assert paused_for >= (31 * DAY).total_seconds()
    moved = timedelta(seconds=paused_for)
    # The deadline and momentum move by the whole pause; the training's reminder,
    # set while paused, starts counting at the resume.
    assert agenda_at(status, DueKind.DEADLINE) == deadline + moved
    assert agenda_at(status, DueKind.MOMENTUM) == momentum + moved
    remind = agenda_at(status, DueKind.REMIND_CSM)
    resume_time = paused_at + moved
    assert remind == resume_time + playbook.timers.training.remind_csm_after
    assert abs((resume_time - resumed_at).total_seconds()) < 2

    # The tasks opened while paused are announced now, once each.
    await h.wait_for(handle, lambda s: s.pending_side_effects == 0)
    announced = [key for key in ledger_keys(h) if key not in sent_before]
    task_ids = [t.task_id for t in status.state.open_tasks]
    assert announced == sorted(f"task:{task_id}" for task_id in task_ids)

    # The pause and every event of it are on the timeline, in order.
    kinds = [e.kind for e in h.timeline(handoff.customer_id)]
    paused_part = kinds[kinds.index("paused") : kinds.index("resumed") + 1]
    events = [k for k in paused_part if k in ("kickoff_held", "goal_agreed", "meeting_requested")]
    assert events == ["kickoff_held", "goal_agreed", "meeting_requested"]
    assert not projection(h, handoff.customer_id).paused

    # After the resume the clocks run again: the reminder comes when due, not before.
    await h.env.sleep(remind - await h.env.get_current_time() - DAY)
    status = await h.status(handle)
    assert TaskKind.OVERDUE_REMINDER not in open_kinds(status)
    await h.env.sleep(2 * DAY)
    status = await h.wait_for(handle, lambda s: TaskKind.OVERDUE_REMINDER in open_kinds(s))

    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("pause_and_resume", (await handle.fetch_history()).to_json())


async def test_a_resume_moves_each_task_with_its_reminder(h: Harness) -> None:
    """The README: a stage's scheduling task is due when its reminder fires, and a task
    is reminded of once past its due date. The resume moved the reminders on by the
    pause and left the tasks' dates where they were."""
    handoff = make_handoff()
    handle = await h.start(handoff)
    await h.record(handle, MeetingRequested(meeting=MeetingKind.CUSTOMER_REQUEST, notes="soon"))
    await pause(h, handle, Paused(reason="customer is reorganising"))
    await h.env.sleep(3 * DAY)
    await h.record(handle, Resumed())
    status = await h.wait_for(handle, lambda s: s.state.pause is None)

    def due_dates(task_id: str) -> tuple[datetime | None, datetime | None]:
        task = next(t for t in status.state.open_tasks if t.task_id == task_id)
        with h.database.session() as session:
            row = session.get(Task, task_id)
        assert row is not None
        return task.due_at, row.due_at

    kickoff, meeting = (
        next(t.task_id for t in status.state.open_tasks if t.kind is kind)
        for kind in (TaskKind.SCHEDULE_KICKOFF, TaskKind.MEETING)
    )
    reminder = agenda_at(status, DueKind.REMIND_CSM)
    overdue = next(d.at for d in status.state.agenda if d.ref == meeting)
    assert due_dates(kickoff) == (reminder, reminder)
    assert due_dates(meeting) == (overdue, overdue)
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("resume_moves_tasks", (await handle.fetch_history()).to_json())


async def test_weeks_paused_in_adoption_are_measured_and_counted_but_not_judged(
    h: Harness,
) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    await through_training(h, handle)
    await pause(h, handle, Paused(reason="customer on holiday"))
    sent_before = ledger_keys(h)

    # Three low weeks: unpaused, two would start a stall and its proposal email,
    # and three without key actions would flag nothing else; all are measured.
    for _ in range(3):
        await h.usage(handoff, active_users=1, actions_per_user=1)
        status = await h.next_week(handle)
    assert status.state.week_index == 3
    assert not status.state.stall.stalled and status.state.recent_weeks == []
    assert status.state.stage is Stage.ADOPTION
    assert ledger_keys(h) == sent_before
    with h.database.session() as session:
        weeks = session.exec(
            select(WeeklyMeasurementRecord).where(
                WeeklyMeasurementRecord.customer_id == handoff.customer_id
            )
        ).all()
    assert [w.active_users for w in weeks] == [1, 1, 1]
    measured = [e for e in h.timeline(handoff.customer_id) if e.kind == "paused_measurement"]
    assert [e.details["week_index"] for e in measured] == [1, 2, 3]

    await h.record(handle, Resumed())
    # The measurement kept its weekly cadence; the first week after resume is judged.
    await h.usage(handoff, active_users=1, actions_per_user=1)
    status = await h.next_week(handle)
    assert len(status.state.recent_weeks) == 1
    assert not status.state.stall.stalled  # one low week judged is not yet a stall
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("pause_in_adoption", (await handle.fetch_history()).to_json())


async def test_a_pause_with_a_date_resumes_by_itself_at_the_start_of_the_customers_day(
    h: Harness,
) -> None:
    handoff = make_handoff(time_zone="Asia/Tokyo")
    handle = await h.start(handoff)
    resume_on = await h.today() + timedelta(days=10)
    await pause(h, handle, Paused(reason="fiscal year end", resume_on=resume_on))
    status = await h.status(handle)
    expected = datetime(
        resume_on.year, resume_on.month, resume_on.day, tzinfo=ZoneInfo("Asia/Tokyo")
    )
    assert status.state.agenda == [Due(kind=DueKind.RESUME, at=expected)]
    assert status.next_due is not None and status.next_due.kind is DueKind.RESUME

    await h.env.sleep(expected - await h.env.get_current_time() + timedelta(minutes=1))
    status = await h.wait_for(handle, lambda s: s.state.pause is None)
    assert {due.kind for due in status.state.agenda} >= {DueKind.REMIND_CSM, DueKind.DEADLINE}
    resumed = [e for e in h.timeline(handoff.customer_id) if e.kind == "resumed"]
    assert len(resumed) == 1 and resumed[0].summary.startswith("resumed as scheduled after")
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_pause_and_resume_are_refused_when_they_cannot_apply(h: Harness) -> None:
    handle = await h.start(make_handoff())
    today = await h.today()

    async def refused(event: Paused | Resumed, reason: str) -> None:
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await h.record(handle, event)
        assert reason in str(failure.value.cause)

    await refused(Resumed(), "the customer is not paused")
    await refused(
        Paused(reason="x", resume_on=today), f"the resume date {today} is not after today"
    )
    far = today + timedelta(days=400)
    await refused(Paused(reason="x", resume_on=far), "more than 366 days ahead")
    await pause(h, handle, Paused(reason="budget review"))
    await refused(Paused(reason="again"), "the customer is already paused since")
    # Cancelling a paused customer ends it; it is then neither paused nor resumable.
    await h.record(handle, Cancelled(reason="contract ended"))
    result: OnboardingResult = await handle.result()
    status = await h.status(handle)
    assert result.stage is status.state.stage is Stage.CANCELLED and status.state.pause is None
    assert not projection(h, result.customer_id).paused


async def test_step_emails_held_by_a_pause_go_out_after_it_spread_as_they_were_planned(
    h: Harness,
) -> None:
    handoff = make_handoff(purposes=["A"], time_zone="Asia/Tokyo")
    handle = await h.start(handoff, make_playbook(campaign=True))
    await through_training(h, handle)
    await h.wait_for(handle, lambda s: "A" in s.state.campaign_planned)
    paused_at = await pause(h, handle, Paused(reason="waiting for the customer's IT"))
    status = await h.status(handle)
    assert status.state.pause is not None
    held = {
        held.due.ref: held.due.at
        for held in status.state.pause.held
        if held.due.kind is DueKind.CAMPAIGN_STEP
    }
    assert {"A:welcome", "A:setup", "A:nudge"} <= held.keys()
    sent_before = ledger_keys(h)

    await h.env.sleep(20 * DAY)
    assert ledger_keys(h) == sent_before
    await h.record(handle, Resumed())
    status = await h.wait_for(handle, lambda s: s.state.pause is None)
    resumed_at = paused_at + timedelta(seconds=status.state.paused_seconds)
    replanned = {d.ref: d.at for d in status.state.agenda if d.kind is DueKind.CAMPAIGN_STEP}
    assert replanned.keys() == held.keys()
    tokyo = ZoneInfo("Asia/Tokyo")
    for ref, at in held.items():
        # About as far after the resume as it was after the pause began, on a business
        # day inside the customer's send window.
        assert resumed_at <= replanned[ref] <= resumed_at + (at - paused_at) + 5 * DAY, ref
        local = replanned[ref].astimezone(tokyo)
        assert local.weekday() < 5 and 9 <= local.hour < 18, (ref, local)
    # Spread as planned, not all due at once: steps apart before are apart after.
    for a in held:
        for b in held:
            assert (held[a] < held[b]) == (replanned[a] < replanned[b]), (a, b)

    await h.env.sleep(max(replanned.values()) - await h.env.get_current_time() + DAY)
    await h.wait_for(handle, lambda s: held.keys() <= set(s.state.campaign_done))
    sent = {
        e.details["ref"]: e.at
        for e in h.timeline(handoff.customer_id)
        if e.kind in ("campaign_step_sent", "campaign_step_skipped")
    }
    assert all(sent[ref] >= replanned[ref] - timedelta(seconds=1) for ref in held)
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("pause_holds_step_emails", (await handle.fetch_history()).to_json())


async def test_a_lead_pauses_and_resumes_every_ongoing_customer_of_a_playbook_version(
    h: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    version = f"v-{uuid.uuid4().hex[:8]}"
    on_version = make_playbook(version=version)
    cohort = [await h.start(make_handoff(), on_version) for _ in range(2)]
    other = await h.start(make_handoff(), make_playbook(version=f"{version}-next"))
    ended = await h.start(make_handoff(), on_version)
    await h.record(ended, Cancelled(reason="churned"))
    # Awaited without time skipping: a result awaited with it moves the clock for the
    # cohort too, and the test server was seen to lose a workflow task whose timer
    # fired then, hanging the next update for good.
    with h.env.auto_time_skipping_disabled():
        await ended.result()

    @contextlib.contextmanager
    def the_database(settings: Settings) -> Iterator[Database]:
        yield h.database

    async def the_client(settings: Settings) -> OnboardingClient:
        return h.onboarding

    monkeypatch.setattr(connections, "database", the_database)
    monkeypatch.setattr(connections, "onboarding_client", the_client)

    async def run(*argv: str) -> tuple[int, str]:
        for handle in [*cohort, other]:
            await h.wait_for(handle, lambda s: True)  # its projection row is written
        code = await cmd_pause_or_resume(build_parser().parse_args(argv), Settings())
        for handle in [*cohort, other]:
            await h.wait_for(handle, lambda s: True)
        return code, capsys.readouterr().out

    code, out = await run("pause", "--playbook-version", version, "--reason", "playbook freeze")
    assert code == 0, out
    assert out.splitlines()[-1] == f"2 paused, 0 refused (playbook version {version})"
    for handle in cohort:
        status = await h.status(handle)
        assert status.state.pause is not None and status.state.pause.reason == "playbook freeze"
        assert projection(h, status.customer_id).paused
    assert (await h.status(other)).state.pause is None

    # Sent to each in turn: a customer that refuses is reported, the others still go.
    ids = [(await h.status(handle)).customer_id for handle in cohort]
    answers = await h.onboarding.record_each([ids[0], "nobody", ids[1]], Resumed())
    assert [a.result is not None for a in answers] == [True, False, True]
    assert answers[1].refused is not None and "unknown customer 'nobody'" in answers[1].refused
    code, out = await run("resume", "--playbook-version", version)
    assert code == 0
    assert out.splitlines()[-1] == f"0 resumed, 0 refused (playbook version {version})"

    await h.record(cohort[0], Paused(reason="by hand"))
    code, out = await run("resume", "--playbook-version", version)
    assert code == 0 and f"{ids[0]}: resumed recorded" in out
    for handle in [*cohort, other]:
        await h.record(handle, Cancelled(reason="test over"))
        # Awaited: a run still writing when the worker stops holds the shared clock.
        with h.env.auto_time_skipping_disabled():
            await handle.result()


def test_a_resume_date_may_be_up_to_the_pause_bound_ahead_and_no_further() -> None:
    today = date(2026, 12, 4)

    def refusal(event: Paused | Resumed, state: OnboardingState) -> str | None:
        return events.refusal(
            event,
            stage=Stage.ADOPTION,
            state=state,
            handoff=make_handoff(),
            playbook=make_playbook(),
            today=today,
        )

    active = OnboardingState(stage=Stage.ADOPTION)
    last_day = today + timedelta(days=limits.PAUSE_DAYS)
    assert refusal(Paused(reason="x", resume_on=last_day), active) is None
    assert refusal(Paused(reason="x", resume_on=today + DAY), active) is None
    too_far = refusal(Paused(reason="x", resume_on=last_day + DAY), active)
    assert too_far is not None and f"more than {limits.PAUSE_DAYS} days ahead" in too_far
    assert refusal(Resumed(), active) == "the customer is not paused"
    paused = OnboardingState(
        stage=Stage.ADOPTION,
        pause=PauseState(since=datetime(2026, 12, 1, tzinfo=UTC), reason="budget"),
    )
    assert refusal(Paused(reason="x"), paused) == (
        "the customer is already paused since 2026-12-01 (budget)"
    )
    assert refusal(Resumed(), paused) is None
