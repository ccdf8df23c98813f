"""Events delivered with the workflow's start land in its very first task, before
run() has begun the onboarding; they must be judged as the kickoff stage, not refused.

Update-with-start and signal-with-start put them there deterministically; they
need the dev server (the time-skipping server does not offer update-with-start).
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from client.onboarding import RECORD_EVENT, SUBMIT_EVENT
from models import visibility
from models.events import KickoffHeld
from models.onboarding import EventResult, OnboardingInput, OnboardingStatus, Stage
from records.database import Database
from testkit.factories import make_handoff, make_playbook
from tests.support.eventually import eventually
from tests.support.temporal import onboarding_worker
from workflows.onboarding import CustomerOnboardingWorkflow


async def test_a_kickoff_sent_with_the_start_is_applied_not_refused(
    local_env: WorkflowEnvironment, sqlite_database: Database, tmp_path: Path
) -> None:
    task_queue = f"first-task-{uuid.uuid4()}"
    client = local_env.client
    async with onboarding_worker(client, task_queue, sqlite_database, tmp_path / "outbox"):
        handoff = make_handoff(trial_used=True)
        start = WithStartWorkflowOperation(
            CustomerOnboardingWorkflow.run,
            OnboardingInput(handoff=handoff, playbook=make_playbook()),
            id=visibility.workflow_id_for(handoff.customer_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        result: EventResult = await client.execute_update_with_start_workflow(
            RECORD_EVENT,
            KickoffHeld(held_on=date.today(), goals=["Go live"]),
            start_workflow_operation=start,
            result_type=EventResult,
        )
        # A trial customer skips training: the kickoff took it straight to adoption.
        assert result.stage is Stage.ADOPTION
        handle = await start.workflow_handle()
        status: OnboardingStatus = await handle.query(CustomerOnboardingWorkflow.status)
        assert [t.stage_to for t in status.state.transitions] == [
            Stage.HANDOFF,
            Stage.KICKOFF,
            Stage.TRAINING,
            Stage.ADOPTION,
        ]
        assert status.state.kickoff_held_on == date.today()

        # The same through signal-with-start: applied, nothing recorded as rejected.
        other = make_handoff(trial_used=True)
        signalled = await client.start_workflow(
            CustomerOnboardingWorkflow.run,
            OnboardingInput(handoff=other, playbook=make_playbook()),
            id=visibility.workflow_id_for(other.customer_id),
            task_queue=task_queue,
            start_signal=SUBMIT_EVENT,
            start_signal_args=[KickoffHeld(held_on=date.today())],
        )
        status = await eventually(
            lambda: signalled.query(CustomerOnboardingWorkflow.status),
            lambda s: s.state.stage is Stage.ADOPTION,
            what="the signalled kickoff applied",
            interval=0.05,
        )
        assert status.state.rejected == []
        for started in (handle, signalled):
            await started.terminate("test over")
