"""The rules of each CSM event kind, in one place: the stages that accept it, why it is
refused, what it does to the onboarding and how the timeline says it in English.

Every function matches on the event with `case _: assert_never(event)`, so mypy names
the rule a new kind in models/events.py still lacks. The stages are plain data the
dashboard and the CLI read too (which forms a stage offers, which it waits for).

Pure: no I/O and no clock. `apply` changes the state and asks the workflow for the
rest (stage moves, tasks, meetings, contacts) through `Operations`, which
`CustomerOnboardingWorkflow` implements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol, assert_never

from pydantic import BaseModel

from models import limits
from models.events import (
    EVENT_MODELS,
    Cancelled,
    CompletionReviewHeld,
    ContactAdded,
    GoalAgreed,
    KickoffHeld,
    MeetingHeld,
    MeetingKind,
    MeetingRequested,
    OnboardingEvent,
    Paused,
    PurposeAdded,
    Resumed,
    TaskCompleted,
    TrainingHeld,
    TrainingSkipped,
)
from models.handoff import Contact, CustomerHandoff
from models.onboarding import (
    CompletionReview,
    Goal,
    Meeting,
    OnboardingState,
    OpenTask,
    Stage,
    TaskKind,
    TimelineDetails,
)
from models.playbook import Playbook

# The stages an event can arrive in: every stage that is not terminal. An event in
# the handoff stage is judged as in the kickoff stage the start leads to.
OPEN_STAGES = tuple(stage for stage in Stage if not stage.terminal)


@dataclass(frozen=True)
class KindStages:
    # The stages that accept the kind; in the others it is refused.
    accepted: tuple[Stage, ...]
    # The stages waiting for it: the journey's next step there.
    awaited: tuple[Stage, ...] = ()


# Keyed by model; a kind missing here fails at import.
STAGES: dict[type[BaseModel], KindStages] = {
    KickoffHeld: KindStages(
        accepted=(Stage.HANDOFF, Stage.KICKOFF), awaited=(Stage.HANDOFF, Stage.KICKOFF)
    ),
    GoalAgreed: KindStages(
        accepted=(Stage.TRAINING, Stage.ADOPTION, Stage.COMPLETION_REVIEW),
        awaited=(Stage.ADOPTION,),
    ),
    TrainingHeld: KindStages(accepted=(Stage.TRAINING,), awaited=(Stage.TRAINING,)),
    TrainingSkipped: KindStages(accepted=(Stage.TRAINING,), awaited=(Stage.TRAINING,)),
    MeetingRequested: KindStages(accepted=OPEN_STAGES),
    MeetingHeld: KindStages(accepted=OPEN_STAGES, awaited=(Stage.ADOPTION,)),
    PurposeAdded: KindStages(accepted=OPEN_STAGES),
    ContactAdded: KindStages(accepted=OPEN_STAGES),
    CompletionReviewHeld: KindStages(
        accepted=(Stage.COMPLETION_REVIEW,), awaited=(Stage.COMPLETION_REVIEW,)
    ),
    TaskCompleted: KindStages(accepted=OPEN_STAGES),
    Paused: KindStages(accepted=OPEN_STAGES),
    Resumed: KindStages(accepted=OPEN_STAGES),
    Cancelled: KindStages(accepted=OPEN_STAGES),
}
_unruled = set(EVENT_MODELS.values()) ^ set(STAGES)
if _unruled:
    raise TypeError(f"event kinds without their stages in workflows/events.py: {_unruled}")


def accepted_kinds(stage: Stage) -> tuple[str, ...]:
    """The kinds a stage accepts, in the order of the journey."""
    return tuple(kind for kind, model in EVENT_MODELS.items() if stage in STAGES[model].accepted)


def awaited_kinds(stage: Stage) -> tuple[str, ...]:
    """The kinds a stage waits for, in the order of the journey."""
    return tuple(kind for kind, model in EVENT_MODELS.items() if stage in STAGES[model].awaited)


# Refusals: every reason is a sentence a CSM can act on.

# The change that refused a meeting dated before the one its stage follows.
DATES_IN_ORDER = "meeting-dates-in-order"


def refusal(
    event: OnboardingEvent,
    *,
    stage: Stage,
    state: OnboardingState,
    handoff: CustomerHandoff,
    playbook: Playbook,
    today: date,
    dates_in_order: bool = True,
) -> str | None:
    """Why `event` is refused in `stage` (the stage it is judged in), or None.

    `dates_in_order`: a meeting dated before the one its stage follows is refused (False
    for signals of histories begun before that rule, which applied them)."""
    if stage.terminal:
        return f"the onboarding is {stage.value}; it accepts no more events"
    stages = STAGES.get(type(event))
    if stages is None:
        # A kind this worker does not know (a newer client's): never applied.
        return f"unknown event kind {getattr(event, 'kind', type(event).__name__)!r}"
    if stage not in stages.accepted:
        return _out_of_stage(event, stage, state)
    if dates_in_order:
        before = _dated_before_its_stage(event, state)
        if before is not None:
            return before
    return _invalid(event, state=state, handoff=handoff, playbook=playbook, today=today)


def has_ordered_date(event: OnboardingEvent) -> bool:
    """Whether the event's date must not precede the meeting its stage follows."""
    return isinstance(event, TrainingHeld | CompletionReviewHeld)


