"""Moving a running customer to another playbook version, as a pure function: the
dry run's query and the applied update both call `migrate`, so what a lead previews
is what happens.

- Service-level timers, momentum and the deadline keep their origin and move by the
  difference between the two versions' durations (a wait in business days placed from
  the stage's start on each version's clock); one already past fires at once.
- The weekly measurement keeps its window chain: the next window ends where the new
  cadence puts it after the last window measured.
- Step emails already sent or skipped are never sent again. Steps the new version adds
  to a sequence already planned, or whose offset it changes, count from the stage's
  start (never earlier than the next send window); steps it drops leave the agenda.
- The recent weeks are judged again under the new criteria and stall rules, so streaks
  compare like with like; the next measurement acts on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.handoff import CustomerHandoff
from models.migration import CriterionChange, MigrationPlan, StepChange, TimerChange
from models.onboarding import Due, DueKind, HeldDue, OnboardingState, Stage, WeekVerdict
from models.playbook import CampaignStep, Playbook, StageTimer
from workflows import campaign, clocks, rules
from workflows.send_window import SendWindow, business_day_at, next_send_at

_STAGE_TIMED = (Stage.KICKOFF, Stage.TRAINING, Stage.COMPLETION_REVIEW)


@dataclass(frozen=True)
class Migration:
    plan: MigrationPlan
    # Set when the plan is not refused: the state's new agenda, held items and weeks.
    agenda: list[Due]
    held: list[HeldDue]
    recent_weeks: list[WeekVerdict]


def refusal(state: OnboardingState, old: Playbook, new: Playbook) -> str | None:
    """Why this customer cannot move to `new`, or None."""
    if state.stage.terminal:
        return f"the onboarding is {state.stage.value}; it no longer follows a playbook"
    if new.version == old.version:
        return f"the customer already follows version {old.version}"
    missing = [purpose for purpose in state.purposes if new.purpose(purpose) is None]
    if missing:
        return (
            f"version {new.version} has no purpose {', '.join(missing)}, which the customer holds"
        )
    return None


def migrate(
    state: OnboardingState,
    handoff: CustomerHandoff,
    old: Playbook,
    new: Playbook,
    now: datetime,
) -> Migration:
    plan = MigrationPlan(
        customer_id=handoff.customer_id, from_version=old.version, to_version=new.version
    )
    held = list(state.pause.held) if state.pause is not None else []
    refused = refusal(state, old, new)
    if refused is not None:
        plan.refused = refused
        return Migration(plan, list(state.agenda), held, list(state.recent_weeks))

    agenda: list[Due] = []
    for due in state.agenda:
        if due.kind is DueKind.CAMPAIGN_STEP:
            agenda.append(due)
            continue
        moved = _rebased(due, state, handoff, old, new)
        if moved.at != due.at:
            plan.timers.append(_timer_change(due, moved, now, overdue_possible=True))
        agenda.append(moved)
    rebased_held: list[HeldDue] = []
    for item in held:
        if item.due.kind is DueKind.CAMPAIGN_STEP:
            rebased_held.append(item)
            continue
        moved = _rebased(item.due, state, handoff, old, new)
        if moved.at != item.due.at:
            plan.timers.append(_timer_change(item.due, moved, now, overdue_possible=False))
        rebased_held.append(item.model_copy(update={"due": moved}))

    agenda, rebased_held = _replan_steps(plan, agenda, rebased_held, state, handoff, old, new, now)
    weeks = _judge_again(plan, state, new)
    return Migration(plan, agenda, rebased_held, weeks)


# Timers


def _rebased(
    due: Due, state: OnboardingState, handoff: CustomerHandoff, old: Playbook, new: Playbook
) -> Due:
    shift = timedelta(0)
    if due.kind in (DueKind.REMIND_CSM, DueKind.ESCALATE_TO_LEADER) and due.stage in _STAGE_TIMED:
        before, after = _stage_timer(old, due.stage), _stage_timer(new, due.stage)
        if due.kind is DueKind.REMIND_CSM:
            waits = before.remind_csm_after, after.remind_csm_after
        else:
            waits = before.escalate_to_leader_after, after.escalate_to_leader_after
        if waits[0] != waits[1]:
            # Placed from the stage's start on each version's clock: for waits in
            # elapsed time, the difference of the two durations.
            anchor = state.stage_since or due.at
            shift = clocks.due_at(
                waits[1], anchor, clocks.window(handoff, new, state.holidays)
            ) - clocks.due_at(waits[0], anchor, clocks.window(handoff, old, state.holidays))
    elif due.kind is DueKind.MOMENTUM:
        shift = new.momentum_after - old.momentum_after
    elif due.kind is DueKind.DEADLINE:
        shift = new.deadline - old.deadline
    elif due.kind is DueKind.MEASURE and new.measurement != old.measurement:
        return _next_measurement(due, handoff, old, new)
    return due.model_copy(update={"at": due.at + shift}) if shift else due


def _stage_timer(playbook: Playbook, stage: Stage | None) -> StageTimer:
    timers = playbook.timers
    if stage is Stage.KICKOFF:
        return timers.kickoff
    if stage is Stage.TRAINING:
        return timers.training
    return timers.completion_review


def _next_measurement(due: Due, handoff: CustomerHandoff, old: Playbook, new: Playbook) -> Due:
    """The window after the last one measured, on the new cadence."""
    window_end = due.window_end or due.at
    last_end = window_end - old.measurement.every
    new_end = rules.next_measurement_at(
        new.measurement,
        after=last_end,
        time_zone=handoff.time_zone,
        weekday=handoff.measurement_weekday,
    )
    at = new_end + new.measurement.grace_period if due.window_end is not None else new_end
    return due.model_copy(update={"at": at, "window_end": new_end if due.window_end else None})


def _timer_change(before: Due, after: Due, now: datetime, *, overdue_possible: bool) -> TimerChange:
    return TimerChange(
        kind=before.kind,
        stage=before.stage,
        before=before.at,
        after=after.at,
        overdue=overdue_possible and after.at <= now,
    )


# Step emails


def _replan_steps(
    plan: MigrationPlan,
    agenda: list[Due],
    held: list[HeldDue],
    state: OnboardingState,
    handoff: CustomerHandoff,
    old: Playbook,
    new: Playbook,
    now: datetime,
) -> tuple[list[Due], list[HeldDue]]:
    pending = _step_refs(due for due in agenda)
    pending_held = _step_refs(item.due for item in held)
    if new.campaign is None:
        dropped = sorted(pending | pending_held)
        plan.steps += [StepChange(ref=ref, change="dropped") for ref in dropped]
        return (
            [due for due in agenda if due.ref not in dropped],
            [item for item in held if item.due.ref not in dropped],
        )
    window = campaign.window_for(new.campaign, handoff, state.holidays)
    added: list[Due] = []
    gone: set[str] = set()
    moved: dict[str, datetime] = {}
    for purpose_id, stage in _planned_sequences(state):
        anchor = _anchor(state, stage)
        if anchor is None:
            continue
        old_purpose, new_purpose = old.purpose(purpose_id), new.purpose(purpose_id)
        old_steps = {
            step.id: step
            for step in (campaign.steps_starting_at(old_purpose, stage) if old_purpose else [])
        }
        for step in campaign.steps_starting_at(new_purpose, stage) if new_purpose else []:
            ref = f"{purpose_id}:{step.id}"
            previous = old_steps.pop(step.id, None)
            if ref in state.campaign_done:
                plan.steps.append(StepChange(ref=ref, change="already_sent"))
            elif previous is None:
                at = _step_at(step, anchor, now, window)
                added.append(Due(kind=DueKind.CAMPAIGN_STEP, at=at, ref=ref))
                plan.steps.append(StepChange(ref=ref, change="added", at=at))
            elif previous.after_business_days != step.after_business_days and (
                ref in pending or ref in pending_held
            ):
                moved[ref] = _step_at(step, anchor, now, window)
                plan.steps.append(StepChange(ref=ref, change="rescheduled", at=moved[ref]))
        for step_id in old_steps:
            ref = f"{purpose_id}:{step_id}"
            if ref in pending or ref in pending_held:
                gone.add(ref)
                plan.steps.append(StepChange(ref=ref, change="dropped"))
    new_agenda = [
        due.model_copy(update={"at": moved[due.ref]}) if due.ref in moved else due
        for due in agenda
        if due.ref not in gone
    ]
    new_held = [
        HeldDue(due=item.due.model_copy(update={"at": moved[item.due.ref]}), held_at=now)
        if item.due.ref in moved
        else item
        for item in held
        if item.due.ref not in gone
    ]
    if state.pause is not None:
        new_held += [HeldDue(due=due, held_at=now) for due in added]
    else:
        new_agenda += added
    return new_agenda, new_held


def _step_refs(dues: Iterable[Due]) -> set[str]:
    return {due.ref for due in dues if due.kind is DueKind.CAMPAIGN_STEP and due.ref}


def _planned_sequences(state: OnboardingState) -> list[tuple[str, str]]:
    """(purpose, stage) of each sequence already on the agenda; those not planned yet
    will be planned from the new version when their stage begins."""
    sequences = []
    for key in state.campaign_planned:
        if key == campaign.CHOOSE_PURPOSE:
            continue
        purpose_id, _, stage = key.partition("@")
        sequences.append((purpose_id, stage or "adoption"))
    return sequences


def _anchor(state: OnboardingState, stage: str) -> datetime | None:
    """Where a sequence's offsets count from: the stage's start, while it lasts."""
    if stage == "adoption":
        return state.adoption_started_at
    return state.stage_since if state.stage.value == stage else None


def _step_at(step: CampaignStep, anchor: datetime, now: datetime, window: SendWindow) -> datetime:
    return max(business_day_at(anchor, step.after_business_days, window), next_send_at(now, window))


# Verdicts


def _judge_again(plan: MigrationPlan, state: OnboardingState, new: Playbook) -> list[WeekVerdict]:
    weeks: list[WeekVerdict] = []
    for week in state.recent_weeks:
        weeks.append(
            rules.evaluate_week(
                new,
                week.measurement,
                goals_agreed=len(state.goals),
                purposes=state.purposes,
                earlier=weeks,
            )
        )
    if not weeks:
        return weeks
    before = {_name(v.metric.value, v.purpose): v.met for v in state.recent_weeks[-1].criteria}
    after = {_name(v.metric.value, v.purpose): v.met for v in weeks[-1].criteria}
    for name in [*before, *(name for name in after if name not in before)]:
        if before.get(name) != after.get(name):
            plan.criteria.append(
                CriterionChange(criterion=name, before=before.get(name), after=after.get(name))
            )
    plan.criteria_met_before = state.recent_weeks[-1].criteria_met
    plan.criteria_met_after = weeks[-1].criteria_met
    return weeks


def _name(metric: str, purpose: str | None) -> str:
    return metric + (f"[{purpose}]" if purpose else "")
