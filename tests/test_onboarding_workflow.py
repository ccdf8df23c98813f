"""The onboarding lifecycle on the time-skipping server, with the real activities.

Each test drives one customer the way a CSM and the product's usage would, then
checks what the CSM, the CS leader and the customer's people would see: the
stage, the tasks, the emails in the outbox and the timeline in the database.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.common import TypedSearchAttributes
from temporalio.worker import Replayer
from temporalio.worker._workflow_instance import _WorkflowInstanceImpl

from client.connection import data_converter
from client.errors import OnboardingClosedError
from client.onboarding import SUBMIT_EVENT
from emails.mailers import MAIL_UNAVAILABLE, OutboxMailer, ProviderAnswered
from emails.render import OutgoingEmail
from models import visibility
from models.events import (
    Cancelled,
    CompletionReviewHeld,
    GoalAgreed,
    KickoffHeld,
    MeetingKind,
    OnboardingEvent,
    PurposeAdded,
    TaskCompleted,
    TrainingHeld,
    TrainingSkipped,
)
from models.handoff import CustomerHandoff
from models.onboarding import DueKind, OnboardingResult, Stage, TaskKind
from models.tables import CustomerProjection, Task
from records.playbooks import load_playbook
from settings import Settings
from testkit.factories import REPO, add_usage, make_handoff, make_playbook
from tests.support.eventually import eventually
from tests.support.workflow_harness import (
    WEEK,
    Harness,
    activities_scheduled,
    body_text,
    local_activities_run,
    open_kinds,
    received,
    replay_database_url,
    save_history,
    through_training,
)
from workflows.effects import MAIL_BESIDE_THE_LOOP
from workflows.onboarding import CustomerOnboardingWorkflow
from workflows.patches import BASELINE


async def test_happy_path_onboards_after_two_good_weeks_and_the_review(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    status = await h.status(handle)
    assert open_kinds(status) == [TaskKind.SCHEDULE_KICKOFF]

    await through_training(h, handle)
    status = await h.status(handle)
    assert status.state.stage is Stage.ADOPTION
    assert [g.text for g in status.state.goals] == ["Scan every invoice"]

    await h.usage(handoff, active_users=7, quota_units=40)
    status = await h.next_week(handle)
    week = status.state.recent_weeks[-1]
    assert week.measurement.active_seat_ratio == 0.7
    assert week.measurement.key_actions["A"] == 21
    assert not week.criteria_met  # the active ratio must hold for 2 weeks running
    assert status.state.stage is Stage.ADOPTION

    await h.usage(handoff, active_users=8)
    status = await h.next_week(handle)
    assert status.state.stage is Stage.COMPLETION_REVIEW
    assert all(c.met for c in status.state.recent_weeks[-1].criteria)
    assert open_kinds(status) == [TaskKind.SCHEDULE_COMPLETION_REVIEW]

    await h.record(
        handle,
        CompletionReviewHeld(
            held_on=await h.today(),
            success_confirmed=True,
            feedback="Invoices are all scanned now",
            feature_requests=["Bulk export"],
            nps=[{"email": "boss@acme.example", "score": 9}],  # type: ignore[list-item]
        ),
    )
    result: OnboardingResult = await handle.result()
    assert result.stage is Stage.ONBOARDED
    assert result.customer_id == handoff.customer_id and result.runs == 1
    # The whole status of an ended customer is still a query away.
    status = await h.status(handle)
    assert status.state.stage is Stage.ONBOARDED and status.state.stage_since == result.ended_at
    assert status.state.review is not None and status.state.review.success_confirmed
    assert status.state.open_tasks == []

    stages = [e.details["to"] for e in h.timeline(handoff.customer_id) if e.kind == "transition"]
    assert stages == [
        "handoff",
        "kickoff",
        "training",
        "adoption",
        "completion_review",
        "onboarded",
    ]
    # The CSM was told about each scheduling task by email.
    assert {str(m["To"]) for m in h.emails()} == {"csm@liftoff.example"}
    history = await handle.fetch_history()
    # The database work (timeline, tasks, measurements) runs inside the workflow's own
    # tasks as local activities; only emails go through the server's activity queue.
    assert set(activities_scheduled(history)) == {"send_email"}
    local = local_activities_run(history)
    assert local["measure_weekly_usage"] == 2
    assert local["store_batch"] > 0
    save_history("happy_path", history.to_json())
    save_history("happy_path_store_writes_batched", history.to_json())
    save_history("happy_path_database_work_local", history.to_json())


async def test_a_review_that_does_not_confirm_success_returns_to_adoption_with_a_meeting(
    h: Harness,
) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    await through_training(h, handle)
    await h.usage(handoff, active_users=7, quota_units=40)
    await h.next_week(handle)
    await h.usage(handoff, active_users=8)
    status = await h.next_week(handle)
    assert status.state.stage is Stage.COMPLETION_REVIEW

    await h.record(
        handle,
        CompletionReviewHeld(
            held_on=await h.today(), success_confirmed=False, feedback="Logins, no results"
        ),
    )
    status = await h.status(handle)
    # Usage is not success: not onboarded, back to adoption with a follow-up meeting.
    assert status.state.stage is Stage.ADOPTION
    assert status.state.review is not None and not status.state.review.success_confirmed
    assert status.state.transitions[-1].cause.endswith("not confirmed: back to adoption")
    meetings = [t for t in status.state.open_tasks if t.kind is TaskKind.MEETING]
    assert [t.ref for t in meetings] == [MeetingKind.POOR_PROGRESS.value]
    assert any(d.kind is DueKind.MEASURE for d in status.state.agenda)
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_trial_customer_skips_training(h: Harness) -> None:
    handle = await h.start(make_handoff(trial_used=True))
    await h.record(handle, KickoffHeld(held_on=await h.today(), goals=["Go live"]))
    status = await h.status(handle)
    assert status.state.stage is Stage.ADOPTION
    assert status.state.training_skipped_reason == "the customer used a trial"
    causes = [t.cause for t in status.state.transitions]
    assert "training skipped: the customer used a trial" in causes
    # Skipped as it began: the CSM is never asked to schedule it, by task or by email.
    opened = [row.summary for row in h.timeline(status.customer_id) if row.kind == "task_opened"]
    assert not any("Schedule the product training" in summary for summary in opened), opened
    assert not any("product training" in str(m["Subject"]) for m in h.emails())
    rejected = h.record(handle, TrainingHeld(held_on=await h.today()))
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await rejected
    assert "training stage is over (skipped: the customer used a trial)" in str(failure.value.cause)
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_stall_climbs_each_ladder_step_once_and_recovery_clears_it(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    await through_training(h, handle)

    # Week 1 low, week 2 low: the stall rules need two weeks running.
    await h.usage(handoff, active_users=1, actions_per_user=1)
    status = await h.next_week(handle)
    assert not status.state.stall.stalled
    await h.usage(handoff, active_users=1, actions_per_user=1)
    status = await h.next_week(handle)
    assert status.state.stall.stalled and status.state.stall.episode == 1
    assert TaskKind.MEETING in open_kinds(status)  # a stall opens an on-demand meeting
    assert TaskKind.STALL_FOLLOW_UP not in open_kinds(status)
    proposals = h.emails("")
    assert [str(m["To"]) for m in proposals if "admin@" in str(m["To"])] == ["admin@acme.example"]

    await h.usage(handoff, active_users=1, actions_per_user=1)
    status = await h.next_week(handle)
    assert TaskKind.STALL_FOLLOW_UP in open_kinds(status)
    assert TaskKind.STALL_ESCALATION not in open_kinds(status)

    await h.usage(handoff, active_users=1, actions_per_user=1)
    status = await h.next_week(handle)
    assert TaskKind.STALL_ESCALATION in open_kinds(status)
    leader_tasks = [t for t in status.state.open_tasks if t.assignee == "lead@liftoff.example"]
    assert len(leader_tasks) == 1

    # A fifth stalled week fires nothing new: each step once per episode.
    await h.usage(handoff, active_users=1, actions_per_user=1)
    status = await h.next_week(handle)
    assert open_kinds(status).count(TaskKind.STALL_FOLLOW_UP) == 1
    assert open_kinds(status).count(TaskKind.STALL_ESCALATION) == 1
    assert len([m for m in h.emails() if str(m["To"]) == "admin@acme.example"]) == 1

    # Recovery clears the stall and closes its tasks.
    await h.usage(handoff, active_users=6, actions_per_user=4)
    status = await h.next_week(handle)
    assert not status.state.stall.stalled
    assert TaskKind.STALL_FOLLOW_UP not in open_kinds(status)
    assert TaskKind.STALL_ESCALATION not in open_kinds(status)
    kinds = [e.kind for e in h.timeline(handoff.customer_id)]
    assert kinds.count("stall_started") == 1 and kinds.count("stall_cleared") == 1

    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("stall_and_recovery", (await handle.fetch_history()).to_json())


async def test_data_never_arriving_flags_stuck_in_setup_then_escalates(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    await through_training(h, handle)

    status = await h.next_week(handle)
    assert not status.state.setup.stuck  # one week without data is not yet stuck
    assert not status.state.stall.stalled  # and a customer without data is not "stalled"
    status = await h.next_week(handle)
    assert status.state.setup.stuck
    assert TaskKind.SETUP_STUCK in open_kinds(status)
    status = await h.next_week(handle)
    assert TaskKind.SETUP_STUCK_ESCALATION not in open_kinds(status)
    status = await h.next_week(handle)
    assert TaskKind.SETUP_STUCK_ESCALATION in open_kinds(status)

    # Data arrives: setup is done, its tasks close.
    await h.usage(handoff, active_users=5)
    status = await h.next_week(handle)
    assert not status.state.setup.stuck and status.state.setup.data_arrived
    assert TaskKind.SETUP_STUCK not in open_kinds(status)
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("setup_stuck", (await handle.fetch_history()).to_json())


async def test_long_onboarding_gets_a_momentum_meeting_then_fails_at_the_deadline(
    h: Harness,
) -> None:
    handoff = make_handoff()
    playbook = make_playbook(momentum_after=timedelta(days=20), deadline=timedelta(days=40))
    handle = await h.start(handoff, playbook)
    await through_training(h, handle)

    await h.env.sleep(timedelta(days=21))
    status = await h.wait_for(
        handle, lambda s: any(t.ref == MeetingKind.MOMENTUM.value for t in s.state.open_tasks)
    )
    assert status.state.momentum_requested
    assert status.state.setup.stuck  # no usage data ever arrived

    await h.env.sleep(timedelta(days=20))
    result: OnboardingResult = await handle.result()
    assert result.stage is Stage.FAILED
    status = await h.status(handle)
    # An ended customer is no longer listed as stuck in setup.
    assert not status.state.setup.stuck
    described = await handle.describe()
    assert described.typed_search_attributes.get(visibility.SETUP_STUCK) is False
    assert status.state.transitions[-1].cause == (
        "deadline passed without meeting the completion criteria"
    )
    leader_mail = [m for m in h.emails() if "lead@liftoff.example" in str(m["To"])]
    assert any("Deadline of 40 days passed" in body_text(m) for m in leader_mail)
    assert TaskKind.DEADLINE_MISSED in open_kinds(status)
    save_history("momentum_then_failed", (await handle.fetch_history()).to_json())


async def test_kickoff_not_held_reminds_the_csm_then_escalates_to_the_leader(h: Harness) -> None:
    handle = await h.start(make_handoff())
    await h.env.sleep(timedelta(days=8))
    status = await h.wait_for(handle, lambda s: TaskKind.OVERDUE_REMINDER in open_kinds(s))
    assert [t.assignee for t in status.state.open_tasks if t.kind is TaskKind.OVERDUE_REMINDER] == [
        "csm@liftoff.example"
    ]
    await h.env.sleep(timedelta(days=7))
    status = await h.wait_for(handle, lambda s: TaskKind.OVERDUE_ESCALATION in open_kinds(s))
    # Holding the kickoff closes the kickoff's overdue tasks.
    await h.record(handle, KickoffHeld(held_on=await h.today()))
    status = await h.status(handle)
    assert TaskKind.OVERDUE_REMINDER not in open_kinds(status)
    assert TaskKind.OVERDUE_ESCALATION not in open_kinds(status)
    assert open_kinds(status) == [TaskKind.SCHEDULE_TRAINING]
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_cancellation_ends_the_onboarding_and_closes_its_tasks(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    await h.record(handle, Cancelled(reason="contract ended"))
    result: OnboardingResult = await handle.result()
    assert result.stage is Stage.CANCELLED
    assert (await h.status(handle)).state.open_tasks == []
    # A closed workflow takes no command, and the CSM is told it ended and how.
    with pytest.raises(OnboardingClosedError, match=r"has already ended \(cancelled\)"):
        await h.onboarding.record(handoff.customer_id, GoalAgreed(goal="too late"))


async def test_purpose_added_later_counts_its_key_action(h: Harness) -> None:
    handoff = make_handoff(purposes=[])
    handle = await h.start(handoff)
    await through_training(h, handle)
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await h.record(handle, PurposeAdded(purpose="Z"))
    assert "unknown purpose 'Z': the playbook offers A, B, C, D, E, F" in str(failure.value.cause)

    await h.record(handle, PurposeAdded(purpose="B"))
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await h.record(handle, PurposeAdded(purpose="B"))
    assert "already holds purpose B" in str(failure.value.cause)

    await h.usage(handoff, active_users=5, key_action="expense_approved")
    status = await h.next_week(handle)
    assert status.state.purposes == ["B"]
    assert status.state.recent_weeks[-1].measurement.key_actions["B"] == 15
    key_criterion = next(
        c for c in status.state.recent_weeks[-1].criteria if c.metric == "key_actions"
    )
    assert key_criterion.observed == 15
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_out_of_order_and_invalid_commands_are_rejected_with_the_reason(h: Harness) -> None:
    handle = await h.start(make_handoff())
    today = await h.today()
    cases: list[tuple[OnboardingEvent, str]] = [
        (
            CompletionReviewHeld(held_on=today, success_confirmed=True),
            "the completion review comes once the completion criteria are met; "
            "the customer is in kickoff",
        ),
        (TrainingHeld(held_on=today), "the training comes after the kickoff"),
        (GoalAgreed(goal="x"), "goals are agreed at the kickoff: record the kickoff first"),
        (KickoffHeld(held_on=today + timedelta(days=30)), "is in the future"),
        (TaskCompleted(task_id="nope"), "no open task 'nope'"),
    ]
    for event, reason in cases:
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await h.record(handle, event)
        assert reason in str(failure.value.cause), event.kind
    status = await h.status(handle)
    assert status.state.stage is Stage.KICKOFF  # nothing changed

    await h.record(handle, KickoffHeld(held_on=today))
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await h.record(handle, KickoffHeld(held_on=today))
    assert f"the kickoff was already recorded on {today}" in str(failure.value.cause)

    # The same invalid event as a signal is recorded as rejected, not a task failure.
    await handle.signal(
        SUBMIT_EVENT,
        CompletionReviewHeld(held_on=today, success_confirmed=True),
    )
    status = await h.wait_for(handle, lambda s: bool(s.state.rejected))
    assert status.state.rejected[-1].kind == "completion_review_held"
    # A valid signal applies; redelivery with the same event id applies once.
    for _ in range(2):
        await handle.signal(
            SUBMIT_EVENT,
            TrainingSkipped(reason="already trained by the partner", event_id="crm-42"),
        )
    status = await h.wait_for(handle, lambda s: s.state.stage is Stage.ADOPTION)
    assert status.state.training_skipped_reason == "already trained by the partner"
    duplicate = await h.record(handle, TrainingSkipped(reason="again", event_id="crm-42"))
    assert duplicate.duplicate
    description = await handle.describe()
    assert description.status is WorkflowExecutionStatus.RUNNING
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("rejections", (await handle.fetch_history()).to_json())


async def test_a_training_dated_before_the_kickoff_is_refused_as_update_and_as_signal(
    h: Harness,
) -> None:
    handle = await h.start(make_handoff())
    today = await h.today()
    await h.record(handle, KickoffHeld(held_on=today))
    earlier = today - timedelta(days=6)
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await h.record(handle, TrainingHeld(held_on=earlier))
    said = f"the training date {earlier} is before the kickoff (held on {today})"
    assert said in str(failure.value.cause)

    await handle.signal(SUBMIT_EVENT, TrainingHeld(held_on=earlier))
    status = await h.wait_for(handle, lambda s: bool(s.state.rejected))
    assert status.state.rejected[-1].reason == said
    assert status.state.stage is Stage.TRAINING

    await h.record(handle, TrainingHeld(held_on=today))
    status = await h.wait_for(handle, lambda s: s.state.stage is Stage.ADOPTION)
    assert status.state.training_held_on == today
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_a_fired_timer_is_acted_on_when_the_clock_handed_over_lags_behind(
    h: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A worker taking over from a killed one was handed an activation without its
    time (temporalio 1.35; seen twice in a stress audit): the clock stayed at the task
    before, nothing looked due, and the workflow started the same timer again, which
    its replay never does, so the customer froze on the next replay."""
    handle = await h.start(make_handoff())
    await through_training(h, handle)
    dropped: list[int] = []
    activate = _WorkflowInstanceImpl.activate

    def without_time(self: Any, act: WorkflowActivation) -> Any:
        if not dropped and any(job.HasField("fire_timer") for job in act.jobs):
            dropped.append(act.jobs[0].fire_timer.seq)
            act.ClearField("timestamp")
        return activate(self, act)

    monkeypatch.setattr(_WorkflowInstanceImpl, "activate", without_time)
    status = await h.next_week(handle)

    assert dropped, "no timer fired"
    assert status.state.week_index >= 1
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    converter = data_converter(Settings(database_url=replay_database_url(tmp_path)))
    replayer = Replayer(workflows=[CustomerOnboardingWorkflow], data_converter=converter)
    replayed = await replayer.replay_workflow(
        await handle.fetch_history(), raise_on_replay_failure=False
    )
    assert replayed.replay_failure is None, replayed.replay_failure