def _dated_before_its_stage(event: OnboardingEvent, state: OnboardingState) -> str | None:
    match event:
        case TrainingHeld() if state.kickoff_held_on and event.held_on < state.kickoff_held_on:
            return (
                f"the training date {event.held_on} is before the kickoff "
                f"(held on {state.kickoff_held_on})"
            )
        case CompletionReviewHeld():
            last = state.training_held_on or state.kickoff_held_on
            if last is not None and event.held_on < last:
                meeting = "training" if state.training_held_on else "kickoff"
                return (
                    f"the completion review date {event.held_on} is before the {meeting} "
                    f"(held on {last})"
                )
    return None


def _out_of_stage(event: OnboardingEvent, stage: Stage, state: OnboardingState) -> str:
    match event:
        case KickoffHeld():
            return f"the kickoff was already recorded on {state.kickoff_held_on}"
        case GoalAgreed():
            return "goals are agreed at the kickoff: record the kickoff first"
        case TrainingHeld() | TrainingSkipped():
            if stage in (Stage.HANDOFF, Stage.KICKOFF):
                return "the training comes after the kickoff: record the kickoff first"
            return "the training stage is over" + _training_outcome(state)
        case CompletionReviewHeld():
            return (
                "the completion review comes once the completion criteria are met; "
                f"the customer is in {stage.value}"
            )
        case (
            MeetingRequested()
            | MeetingHeld()
            | PurposeAdded()
            | ContactAdded()
            | TaskCompleted()
            | Paused()
            | Resumed()
            | Cancelled()
        ):
            return f"{event.kind} is not accepted in the {stage.value} stage"
        case _:
            assert_never(event)


