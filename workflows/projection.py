"""The snapshot of a customer the workflow sends with each timeline write (pure).

Built when the write runs, not when the entry was queued: a handler queues its entry
before it changes the state (a completed task closes after its event's entry), and the
projection should show the state the entry leaves behind.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.handoff import CustomerHandoff
    from models.onboarding import OnboardingState
    from models.playbook import Playbook
    from models.projection import ESCALATION_TASKS, ProjectionSnapshot


def snapshot(
    handoff: CustomerHandoff, playbook: Playbook, state: OnboardingState
) -> ProjectionSnapshot:
    next_due = min(state.agenda, key=lambda due: due.at, default=None)
    campaign = playbook.campaign
    return ProjectionSnapshot(
        name=handoff.name,
        csm=handoff.csm,
        cs_leader=handoff.cs_leader,
        stage=state.stage,
        stage_since=state.stage_since,
        # Reversed, so the first entry into a stage wins.
        stage_entered={t.stage_to: t.at for t in reversed(state.transitions)},
        started_at=state.started_at,
        stalled=state.stall.stalled,
        setup_stuck=state.setup.stuck,
        paused=state.pause is not None,
        paused_since=state.pause.since if state.pause else None,
        pause_reason=state.pause.reason if state.pause else None,
        next_due_kind=next_due.kind if next_due else None,
        next_due_at=next_due.at if next_due else None,
        open_tasks=len(state.open_tasks),
        escalations=sum(task.kind in ESCALATION_TASKS for task in state.open_tasks),
        playbook_name=playbook.name,
        playbook_version=playbook.version,
        purposes=list(state.purposes),
        seats_contracted=handoff.seats_contracted,
        trial_used=handoff.trial_used,
        locale=handoff.locale,
        time_zone=handoff.time_zone,
        # Whose holidays count; before the handoff had a country, only a campaign's did.
        country=handoff.country
        or (campaign.holiday_calendars.get(handoff.locale) if campaign else None),
        review_after=playbook.review.after_finished,
    )
