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

from models import overrides
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


def refusal(
    state: OnboardingState, handoff: CustomerHandoff, old: Playbook, new: Playbook
) -> str | None:
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
    try:
        followed(new, state.overrides, state, handoff)
    except overrides.OverridesError as err:
        return f"the customer's overrides do not fit version {new.version}: {err}"
    return None


def followed(
    playbook: Playbook,
    adjusted: overrides.CustomerOverrides | None,
    state: OnboardingState,
    handoff: CustomerHandoff,
) -> Playbook:
    """The playbook as this customer follows it: `playbook` with `adjusted` applied."""
    return overrides.effective(
        playbook, adjusted, started_at=state.started_at, time_zone=handoff.time_zone
    )


def migrate(
    state: OnboardingState,
    handoff: CustomerHandoff,
    old: Playbook,
    new: Playbook,
    now: datetime,
) -> Migration:
    """Move the customer from pinned version `old` to `new`; its overrides are applied
    to both, so they carry over (or the move is refused with why they do not fit)."""
    plan = MigrationPlan(
        customer_id=handoff.customer_id, from_version=old.version, to_version=new.version
    )
    refused = refusal(state, handoff, old, new)
    if refused is not None:
        plan.refused = refused
        held = list(state.pause.held) if state.pause is not None else []
        return Migration(plan, list(state.agenda), held, list(state.recent_weeks))
    clock = overrides.measured_handoff(handoff, state.overrides)
    before = followed(old, state.overrides, state, handoff)
    after = followed(new, state.overrides, state, handoff)
    return _rebase(plan, state, (clock, clock), before, after, now)


def adjust(
    state: OnboardingState,
    handoff: CustomerHandoff,
    pinned: Playbook,
    adjusted: overrides.CustomerOverrides,
    now: datetime,
) -> Migration:
    """Setting new overrides moves the customer as a migration does, from the playbook
    as it followed it to the playbook as adjusted. Raises `OverridesError`.

    A deadline date is placed at the end of that local day (a pause already held
    moves it on resume, like every clock)."""
    before = followed(pinned, state.overrides, state, handoff)
    after = followed(pinned, adjusted, state, handoff)
    plan = MigrationPlan(
        customer_id=handoff.customer_id, from_version=pinned.version, to_version=pinned.version
    )
    handoffs = (
        overrides.measured_handoff(handoff, state.overrides),
        overrides.measured_handoff(handoff, adjusted),
    )
    change = _rebase(plan, state, handoffs, before, after, now)
    if handoffs[0].measurement_weekday != handoffs[1].measurement_weekday or (
        before.measurement != after.measurement
    ):
        change = _measured_from_now(change, state, after, now)
    earlier = state.overrides.deadline if state.overrides is not None else None
    if adjusted.deadline is None or adjusted.deadline == earlier:
        return change
    at = overrides.deadline_at(adjusted.deadline, handoff.time_zone)
    plan.timers = [t for t in plan.timers if t.kind is not DueKind.DEADLINE]
    agenda = []
    for due in change.agenda:
        if due.kind is DueKind.DEADLINE:
            original = next(d for d in state.agenda if d.kind is DueKind.DEADLINE)
            due = due.model_copy(update={"at": at})
            plan.timers.append(_timer_change(original, due, now, overdue_possible=True))
        agenda.append(due)
    return Migration(plan, agenda, change.held, change.recent_weeks)


def _measured_from_now(
    change: Migration, state: OnboardingState, playbook: Playbook, now: datetime
) -> Migration:
    """A measurement moved by an adjustment to a weekday or hour already past this week
    is taken at the next one instead: "measure on Wednesdays" from now on, not a
    measurement of a short week fired at once. (A migration keeps it, marked overdue in
    its dry run.)"""
    every = playbook.measurement.every
    agenda = []
    for due in change.agenda:
        if due.kind is DueKind.MEASURE and due.window_end is not None:
            end = due.window_end
            while end <= now:
                end += every
            if end != due.window_end:
                original = next((d for d in state.agenda if d.kind is DueKind.MEASURE), due)
                due = due.model_copy(
                    update={"at": due.at + (end - due.window_end), "window_end": end}
                )
                change.plan.timers = [
                    t for t in change.plan.timers if t.kind is not DueKind.MEASURE
                ] + [_timer_change(original, due, now, overdue_possible=True)]
        agenda.append(due)
    return Migration(change.plan, agenda, change.held, change.recent_weeks)


def _rebase(
    plan: MigrationPlan,
    state: OnboardingState,
    handoffs: tuple[CustomerHandoff, CustomerHandoff],
    old: Playbook,
    new: Playbook,
    now: datetime,
) -> Migration:
    """The state's agenda, held items and verdicts moved from `old` to `new`; `handoffs`
    are the handoff before and after, whose measurement weekday may differ."""
    handoff = handoffs[1]
    held = list(state.pause.held) if state.pause is not None else []
    agenda: list[Due] = []
    for due in state.agenda:
        if due.kind is DueKind.CAMPAIGN_STEP:
            agenda.append(due)
            continue
        moved = _rebased(due, state, handoffs, old, new)
        if moved.at != due.at:
            plan.timers.append(_timer_change(due, moved, now, overdue_possible=True))
        agenda.append(moved)
    rebased_held: list[HeldDue] = []
    for item in held:
        if item.due.kind is DueKind.CAMPAIGN_STEP:
            rebased_held.append(item)
            continue
        moved = _rebased(item.due, state, handoffs, old, new)
        if moved.at != item.due.at:
            plan.timers.append(_timer_change(item.due, moved, now, overdue_possible=False))
        rebased_held.append(item.model_copy(update={"due": moved}))

    agenda, rebased_held = _replan_steps(plan, agenda, rebased_held, state, handoff, old, new, now)
    weeks = _judge_again(plan, state, new)
    return Migration(plan, agenda, rebased_held, weeks)


# Timers


def _rebased(
    due: Due,
    state: OnboardingState,
    handoffs: tuple[CustomerHandoff, CustomerHandoff],
    old: Playbook,
    new: Playbook,
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
                waits[1], anchor, clocks.window(handoffs[1], new, state.holidays)
            ) - clocks.due_at(waits[0], anchor, clocks.window(handoffs[0], old, state.holidays))
    elif due.kind is DueKind.MOMENTUM:
        shift = new.momentum_after - old.momentum_after
    elif due.kind is DueKind.DEADLINE:
        shift = new.deadline - old.deadline
    elif due.kind is DueKind.MEASURE and (
        new.measurement != old.measurement
        or handoffs[0].measurement_weekday != handoffs[1].measurement_weekday
    ):
        return _next_measurement(due, handoffs[1], old, new)
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