def _invalid(
    event: OnboardingEvent,
    *,
    state: OnboardingState,
    handoff: CustomerHandoff,
    playbook: Playbook,
    today: date,
) -> str | None:
    """Why an event is refused in a stage that accepts its kind, or None."""
    match event:
        case KickoffHeld() | TrainingHeld() | MeetingHeld() | CompletionReviewHeld():
            return _not_in_future(event.held_on, today)
        case GoalAgreed():
            if any(goal.text == event.goal for goal in state.goals):
                return f"the goal {event.goal!r} is already agreed"
            if len(state.goals) >= limits.GOALS:
                return f"the customer already has {limits.GOALS} goals, the most it can hold"
            return None
        case TrainingSkipped() | MeetingRequested() | Cancelled():
            return None
        case PurposeAdded():
            if playbook.purpose(event.purpose) is None:
                offered = ", ".join(p.id for p in playbook.purposes)
                return f"unknown purpose {event.purpose!r}: the playbook offers {offered}"
            if event.purpose in state.purposes:
                return f"the customer already holds purpose {event.purpose}"
            return None
        case ContactAdded():
            known = {c.email for c in [*handoff.contacts, *state.added_contacts]}
            if event.contact.email in known:
                return f"{event.contact.email} is already a contact of this customer"
            if len(known) >= limits.CONTACTS:
                return f"the customer already has {limits.CONTACTS} contacts, the most it can hold"
            return None
        case TaskCompleted():
            if not any(task.task_id == event.task_id for task in state.open_tasks):
                return f"no open task {event.task_id!r} for this customer"
            return None
        case Paused():
            if state.pause is not None:
                return (
                    f"the customer is already paused since {state.pause.since:%Y-%m-%d} "
                    f"({state.pause.reason})"
                )
            return _resume_date_problem(event.resume_on, today)
        case Resumed():
            if state.pause is None:
                return "the customer is not paused"
            return None
        case _:
            assert_never(event)


def _not_in_future(held_on: date, today: date) -> str | None:
    # One day of slack: the CSM's local date can be ahead of UTC.
    if held_on > today + timedelta(days=1):
        return f"the date {held_on} is in the future"
    return None


def _resume_date_problem(resume_on: date | None, today: date) -> str | None:
    if resume_on is None:
        return None
    if resume_on <= today:
        return f"the resume date {resume_on} is not after today"
    if resume_on > today + timedelta(days=limits.PAUSE_DAYS):
        return (
            f"the resume date {resume_on} is more than {limits.PAUSE_DAYS} days ahead; "
            "pause without a date and resume by hand"
        )
    return None


def _training_outcome(state: OnboardingState) -> str:
    if state.training_held_on is not None:
        return f" (held on {state.training_held_on})"
    if state.training_skipped_reason is not None:
        return f" (skipped: {state.training_skipped_reason})"
    return ""


# Effects: the state changes now; the workflow queues the activities.


class Operations(Protocol):
    """What an event may ask of the workflow besides changing its state."""

    def move_to(self, stage: Stage, cause: str, *, passing: bool = False) -> None:
        """`passing`: the next move follows at once, so the stage sets no timers or tasks."""
        ...

    def request_meeting(self, kind: MeetingKind, reason: str) -> None: ...

    def close_tasks(self, matches: Callable[[OpenTask], bool], resolution: str) -> None: ...

    def add_contact(self, contact: Contact) -> None: ...

    def pause(self, reason: str, resume_on: date | None) -> None:
        """Hold reminders, escalations, the deadline and step emails until resumed."""
        ...

    def resume(self) -> None:
        """Move every held clock by the time paused and let it run again."""
        ...

    def patched(self, change: str) -> bool:
        """Whether this history takes `change`, made after it began (workflow.patched)."""
        ...