async def test_a_workflow_task_that_died_after_its_writes_leaves_none_of_them(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local activity writes inside its workflow task. In a crash audit, a task died
    (its worker killed) after writing its overdue reminder; its retry began with the
    CSM's kickoff, gave the reminder's timeline seq to other content and opened no
    reminder. The dead attempt's rows stayed: a task no one would close, a timeline
    without the kickoff."""
    handoff = make_handoff()
    handle = await h.start(handoff)
    status = await h.status(handle)
    remind_at = min(d.at for d in status.state.agenda if d.kind is DueKind.REMIND_CSM)

    def reminders() -> list[Task]:
        with h.database.session() as session:
            return list(
                session.exec(
                    select(Task)
                    .where(Task.customer_id == handoff.customer_id)
                    .where(Task.kind == TaskKind.OVERDUE_REMINDER.value)
                )
            )

    trapped = threading.Event()
    signalled = threading.Event()
    dead_seqs: list[int] = []
    activate = _WorkflowInstanceImpl.activate

    def dies_after_writing_the_reminder(self: Any, act: WorkflowActivation) -> Any:
        written = any(
            job.HasField("resolve_activity") and job.resolve_activity.is_local for job in act.jobs
        )
        if written and not trapped.is_set() and reminders():
            dead_seqs.extend(row.seq for row in h.timeline(handoff.customer_id))
            trapped.set()
            # Held (within the SDK's deadlock timeout) while the CSM's signal arrives.
            signalled.wait(1.5)
            raise RuntimeError("the worker was killed")
        return activate(self, act)

    monkeypatch.setattr(_WorkflowInstanceImpl, "activate", dies_after_writing_the_reminder)
    now = await h.env.get_current_time()
    sleeping = asyncio.create_task(h.env.sleep(remind_at - now + timedelta(minutes=1)))
    assert await asyncio.to_thread(trapped.wait, 30), "the reminder was never written"
    await handle.signal(SUBMIT_EVENT, KickoffHeld(held_on=await h.today()))
    signalled.set()
    await sleeping
    status = await h.wait_for(handle, lambda s: s.state.stage is Stage.TRAINING)

    rows = h.timeline(handoff.customer_id)
    kinds = [row.kind for row in rows]
    assert kinds.count("kickoff_held") == 1, kinds
    kickoff = next(row for row in rows if row.kind == "kickoff_held")
    # The retry numbered its entries from where the dead attempt had: the case above.
    assert kickoff.seq <= max(dead_seqs)
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    opened = {row.details["task_id"] for row in rows if row.kind == "task_opened"}
    with h.database.session() as session:
        tasks = {
            task.task_id: task
            for task in session.exec(select(Task).where(Task.customer_id == handoff.customer_id))
        }
        projection = session.get(CustomerProjection, handoff.customer_id)
    assert set(tasks) == opened
    open_in_workflow = {task.task_id: task.kind for task in status.state.open_tasks}
    assert {
        task_id: TaskKind(task.kind) for task_id, task in tasks.items() if task.state == "open"
    } == open_in_workflow
    assert projection is not None
    assert projection.stage == Stage.TRAINING.value
    assert projection.last_seq == rows[-1].seq
    assert projection.open_tasks == len(open_in_workflow)
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_a_mail_outage_holds_up_none_of_the_customers_other_work(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider's outage retries each send for about ten minutes. The workflow used to
    wait for its sends before anything else: the CSM's kickoff was answered, but its
    timeline entry, the next stage and its emails waited behind the failing ones."""
    outage = threading.Event()
    outage.set()
    tried: list[str] = []
    send = OutboxMailer.send

    def unavailable(self: OutboxMailer, email: OutgoingEmail) -> str:
        if outage.is_set():
            tried.append(email.message_id)
            raise ProviderAnswered(
                "outbox unavailable, will retry", type=MAIL_UNAVAILABLE, non_retryable=False
            )
        return send(self, email)

    monkeypatch.setattr(OutboxMailer, "send", unavailable)
    handoff = make_handoff()
    handle = await h.start(handoff, settle=False)
    await eventually(lambda: tried, what="a first send to fail")
    await h.record(handle, KickoffHeld(held_on=await h.today()))

    rows = await eventually(
        lambda: h.timeline(handoff.customer_id),
        lambda rows: {"kickoff_held", "transition"} <= {row.kind for row in rows},
        what="the kickoff on the timeline while the emails still fail",
        timeout=10,
    )
    assert rows[-1].stage == Stage.TRAINING.value
    status = await h.status(handle)
    assert status.state.stage is Stage.TRAINING
    assert status.pending_side_effects > 0, "the sends are still being retried"
    assert not h.emails()

    outage.clear()
    await h.env.sleep(timedelta(minutes=5))
    await h.wait_for(handle, lambda s: s.state.stage is Stage.TRAINING)
    kinds = [row.kind for row in h.timeline(handoff.customer_id)]
    assert "email_failed" not in kinds
    sent = received(h)
    assert sent and all(count == 1 for keys in sent.values() for count in keys.values())
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("mail_outage_beside_the_loop", (await handle.fetch_history()).to_json())


async def test_a_repeated_start_reports_the_running_onboarding_and_a_closed_one_is_refused(
    h: Harness,
) -> None:
    handoff = make_handoff()
    first = await h.onboarding.start(handoff, make_playbook())
    handle = h.client.get_workflow_handle(first.workflow_id)
    h.started.append(handle)
    assert first.workflow_id == visibility.workflow_id_for(handoff.customer_id)
    assert not first.already_running

    # A retried start (the CLI or the API called twice) is the same journey, not a second.
    again = await h.onboarding.start(handoff, make_playbook())
    assert again == first.model_copy(update={"already_running": True})

    await h.wait_for(handle, lambda s: s.state.stage is Stage.KICKOFF)
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    # A customer's journey happens once: its id is never reused after it ended.
    with pytest.raises(OnboardingClosedError, match=r"has already ended \(cancelled\)"):
        await h.onboarding.start(handoff, make_playbook())


def assert_indexed(
    indexed: TypedSearchAttributes, handoff: CustomerHandoff, stage: str, *, stalled: bool
) -> None:
    assert indexed.get(visibility.CUSTOMER_ID) == handoff.customer_id
    assert indexed.get(visibility.CSM) == handoff.csm
    assert indexed.get(visibility.STAGE) == stage
    assert indexed.get(visibility.STALLED) is stalled
    assert indexed.get(visibility.SETUP_STUCK) is False


def upserted_values(history: WorkflowHistory) -> list[dict[str, Any]]:
    """Liftoff's own search attribute upserts in a history, each as name: value."""
    upserts = []
    for event in history.events:
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            values = {
                name: json.loads(payload.data)
                for name, payload in fields.indexed_fields.items()
                if name.startswith("Liftoff")
            }
            if values:
                upserts.append(values)
    return upserts


async def test_search_attributes_are_upserted_when_they_change_and_only_what_changed(
    h: Harness,
) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    await through_training(h, handle)
    await h.wait_for(handle, lambda s: s.state.stage is Stage.ADOPTION)

    assert_indexed(
        (await handle.describe()).typed_search_attributes, handoff, "adoption", stalled=False
    )
    assert upserted_values(await handle.fetch_history()) == [
        {
            "LiftoffCustomerId": handoff.customer_id,
            "LiftoffCsm": handoff.csm,
            "LiftoffStage": "handoff",
            "LiftoffStalled": False,
            "LiftoffSetupStuck": False,
        },
        {"LiftoffStage": "kickoff"},
        {"LiftoffStage": "training"},
        {"LiftoffStage": "adoption"},
    ]
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("index_changes_only", (await handle.fetch_history()).to_json())


def patch_markers_and_change_versions(history: WorkflowHistory) -> tuple[list[str], list[Any]]:
    """The changes a history recorded (`workflow.patched` markers) and the SDK's
    `TemporalChangeVersion` upserts that came with them."""
    markers, versions = [], []
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_patch":
                data = marker.details["patch-data"].payloads[0].data
                markers.append(json.loads(data)["id"])
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            if "TemporalChangeVersion" in fields.indexed_fields:
                versions.append(json.loads(fields.indexed_fields["TemporalChangeVersion"].data))
    return markers, versions


async def test_a_new_history_takes_every_change_on_one_marker(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    await through_training(h, handle)
    status = await h.next_week(handle)  # a weekly measurement: measurement-grace
    assert status.state.stage is Stage.ADOPTION
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    history = await handle.fetch_history()
    # Before the baseline, this journey recorded six markers and six ever longer
    # TemporalChangeVersion upserts; histories from then replay (tests/test_replay.py).
    # A change made since is one more of each, until a later baseline takes it in.
    since = [BASELINE, MAIL_BESIDE_THE_LOOP]
    assert patch_markers_and_change_versions(history) == (since, [[BASELINE], since])
    save_history("patch_baseline", history.to_json())


async def test_continue_as_new_mid_adoption_keeps_goals_stall_and_timers(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff, max_history_events=100)
    first_run = (await handle.describe()).run_id
    await through_training(h, handle)
    await h.record(handle, GoalAgreed(goal="Approve within a day"))
    for _ in range(2):
        await h.usage(handoff, active_users=1, actions_per_user=1)
        status = await h.next_week(handle)
    assert status.state.stall.stalled

    # Enough weeks to cross the 100-event boundary at least once.
    for _ in range(3):
        await h.usage(handoff, active_users=1, actions_per_user=1)
        status = await h.next_week(handle)
    latest = h.client.get_workflow_handle_for(CustomerOnboardingWorkflow.run, handle.id)
    status = await latest.query(CustomerOnboardingWorkflow.status)
    assert status.state.runs > 1
    described = await latest.describe()
    assert described.run_id != first_run
    # The new run upserts only what changes, on top of what the run before indexed.
    assert_indexed(described.typed_search_attributes, handoff, "adoption", stalled=True)
    assert [g.text for g in status.state.goals] == ["Scan every invoice", "Approve within a day"]
    assert status.state.stall.stalled and status.state.stall.episode == 1
    assert status.next_due is not None and status.next_due.kind == "measure"
    assert open_kinds(status).count(TaskKind.STALL_ESCALATION) == 1

    # The journey goes on in the new run: recovery, then criteria.
    await h.usage(handoff, active_users=8, quota_units=50)
    status = await h.next_week(latest)
    assert not status.state.stall.stalled
    await h.usage(handoff, active_users=8)
    status = await h.next_week(latest)
    assert status.state.stage is Stage.COMPLETION_REVIEW
    await h.record(latest, CompletionReviewHeld(held_on=await h.today(), success_confirmed=True))
    result: OnboardingResult = await latest.result()
    assert result.stage is Stage.ONBOARDED and result.runs > 1
    indexed = (await latest.describe()).typed_search_attributes
    assert_indexed(indexed, handoff, "onboarded", stalled=False)
    # The customer id and CSM were indexed by the first run and carried over.
    upserts = upserted_values(await latest.fetch_history())
    assert upserts[-2:] == [{"LiftoffStage": "completion_review"}, {"LiftoffStage": "onboarded"}]
    assert all(set(u) <= {"LiftoffStage", "LiftoffStalled"} for u in upserts), upserts
    seqs = [e.seq for e in h.timeline(handoff.customer_id)]
    assert seqs == list(range(1, len(seqs) + 1)), "no timeline entry lost or doubled"
    # The first run, which ended in continue-as-new, and the last one.
    first = h.client.get_workflow_handle(handle.id, run_id=first_run)
    save_history("continued_as_new_first_run", (await first.fetch_history()).to_json())
    save_history("continued_as_new_last_run", (await latest.fetch_history()).to_json())


async def test_usage_arriving_within_the_grace_counts_in_its_weeks_verdict_and_later_as_late(
    h: Harness,
) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)  # the shipped playbook: 6 hours of grace
    await through_training(h, handle)
    [measure] = [d for d in (await h.status(handle)).state.agenda if d.kind is DueKind.MEASURE]
    assert measure.window_end is not None
    assert measure.at - measure.window_end == timedelta(hours=6)

    # The week ends; an hour later the product's batched usage of its last hours arrives.
    await h.env.sleep(measure.window_end - await h.env.get_current_time() + timedelta(hours=1))
    assert (await h.status(handle)).state.week_index == 0, "not judged before the grace ends"
    add_usage(
        h.database, handoff.customer_id, measure.window_end - timedelta(hours=2), active_users=7
    )
    status = await h.next_week(handle)
    week = status.state.recent_weeks[-1].measurement
    assert (week.window_end, week.active_users, week.key_actions["A"]) == (
        measure.window_end,
        7,
        21,
    )

    # Past the grace, the week's verdict stands; the next one reports what came late.
    add_usage(
        h.database, handoff.customer_id, measure.window_end - timedelta(hours=3), active_users=2
    )
    status = await h.next_week(handle)
    assert status.state.recent_weeks[-2].measurement.active_users == 7
    late_week = status.state.recent_weeks[-1].measurement
    assert (late_week.window_start, late_week.active_users) == (measure.window_end, 0)
    assert late_week.late_events == 8  # two users' login and three key actions each
    [entry] = [
        e
        for e in h.timeline(handoff.customer_id)
        if e.details.get("measurement", {}).get("week_index") == 2
    ]
    assert "8 events of earlier weeks arrived after their verdict" in entry.summary
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_measurement_is_scheduled_on_the_customers_monday_morning(h: Harness) -> None:
    playbook = load_playbook(REPO / "playbooks" / "default.toml")  # aligned to Monday 09:00
    handle = await h.start(make_handoff(time_zone="America/New_York"), playbook)
    await through_training(h, handle)
    status = await h.status(handle)
    # The shipped playbook's step emails may come first; the measurement is on the agenda.
    [measure] = [due for due in status.state.agenda if due.kind == "measure"]
    assert measure.window_end is not None
    local = measure.window_end.astimezone(ZoneInfo("America/New_York"))
    assert (local.strftime("%A"), local.hour, local.minute) == ("Monday", 9, 0)
    assert timedelta(0) < measure.window_end - await h.env.get_current_time() <= WEEK
    # The week is judged after its grace period, the same Monday afternoon.
    assert measure.at - measure.window_end == playbook.measurement.grace_period
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