def apply(
    event: OnboardingEvent,
    workflow: Operations,
    *,
    state: OnboardingState,
    handoff: CustomerHandoff,
    playbook: Playbook,
    now: datetime,
) -> None:
    """What an accepted event does, after its own timeline entry is queued."""
    match event:
        case KickoffHeld():
            state.kickoff_held_on = event.held_on
            state.goals += [Goal(text=text, agreed_at=now) for text in event.goals]
            skip = training_skip_reason(playbook, handoff)
            workflow.move_to(
                Stage.TRAINING, f"kickoff held on {event.held_on}", passing=skip is not None
            )
            if skip is not None:
                state.training_skipped_reason = skip
                workflow.move_to(Stage.ADOPTION, f"training skipped: {skip}")
        case GoalAgreed():
            state.goals.append(Goal(text=event.goal, agreed_at=now))
        case TrainingHeld():
            state.training_held_on = event.held_on
            workflow.move_to(Stage.ADOPTION, f"training held on {event.held_on}")
        case TrainingSkipped():
            state.training_skipped_reason = event.reason
            workflow.move_to(Stage.ADOPTION, f"training skipped: {event.reason}")
        case MeetingRequested():
            workflow.request_meeting(event.meeting, event.notes or "requested by the CSM")
        case MeetingHeld():
            held = Meeting(kind=event.meeting, held_on=event.held_on, notes=event.notes)
            state.meetings = [*state.meetings, held][-limits.MEETINGS_KEPT :]
            meeting = event.meeting.value
            workflow.close_tasks(
                lambda task: task.kind is TaskKind.MEETING and task.ref == meeting,
                f"meeting held on {event.held_on}",
            )
        case PurposeAdded():
            state.purposes.append(event.purpose)
        case ContactAdded():
            state.added_contacts.append(event.contact)
            workflow.add_contact(event.contact)
        case CompletionReviewHeld():
            state.review = CompletionReview(
                held_on=event.held_on,
                success_confirmed=event.success_confirmed,
                feedback=event.feedback,
                feature_requests=event.feature_requests,
                nps=event.nps,
            )
            if event.success_confirmed or not workflow.patched("unconfirmed-review-readopts"):
                confirmed = "confirmed" if event.success_confirmed else "not confirmed"
                workflow.move_to(
                    Stage.ONBOARDED,
                    f"completion review held on {event.held_on}; short-term success {confirmed}",
                )
            else:
                # Usage is not success: back to adoption with a follow-up meeting; weeks
                # that meet the criteria again call a new review.
                workflow.move_to(
                    Stage.ADOPTION,
                    f"completion review held on {event.held_on}; short-term success "
                    "not confirmed: back to adoption",
                )
                workflow.request_meeting(
                    MeetingKind.POOR_PROGRESS,
                    "short-term success was not confirmed at the completion review",
                )
        case TaskCompleted():
            task_id = event.task_id
            workflow.close_tasks(
                lambda task: task.task_id == task_id, event.note or "done by the CSM"
            )
        case Paused():
            workflow.pause(event.reason, event.resume_on)
        case Resumed():
            workflow.resume()
        case Cancelled():
            workflow.move_to(Stage.CANCELLED, f"cancelled: {event.reason}")
        case _:
            assert_never(event)


def training_skip_reason(playbook: Playbook, handoff: CustomerHandoff) -> str | None:
    """Why this customer needs no training, per the playbook, or None."""
    policy = playbook.training
    if policy.skip_if_trial_used and handoff.trial_used:
        return "the customer used a trial"
    if policy.skip_if_already_using and handoff.already_using:
        return "the customer already uses the product"
    return None


# The timeline: the workflow's English summary and the event's facts.


def summary(event: OnboardingEvent) -> str:
    match event:
        case KickoffHeld():
            return f"kickoff held on {event.held_on} with {len(event.goals)} goal(s) agreed"
        case GoalAgreed():
            return f"goal agreed: {event.goal}"
        case TrainingHeld():
            return f"training held on {event.held_on}"
        case TrainingSkipped():
            return f"training skipped: {event.reason}"
        case MeetingRequested():
            return f"{event.meeting.value} meeting requested"
        case MeetingHeld():
            return f"{event.meeting.value} meeting held on {event.held_on}"
        case PurposeAdded():
            return f"purpose {event.purpose} added"
        case ContactAdded():
            return f"{event.contact.role.value} contact added"
        case CompletionReviewHeld():
            return f"completion review held on {event.held_on}"
        case TaskCompleted():
            return f"task {event.task_id} done"
        case Paused():
            until = f" until {event.resume_on}" if event.resume_on else ""
            return f"paused{until}: {event.reason}"
        case Resumed():
            return f"resumed: {event.note}" if event.note else "resumed"
        case Cancelled():
            return f"cancelled: {event.reason}"
        case _:
            assert_never(event)


def event_json(event: OnboardingEvent) -> TimelineDetails:
    """The event as its timeline entry keeps it; the dashboard reads it back."""
    return event.model_dump(mode="json", exclude_none=True)
