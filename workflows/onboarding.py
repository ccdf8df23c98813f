"""One durable onboarding per customer: handoff to onboarded, failed or cancelled.

The workflow is an event loop over an agenda of absolute instants (service-level
timers, the weekly measurement, momentum, deadline) and the CSM's events. Every
wait is a Temporal timer, so the agenda survives continue-as-new unchanged and
the next due item is visible in the status query.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue, SearchAttributeUpdate
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    # `import a.b` (not `from a import b`): the sandbox loads this module's own
    # package itself, and only this form passes the submodule through; rules.py
    # needs the real zoneinfo, which the sandbox wraps in a restricted proxy.
    from pydantic import ValidationError

    import emails.contexts as contexts
    import workflows.activity_options as options
    import workflows.campaign as campaign
    import workflows.clocks as clocks
    import workflows.effects as effects
    import workflows.events as events
    import workflows.local_activities as local_activities
    import workflows.migration as migration
    import workflows.patches as patches
    import workflows.pausing as pausing
    import workflows.projection as projection
    import workflows.rules as rules
    import workflows.shared_playbooks as shared_playbooks
    import workflows.step_emails as step_emails
    import workflows.surveys as surveys
    from activities.measure import MeasureActivities
    from activities.store import StoreActivities
    from models import limits, overrides, visibility
    from models.activity_io import (
        AddContactInput,
        CloseTasksInput,
        MeasureWeeklyUsageInput,
        MoveTaskDueInput,
        OpenTaskInput,
        SendEmailInput,
        UpsertCustomerInput,
    )
    from models.email_categories import EmailCategory
    from models.events import (
        SUBMIT_EVENT,
        MeetingKind,
        OnboardingEvent,
        UnreadableEvent,
        read_event,
    )
    from models.handoff import Contact, Role
    from models.migration import (
        MigrationPlan,
        MigrationPreviewRequest,
        MigrationRequest,
        OverridesResult,
    )
    from models.onboarding import (
        Due,
        DueKind,
        EventResult,
        HeldDue,
        Meeting,
        OnboardingInput,
        OnboardingResult,
        OnboardingState,
        OnboardingStatus,
        OpenTask,
        PauseState,
        RejectedEvent,
        Stage,
        TaskKind,
        TimelineDetails,
        Transition,
        WeeklyMeasurement,
        WeekVerdict,
    )
    from models.overrides import CustomerOverrides, OverridesRequest
    from models.playbook import BusinessDays, Playbook

# The error type of a refused event, for callers that tell refusals from failures.
REFUSED_ERROR_TYPE = "EventRefused"
# The playbook argument of a start input that carries its playbook inside it.
_NO_PLAYBOOK = RawValue(Payload())
# Histories from before upserted every search attribute at each change of state.
INDEX_CHANGES_ONLY = "index-changes-only"
# Stages in which the deadline can still fail the onboarding.
_BEFORE_CRITERIA = (Stage.HANDOFF, Stage.KICKOFF, Stage.TRAINING, Stage.ADOPTION)
# Histories from before left a scheduling task's due date where it was opened.
TASK_DUE_FOLLOWS_REMINDER = "task-due-follows-reminder"
_SCHEDULE_TASK = {
    Stage.KICKOFF: (TaskKind.SCHEDULE_KICKOFF, "Schedule the kickoff meeting"),
    Stage.TRAINING: (TaskKind.SCHEDULE_TRAINING, "Schedule the product training"),
    Stage.COMPLETION_REVIEW: (
        TaskKind.SCHEDULE_COMPLETION_REVIEW,
        "Schedule the completion review: the criteria are met",
    ),
}


@workflow.defn
class CustomerOnboardingWorkflow:
    @workflow.init
    def __init__(self, input: OnboardingInput, playbook: RawValue = _NO_PLAYBOOK) -> None:
        input = _read_input(input)
        self._handoff = input.handoff
        self._max_history_events = input.max_history_events
        self._state = input.state or OnboardingState(purposes=list(input.handoff.purposes))
        # The version the customer is pinned to, and that version as the customer's
        # overrides adjust it (the same shared playbook when there are none), which it
        # follows. The arguments' own copy is dropped: the SDK keeps them as long as the
        # workflow is cached.
        self._playbook_apart = playbook.payload.ByteSize() > 0
        self._pinned = shared_playbooks.shared(_read_playbook(input, playbook))
        input.playbook = None
        if self._playbook_apart:
            playbook.payload.Clear()
        self._playbook = migration.followed(
            self._pinned, self._state.overrides, self._state, input.handoff
        )
        # Activities to run, queued by handlers and timers, drained by the main loop.
        self._effects = effects.Effects(
            input.handoff.customer_id,
            self._state,
            lambda: projection.snapshot(self._handoff, self._playbook, self._state),
            on_store_failed=self._store_failed,
        )
        self._step_emails = step_emails.StepEmails(
            input.handoff, self._playbook, self._state, self._effects
        )
        # The instant the last timer waited for, once it has fired (see _fire_due_items).
        self._timer_reached: datetime | None = None

    @workflow.run
    async def run(
        self, input: OnboardingInput, playbook: RawValue = _NO_PLAYBOOK
    ) -> OnboardingResult:
        await self._ensure_holidays()
        self._ensure_begun()
        self._index()
        while True:
            await self._effects.drain()
            if self._state.stage.terminal:
                break
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._effects.drain(with_mail=True)
                self._state.runs += 1
                self._continue_as_new()
            await self._ensure_holidays()
            await self._step_emails.plan()
            await self._wait_for_something_due()
            await self._fire_due_items()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._effects.drain(with_mail=True)
        return OnboardingResult(
            customer_id=self._handoff.customer_id,
            stage=self._state.stage,
            ended_at=self._state.stage_since or workflow.now(),
            playbook_name=self._playbook.name,
            playbook_version=self._playbook.version,
            runs=self._state.runs,
        )

    # CSM commands and integration events

    # The update and the signal take the payload as sent and read it by its `kind`
    # (models.events.read_event): Temporal's own decoding would drop the discriminator,
    # and an unreadable signal would be dropped without a trace.

    @workflow.update
    async def record_event(self, event: RawValue) -> EventResult:
        self._ensure_begun()
        read = _read(event)
        if isinstance(read, UnreadableEvent):
            raise _refused(read.reason)
        if self._is_duplicate(read):
            return EventResult(kind=read.kind, stage=self._state.stage, duplicate=True)
        detail = self._apply(read)
        return EventResult(kind=read.kind, stage=self._state.stage, detail=detail)

    @record_event.validator
    def _validate_event(self, event: RawValue) -> None:
        read = _read(event)
        if isinstance(read, UnreadableEvent):
            raise _refused(read.reason)
        if self._is_duplicate(read):
            return
        reason = self._rejection(read)
        if reason is not None:
            raise _refused(reason)

    @workflow.signal(dynamic=True)
    def submit_event(self, name: str, args: Sequence[RawValue]) -> None:
        """Fire-and-forget twin of record_event: a refusal is recorded, never raised.

        Dynamic, so the handler sees every signal as sent: a named handler with one
        parameter fails the workflow task when given none, and reads a second event
        without its kind. Any other signal name lands here too and is recorded.
        """
        if name != SUBMIT_EVENT or len(args) != 1:
            # Before, another name was kept unhandled and a wrong count failed the task.
            if patches.taken("signal-arguments-recorded"):
                self._ensure_begun()
                self._record_rejection("unknown", _signal_misuse(name, len(args)), {})
            return
        read = _read(args[0])
        if isinstance(read, UnreadableEvent):
            # Histories from before were never given an unreadable signal: the SDK dropped it.
            if not patches.taken("unreadable-signal-recorded"):
                return
            self._ensure_begun()
            self._record_rejection(read.kind, read.reason, {"kind": read.kind})
            return
        self._ensure_begun()
        if self._is_duplicate(read):
            return
        # Signals of histories begun before the rule were applied whatever their dates.
        reason = self._rejection(
            read,
            dates_in_order=events.has_ordered_date(read) and patches.taken(events.DATES_IN_ORDER),
        )
        if reason is None:
            self._apply(read)
            return
        self._record_rejection(read.kind, reason, events.event_json(read))

    def _record_rejection(self, kind: str, reason: str, details: TimelineDetails) -> None:
        self._state.rejected = [
            *self._state.rejected,
            RejectedEvent(at=workflow.now(), kind=kind, reason=reason),
        ][-options.REJECTIONS_KEPT :]
        self._effects.timeline("event_rejected", f"{kind} rejected: {reason}", details)

    @workflow.query
    def status(self) -> OnboardingStatus:
        return OnboardingStatus(
            customer_id=self._handoff.customer_id,
            customer_name=self._handoff.name,
            csm=self._handoff.csm,
            cs_leader=self._handoff.cs_leader,
            time_zone=self._handoff.time_zone,
            purpose_catalogue={p.id: p.title for p in self._playbook.purposes},
            playbook_name=self._playbook.name,
            playbook_version=self._playbook.version,
            state=self._state,
            overridden=overrides.compare(
                self._pinned,
                self._state.overrides,
                handoff=self._handoff,
                started_at=self._state.started_at,
            ),
            next_due=min(self._state.agenda, key=lambda due: due.at, default=None),
            pending_side_effects=self._effects.pending,
            unwritten_timeline=self._effects.unwritten(),
        )

    # Moving to another playbook version (workflows/migration.py)

    @workflow.query
    def preview_migration(self, request: MigrationPreviewRequest) -> MigrationPlan:
        return migration.migrate(
            self._state, self._handoff, self._pinned, request.playbook, request.now
        ).plan

    @workflow.update
    async def migrate_playbook(self, request: MigrationRequest) -> MigrationPlan:
        self._ensure_begun()
        old, new = self._pinned, request.playbook
        change = migration.migrate(self._state, self._handoff, old, new, workflow.now())
        if change.plan.refused is not None:
            # The validator refused it already, unless a replay got here first.
            raise _refused(change.plan.refused)
        self._moved(change)
        self._pinned = shared_playbooks.shared(new)
        self._follow(
            migration.followed(self._pinned, self._state.overrides, self._state, self._handoff)
        )
        self._effects.timeline(
            "playbook_migrated",
            f"playbook {old.name} {old.version} -> {new.name} {new.version} by "
            f"{request.requested_by}: {request.reason} ({change.plan.summary()})",
            {
                "from": old.version,
                "to": new.version,
                "by": request.requested_by,
                "reason": request.reason,
                "plan": change.plan.model_dump(mode="json"),
            },
        )
        return change.plan

    @migrate_playbook.validator
    def _validate_migration(self, request: MigrationRequest) -> None:
        reason = migration.refusal(self._state, self._handoff, self._pinned, request.playbook)
        if reason is not None:
            raise _refused(reason)

    def _moved(self, change: migration.Migration) -> None:
        self._state.agenda = change.agenda
        if self._state.pause is not None:
            self._state.pause.held = change.held
        self._state.recent_weeks = change.recent_weeks
        self._tasks_follow_their_reminders()

    def _tasks_follow_their_reminders(self) -> None:
        """A task is due when its reminder fires: a stage's scheduling task the stage's,
        any other its own overdue reminder. A migration, an adjustment or a resume that
        moved the reminder moves the task's due date with it (while paused, to where the
        held reminder stands until the resume)."""
        pause = self._state.pause
        held = [item.due for item in pause.held] if pause is not None else []
        dues = [*self._state.agenda, *held]
        stages = {d.stage: d.at for d in dues if d.kind is DueKind.REMIND_CSM and d.stage}
        own = {d.ref: d.at for d in dues if d.kind is DueKind.TASK_OVERDUE and d.ref}
        scheduling = {kind for kind, _ in _SCHEDULE_TASK.values()}
        for task in self._state.open_tasks:
            if task.kind in scheduling:
                at = stages.get(task.stage) if task.stage is not None else None
            else:
                at = own.get(task.task_id)
            if at is None or task.due_at in (None, at):
                continue
            if not patches.taken(TASK_DUE_FOLLOWS_REMINDER):
                return
            task.due_at = at
            self._effects.store(
                StoreActivities.move_task_due,
                MoveTaskDueInput(
                    customer_id=self._handoff.customer_id, task_id=task.task_id, due_at=at
                ),
            )

    def _follow(self, playbook: Playbook) -> None:
        self._playbook = playbook
        self._step_emails.use(playbook)

    # One customer's adjustments of its playbook (models/overrides.py)

    @workflow.update
    async def set_overrides(self, request: OverridesRequest) -> OverridesResult:
        self._ensure_begun()
        adjusted = request.overrides
        try:
            change = migration.adjust(
                self._state, self._handoff, self._pinned, adjusted, workflow.now()
            )
        except overrides.OverridesError as err:
            # The validator refused it already, unless a replay got here first.
            raise _refused(str(err)) from None
        self._moved(change)
        self._state.overrides = None if adjusted.empty else adjusted
        self._follow(migration.followed(self._pinned, adjusted, self._state, self._handoff))
        values = overrides.compare(
            self._pinned, adjusted, handoff=self._handoff, started_at=self._state.started_at
        )
        self._effects.timeline(
            "overrides_set",
            f"playbook adjusted for this customer by {request.requested_by}: "
            f"{overrides.describe(adjusted)} ({request.reason}; {change.plan.summary()})",
            {
                "by": request.requested_by,
                "reason": request.reason,
                "overrides": adjusted.model_dump(mode="json", exclude_defaults=True),
                "values": [value.model_dump() for value in values],
                "plan": change.plan.model_dump(mode="json"),
            },
        )
        return OverridesResult(overridden=values, plan=change.plan)

    @set_overrides.validator
    def _validate_overrides(self, request: OverridesRequest) -> None:
        reason = self._overrides_refusal(request.overrides)
        if reason is not None:
            raise _refused(reason)

    def _overrides_refusal(self, adjusted: CustomerOverrides) -> str | None:
        state = self._state
        if state.stage.terminal:
            return f"the onboarding is {state.stage.value}; there is nothing left to adjust"
        now = workflow.now()
        today = overrides.local_day(now, self._handoff.time_zone)
        if adjusted.deadline is not None and adjusted.deadline <= today:
            return f"the deadline {adjusted.deadline} must be after the customer's today ({today})"
        unreachable = overrides.unreachable_threshold(adjusted.thresholds)
        if unreachable is not None:
            return unreachable
        begun = (
            state if state.started_at is not None else state.model_copy(update={"started_at": now})
        )
        try:
            migration.followed(self._pinned, adjusted, begun, self._handoff)
        except overrides.OverridesError as err:
            return str(err)
        return None

    # CSM events: each kind's rules live in workflows/events.py.

    def _rejection(self, event: OnboardingEvent, *, dates_in_order: bool = True) -> str | None:
        # An event can arrive in the very first workflow task, before run() has begun
        # the onboarding; judge it as the kickoff stage that beginning leads to.
        stage = self._state.stage if self._state.started_at is not None else Stage.KICKOFF
        return events.refusal(
            event,
            stage=stage,
            state=self._state,
            handoff=self._handoff,
            playbook=self._playbook,
            today=workflow.now().date(),
            dates_in_order=dates_in_order,
        )

    def _is_duplicate(self, event: OnboardingEvent) -> bool:
        return event.event_id is not None and event.event_id in self._state.seen_event_ids

    def _apply(self, event: OnboardingEvent) -> str:
        """State changes now, activities queued for the main loop."""
        state = self._state
        if event.event_id is not None:
            state.seen_event_ids = [*state.seen_event_ids, event.event_id][
                -options.SEEN_EVENT_IDS_KEPT :
            ]
        self._effects.timeline(event.kind, events.summary(event), events.event_json(event))
        events.apply(
            event,
            self,
            state=state,
            handoff=self._handoff,
            playbook=self._playbook,
            now=workflow.now(),
        )
        self._send_surveys(event.kind)
        return state.stage.value

    def _send_surveys(self, event_kind: str) -> None:
        """The playbook's NPS survey of the touchpoint this event passes, one email per
        role (workflows/surveys.py); while paused it waits for the resume. Histories
        from before never sent one."""
        emails = surveys.survey_emails(event_kind, self._handoff, self._playbook)
        if not emails or not patches.taken("survey-emails"):
            return
        pause = self._state.pause
        if pause is not None:
            pause.surveys_held = [*pause.surveys_held, event_kind][-limits.LIST_ITEMS :]
            return
        for email in emails:
            self._effects.send(email)

    # Lifecycle

    def _ensure_begun(self) -> None:
        """Begin a new onboarding once, from whichever comes first: run() or an event
        delivered with the workflow's start (update-with-start, signal-with-start)."""
        if self._state.started_at is None:
            self._begin()

    def _begin(self) -> None:
        now = workflow.now()
        self._state.started_at = now
        customer = UpsertCustomerInput(
            handoff=self._handoff,
            playbook_name=self._playbook.name,
            playbook_version=self._playbook.version,
            workflow_id=workflow.info().workflow_id,
        )
        self._effects.store(StoreActivities.upsert_customer, customer)
        self.move_to(Stage.HANDOFF, "handoff received from sales")
        self._state.agenda += [
            Due(kind=DueKind.MOMENTUM, at=now + self._playbook.momentum_after),
            Due(kind=DueKind.DEADLINE, at=now + self._playbook.deadline),
        ]
        self.move_to(Stage.KICKOFF, "waiting for the kickoff meeting")

    def patched(self, change: str) -> bool:
        return patches.taken(change)

    def move_to(self, stage: Stage, cause: str, *, passing: bool = False) -> None:
        state = self._state
        now = workflow.now()
        previous = state.stage if state.stage_since is not None else None
        state.transitions = [
            *state.transitions,
            Transition(at=now, stage_from=previous, stage_to=stage, cause=cause),
        ][-options.RECENT_TRANSITIONS_KEPT :]
        state.stage = stage
        state.stage_since = now
        # Service-level timers and tasks of the stage left behind lapse.
        state.agenda = [due for due in state.agenda if due.stage is None or due.stage is stage]
        if state.pause is not None:
            state.pause.held = [
                held for held in state.pause.held if held.due.stage in (None, stage)
            ]
        if previous is not None and previous is not stage:
            self.close_tasks(lambda task: task.stage is previous, f"stage {previous.value} ended")
        if stage.terminal:
            self._end(stage)
        elif not (passing and patches.taken("passing-stage-sets-no-task")):
            # A trial customer's training is skipped as it begins: no task, no email.
            self._enter(stage, now)
        self._effects.timeline(
            "transition",
            f"{previous.value if previous else 'start'} -> {stage.value}: {cause}",
            {"from": previous.value if previous else None, "to": stage.value, "cause": cause},
        )
        self._index()

    def _enter(self, stage: Stage, now: datetime) -> None:
        timer = {
            Stage.KICKOFF: self._playbook.timers.kickoff,
            Stage.TRAINING: self._playbook.timers.training,
            Stage.COMPLETION_REVIEW: self._playbook.timers.completion_review,
        }.get(stage)
        if timer is not None:
            remind_at = self._clock(timer.remind_csm_after, now)
            self._state.agenda += [
                Due(kind=DueKind.REMIND_CSM, at=remind_at, stage=stage),
                Due(
                    kind=DueKind.ESCALATE_TO_LEADER,
                    at=self._clock(timer.escalate_to_leader_after, now),
                    stage=stage,
                ),
            ]
            kind, title = _SCHEDULE_TASK[stage]
            self._open_task(kind, self._handoff.csm, title, due_at=remind_at, stage=stage)
        if stage is Stage.ADOPTION:
            self._state.adoption_started_at = now
            self._schedule_measurement(after=now)

    def _end(self, stage: Stage) -> None:
        self._state.agenda = []
        # An ended onboarding holds nothing: a cancelled pause is no longer paused.
        self._state.pause = None
        self.close_tasks(lambda task: True, f"onboarding {stage.value}")
        if self._state.stall.stalled:
            self._state.stall.stalled = False
        # An ended onboarding is stuck in nothing: lists must not flag it.
        if self._state.setup.stuck and patches.taken("ended-clears-setup-stuck"):
            self._state.setup.stuck = False

    # Business-day clocks (workflows/clocks.py)

    async def _ensure_holidays(self) -> None:
        """The holiday table business-day clocks count with, before anything is timed
        (and each year). Histories from before looked none up for them."""
        if clocks.counts_business_days(self._playbook) and patches.taken(clocks.PATCH):
            await clocks.ensure_holidays(self._handoff, self._playbook, self._state, workflow.now())

    def _clock(self, wait: BusinessDays | timedelta, anchor: datetime) -> datetime:
        window = clocks.window(self._handoff, self._playbook, self._state.holidays)
        return clocks.due_at(wait, anchor, window)

    def _schedule_measurement(self, *, after: datetime) -> None:
        window_end = rules.next_measurement_at(
            self._playbook.measurement,
            after=after,
            time_zone=self._handoff.time_zone,
            weekday=overrides.measured_handoff(
                self._handoff, self._state.overrides
            ).measurement_weekday,
        )
        if not patches.taken("measurement-grace"):
            # Histories from before the grace period measure when the window ends.
            self._state.agenda.append(
                Due(kind=DueKind.MEASURE, at=window_end, stage=Stage.ADOPTION)
            )
            return
        # Judged the grace period after the window ends, so late usage still counts.
        self._state.agenda.append(
            Due(
                kind=DueKind.MEASURE,
                at=window_end + self._playbook.measurement.grace_period,
                stage=Stage.ADOPTION,
                window_end=window_end,
            )
        )

    # Pause and resume (workflows/pausing.py)

    def pause(self, reason: str, resume_on: date | None) -> None:
        state = self._state
        now = workflow.now()
        resume_at = (
            pausing.resume_instant(resume_on, self._handoff.time_zone) if resume_on else None
        )
        state.pause = PauseState(since=now, reason=reason, resume_at=resume_at)
        if resume_at is not None:
            state.agenda.append(Due(kind=DueKind.RESUME, at=resume_at))
        self._hold_while_paused()

    def resume(self) -> None:
        state = self._state
        pause = state.pause
        if pause is None:
            return
        now = workflow.now()
        state.agenda = [due for due in state.agenda if due.kind is not DueKind.RESUME]
        state.agenda += [self._released(held, now) for held in pause.held]
        state.paused_seconds += (now - pause.since).total_seconds()
        if state.adoption_started_at is not None:
            held_since = max(pause.since, state.adoption_started_at)
            state.adoption_paused_seconds += (now - held_since).total_seconds()
        unannounced = [task for task in state.open_tasks if task.task_id in pause.unannounced]
        state.pause = None
        # The reminders moved on by the pause; the tasks they are for go with them.
        self._tasks_follow_their_reminders()
        if unannounced:
            self._effects.send_in_turn([self._task_email(task) for task in unannounced])
        for event_kind in pause.surveys_held:
            self._send_surveys(event_kind)

    def _hold_while_paused(self) -> None:
        """Move what a pause holds off the agenda, including what was added since
        (a stage entered while paused, steps planned for a purpose added)."""
        pause = self._state.pause
        if pause is None:
            return
        self._state.agenda, held = pausing.hold(self._state.agenda, workflow.now())
        pause.held += held

    def _released(self, held: HeldDue, now: datetime) -> Due:
        """A held item back on the agenda as far ahead as it was when held; a step
        email as many business days ahead, so steps keep their spacing."""
        if held.due.kind is DueKind.CAMPAIGN_STEP:
            return held.due.model_copy(update={"at": self._step_emails.replanned(held, now)})
        return pausing.released(held, now)

    # Waiting and timers

    def _continue_as_new(self) -> NoReturn:
        """The next run carries the playbook as this one got it: apart, it can be stored
        by reference (client/payload_storage.py); inside the input, a worker of an earlier
        version can still run it."""
        carried = OnboardingInput(
            handoff=self._handoff,
            state=self._state,
            max_history_events=self._max_history_events,
        )
        if self._playbook_apart:
            workflow.continue_as_new(args=[carried, self._pinned])
        workflow.continue_as_new(carried.model_copy(update={"playbook": self._pinned}))

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        limit = self._max_history_events
        return limit is not None and info.get_current_history_length() >= limit

    async def _wait_for_something_due(self) -> None:
        self._hold_while_paused()
        next_due = min(self._state.agenda, key=lambda due: due.at, default=None)
        timeout: timedelta | None = None
        if next_due is not None:
            timeout = next_due.at - workflow.now()
            if timeout <= timedelta(0):
                return
        try:
            await workflow.wait_condition(
                lambda: bool(self._effects.queued or self._step_emails.unplanned()), timeout=timeout
            )
        except TimeoutError:
            if next_due is not None:
                self._timer_reached = next_due.at

    async def _fire_due_items(self) -> None:
        self._hold_while_paused()
        # A fired timer's instant has come, whatever the clock says. A worker that took
        # the task over from a killed one was once handed the clock of the task before
        # (temporalio 1.35), found nothing due and started the same timer again: one its
        # replay never starts, which froze the customer. In every other history the
        # clock is past the instant already, so this changes nothing there.
        now = max(workflow.now(), self._timer_reached or workflow.now())
        self._timer_reached = None
        due_now = sorted((d for d in self._state.agenda if d.at <= now), key=lambda d: d.at)
        campaign_steps = sum(d.kind is DueKind.CAMPAIGN_STEP for d in due_now)
        # Histories from before the sequence order keep the agenda's order.
        if campaign_steps > 1 and patches.taken("campaign-step-order"):
            due_now.sort(key=lambda d: (d.at, self._rank(d)))
        self._state.agenda = [d for d in self._state.agenda if d.at > now]
        for due in due_now:
            if self._state.stage.terminal:
                return
            if due.kind is DueKind.REMIND_CSM:
                self._open_task(
                    TaskKind.OVERDUE_REMINDER,
                    self._handoff.csm,
                    f"Overdue: {self._state.stage.value.replace('_', ' ')} not held yet",
                    stage=due.stage,
                )
            elif due.kind is DueKind.ESCALATE_TO_LEADER:
                self._open_task(
                    TaskKind.OVERDUE_ESCALATION,
                    self._handoff.cs_leader,
                    f"Escalation: {self._state.stage.value.replace('_', ' ')} long overdue "
                    f"(CSM {self._handoff.csm})",
                    stage=due.stage,
                )
            elif due.kind is DueKind.MEASURE:
                await self._measure_week(due.window_end)
            elif due.kind is DueKind.MOMENTUM:
                self._state.momentum_requested = True
                self.request_meeting(
                    MeetingKind.MOMENTUM, "onboarding is running long: keep the momentum"
                )
            elif due.kind is DueKind.DEADLINE and self._state.stage in _BEFORE_CRITERIA:
                self._fail()
            elif due.kind is DueKind.CAMPAIGN_STEP and due.ref is not None:
                await self._step_emails.ensure_holidays(now)
                self._step_emails.step_due(due.ref, now)
            elif due.kind is DueKind.TASK_OVERDUE and due.ref is not None:
                self._task_overdue(due.ref)
            elif due.kind is DueKind.RESUME and self._state.pause is not None:
                paused_for = now - self._state.pause.since
                self.resume()
                self._effects.timeline(
                    "resumed",
                    f"resumed as scheduled after {_days(paused_for)}",
                    {"kind": "resumed"},
                )

    def _rank(self, due: Due) -> int:
        """Among items due at the same instant, campaign steps go in their sequence's
        order: a step the daily cap deferred goes before the next one, not after it."""
        if due.kind is not DueKind.CAMPAIGN_STEP or due.ref is None:
            return 0
        found = campaign.find_step(self._playbook.purposes, due.ref)
        return found[1].after_business_days if found else 0

    def _fail(self) -> None:
        handoff = self._handoff
        context = contexts.onboarding_failed(
            customer_name=handoff.name,
            customer_id=handoff.customer_id,
            deadline_days=self._playbook.deadline.days,
            stage=self._state.stage.value,
        )
        self.move_to(Stage.FAILED, "deadline passed without meeting the completion criteria")
        self._open_task(TaskKind.DEADLINE_MISSED, handoff.cs_leader, "Onboarding failed: review")
        self._effects.send(
            SendEmailInput(
                ledger_key=f"failed:{handoff.customer_id}",
                customer_id=handoff.customer_id,
                template=contexts.ONBOARDING_FAILED,
                to=[handoff.cs_leader, handoff.csm],
                context=context,
                category=EmailCategory.OPERATIONAL,
            )
        )

    # Weekly measurement, completion criteria, stall ladder and setup watch

    async def _measure_week(self, window_end: datetime | None) -> None:
        state = self._state
        now = workflow.now()
        # Measurements scheduled before the grace period end their window when they run.
        window_end = window_end or now
        window_start = state.last_measured_at or state.adoption_started_at or now
        measurement: WeeklyMeasurement = await local_activities.execute(
            MeasureActivities.measure_weekly_usage,
            MeasureWeeklyUsageInput(
                customer_id=self._handoff.customer_id,
                week_index=state.week_index + 1,
                window_start=window_start,
                window_end=window_end,
                seats_contracted=self._handoff.seats_contracted,
                quota_contracted=self._handoff.quota_contracted,
                quota_event=self._playbook.quota_event,
                key_actions={p.id: p.key_action for p in self._playbook.purposes},
            ),
            start_to_close_timeout=options.MEASURE_TIMEOUT,
            retry_policy=options.MEASURE_RETRY,
        )
        if state.pause is not None:
            # Paused: the week is measured on its cadence and its usage counted, but
            # no verdict acts on it and it does not count towards weeks running.
            state.week_index = measurement.week_index
            state.last_measured_at = window_end
            self._effects.timeline(
                "paused_measurement",
                f"week {measurement.week_index} measured while paused, not judged: "
                f"active seats {measurement.active_seat_ratio:.0%}, "
                f"{sum(measurement.key_actions.values())} key actions",
                measurement.model_dump(mode="json"),
            )
            self._schedule_measurement(after=window_end)
            return
        verdict = rules.evaluate_week(
            self._playbook,
            measurement,
            goals_agreed=len(state.goals),
            purposes=state.purposes,
            earlier=state.recent_weeks,
        )
        state.week_index = measurement.week_index
        state.recent_weeks = [*state.recent_weeks, verdict][-options.RECENT_WEEKS_KEPT :]
        # The next window starts where this one ended, not when it was judged.
        state.last_measured_at = window_end
        self._effects.timeline(
            "weekly_measurement",
            _verdict_summary(verdict),
            verdict.model_dump(mode="json"),
        )
        self._watch_setup(verdict, now)
        if verdict.criteria_met:
            self._clear_stall("completion criteria met")
            met = ", ".join(_criterion_text(c) for c in verdict.criteria)
            self.move_to(Stage.COMPLETION_REVIEW, f"completion criteria met: {met}")
            return
        if verdict.stalled:
            self._continue_stall(verdict, now)
        else:
            self._clear_stall("usage recovered")
        self._schedule_measurement(after=window_end)

    def _watch_setup(self, verdict: WeekVerdict, now: datetime) -> None:
        setup = self._state.setup
        if verdict.measurement.data_ever_arrived:
            setup.data_arrived = True
            if setup.stuck:
                setup.stuck = False
                self.close_tasks(
                    lambda task: (
                        task.kind in (TaskKind.SETUP_STUCK, TaskKind.SETUP_STUCK_ESCALATION)
                    ),
                    "usage data arrived",
                )
                self._effects.timeline("setup_unstuck", "usage data arrived: setup is done", {})
                self._index()
            return
        # Time paused is not time waited.
        paused = timedelta(seconds=self._state.adoption_paused_seconds)
        waited = now - (self._state.adoption_started_at or now) - paused
        policy = self._playbook.setup
        if waited >= policy.no_data_after and not setup.stuck:
            setup.stuck = True
            setup.stuck_since = now
            self._effects.timeline(
                "setup_stuck",
                f"no usage data for {_days(waited)}: stuck in setup",
                {"waited_seconds": waited.total_seconds()},
            )
            self._open_task(
                TaskKind.SETUP_STUCK,
                self._handoff.csm,
                "Stuck in setup: no usage data has arrived (device or integration?)",
            )
            self._index()
        if waited >= policy.escalate_to_leader_after and setup.stuck and not setup.escalated:
            setup.escalated = True
            self._open_task(
                TaskKind.SETUP_STUCK_ESCALATION,
                self._handoff.cs_leader,
                f"Escalation: still no usage data after {_days(waited)} (CSM {self._handoff.csm})",
            )

    def _continue_stall(self, verdict: WeekVerdict, now: datetime) -> None:
        stall = self._state.stall
        if not stall.stalled:
            stall.stalled = True
            stall.episode += 1
            stall.since = now
            stall.weeks = 0
            stall.steps_done = []
            reasons = ", ".join(_criterion_text(c) for c in verdict.stall_checks if c.met)
            self._effects.timeline(
                "stall_started", f"usage stalled: {reasons}", {"episode": stall.episode}
            )
            self._index()
            if self._playbook.stall.open_meeting_request:
                self.request_meeting(MeetingKind.POOR_PROGRESS, f"usage stalled: {reasons}")
        else:
            stall.weeks += 1
        for index, step in enumerate(self._playbook.stall.ladder):
            if index in stall.steps_done or stall.weeks < step.after_weeks:
                continue
            stall.steps_done.append(index)
            self._climb_ladder(step.action, stall.episode)

    def _climb_ladder(self, action: str, episode: int) -> None:
        handoff = self._handoff
        if action == "proposal_email" and self._step_emails.send_purpose_proposals(episode):
            return
        if action == "proposal_email":
            titles = [
                purpose.title_in(handoff.locale)
                for purpose in self._playbook.purposes
                if purpose.id in self._state.purposes
            ]
            self._effects.send(
                SendEmailInput(
                    ledger_key=f"stall:{episode}:proposal",
                    customer_id=handoff.customer_id,
                    template=contexts.STALL_PROPOSAL,
                    locale=handoff.locale,
                    to_role=Role.ADMINISTRATOR,
                    context=contexts.stall_proposal(
                        customer_name=handoff.name, purpose_titles=titles
                    ),
                    category=EmailCategory.PROPOSAL,
                )
            )
            self._effects.timeline(
                "stall_proposal", "proposal email to the administrators", {"episode": episode}
            )
        elif action == "csm_task":
            self._open_task(
                TaskKind.STALL_FOLLOW_UP,
                handoff.csm,
                "Usage stalled: reach out to the customer",
            )
        else:
            self._open_task(
                TaskKind.STALL_ESCALATION,
                handoff.cs_leader,
                f"Escalation: usage still stalled (CSM {handoff.csm})",
            )

    def _clear_stall(self, cause: str) -> None:
        stall = self._state.stall
        if not stall.stalled:
            return
        stall.stalled = False
        stall.since = None
        self.close_tasks(
            lambda task: task.kind in (TaskKind.STALL_FOLLOW_UP, TaskKind.STALL_ESCALATION),
            cause,
        )
        self._effects.timeline(
            "stall_cleared", f"stall cleared: {cause}", {"episode": stall.episode}
        )
        self._index()

    # Tasks, meetings and contacts: state now, activities queued (events.Operations).

    def add_contact(self, contact: Contact) -> None:
        contact_input = AddContactInput(customer_id=self._handoff.customer_id, contact=contact)
        self._effects.store(StoreActivities.add_contact, contact_input)

    def request_meeting(self, kind: MeetingKind, reason: str) -> None:
        requested = Meeting(kind=kind, requested_at=workflow.now(), notes=reason)
        self._state.meetings = [*self._state.meetings, requested][-limits.MEETINGS_KEPT :]
        already_open = any(
            task.kind is TaskKind.MEETING and task.ref == kind.value
            for task in self._state.open_tasks
        )
        if not already_open:
            title = f"Hold an on-demand meeting ({kind.value.replace('_', ' ')}): {reason}"
            self._open_task(TaskKind.MEETING, self._handoff.csm, title, ref=kind.value)

    def _open_task(
        self,
        kind: TaskKind,
        assignee: str,
        title: str,
        *,
        due_at: datetime | None = None,
        stage: Stage | None = None,
        ref: str | None = None,
    ) -> None:
        handoff = self._handoff
        now = workflow.now()
        self._state.task_seq += 1
        task_id = f"{handoff.customer_id}-{self._state.task_seq}"
        if due_at is None and not self._state.stage.terminal:
            due_at = self._task_due(task_id, kind, now)
        task = OpenTask(
            task_id=task_id,
            kind=kind,
            assignee=assignee,
            title=title,
            opened_at=now,
            due_at=due_at,
            stage=stage,
            ref=ref,
        )
        self._state.open_tasks.append(task)
        task_input = OpenTaskInput(
            task_id=task.task_id,
            customer_id=handoff.customer_id,
            kind=kind,
            assignee=assignee,
            title=title,
            opened_at=now,
            due_at=due_at,
        )
        self._effects.store(StoreActivities.open_task, task_input)
        pause = self._state.pause
        if pause is None:
            self._effects.send(self._task_email(task))
        else:
            # No email while paused: the assignee hears of it on resume if still open.
            pause.unannounced = [*pause.unannounced, task.task_id][-limits.LIST_ITEMS :]
        self._effects.timeline(
            "task_opened", f"task for {assignee}: {title}", {"task_id": task.task_id}
        )

    def _task_due(self, task_id: str, kind: TaskKind, now: datetime) -> datetime | None:
        """A task's due date from the playbook, with its overdue reminder on the agenda.
        Histories from before opened tasks without one."""
        if not patches.taken("task-due-dates"):
            return None
        tasks = self._playbook.tasks
        wait = tasks.meeting_due_after if kind is TaskKind.MEETING else tasks.due_after
        due_at = self._clock(wait, now)
        self._state.agenda.append(Due(kind=DueKind.TASK_OVERDUE, at=due_at, ref=task_id))
        return due_at

    def _task_overdue(self, task_id: str) -> None:
        """The one reminder of a task still open past its due date."""
        task = next((t for t in self._state.open_tasks if t.task_id == task_id), None)
        if task is None or task.due_at is None:
            return
        due_at = task.due_at
        self._effects.timeline(
            "task_overdue",
            f"task for {task.assignee} overdue (due {due_at:%Y-%m-%d %H:%M} UTC): {task.title}",
            {
                "task_id": task.task_id,
                "assignee": task.assignee,
                "title": task.title,
                "due_at": due_at.isoformat(),
            },
        )

    def _task_email(self, task: OpenTask) -> SendEmailInput:
        handoff = self._handoff
        return SendEmailInput(
            ledger_key=f"task:{task.task_id}",
            customer_id=handoff.customer_id,
            template=contexts.TASK_ASSIGNED,
            to=[task.assignee],
            context=contexts.task_assigned(
                customer_name=handoff.name,
                customer_id=handoff.customer_id,
                task_id=task.task_id,
                kind=task.kind.value,
                title=task.title,
                due_at=task.due_at,
                assignee=task.assignee,
            ),
            category=EmailCategory.OPERATIONAL,
        )

    def _store_failed(self, activity: str, reason: str) -> None:
        """A write the database refused for good: the CS leader hears of it (and takes it
        to whoever runs Liftoff); the customer's timers go on."""
        self._open_task(
            TaskKind.STORE_FAILED,
            self._handoff.cs_leader,
            f"Liftoff could not store {activity} for this customer; ask ops: {reason}",
        )

    def close_tasks(self, matches: Callable[[OpenTask], bool], resolution: str) -> None:
        closing = [task for task in self._state.open_tasks if matches(task)]
        if not closing:
            return
        self._state.open_tasks = [task for task in self._state.open_tasks if not matches(task)]
        close_input = CloseTasksInput(
            customer_id=self._handoff.customer_id,
            task_ids=[task.task_id for task in closing],
            closed_at=workflow.now(),
            resolution=resolution,
        )
        self._effects.store(StoreActivities.close_tasks, close_input)

    def _index(self) -> None:
        """Keep Temporal visibility in step, so customers can be listed by stage. Only
        what changed is upserted: each upsert is a history event and a visibility
        write. Histories from before upserted all five at every change of state."""
        updates: list[SearchAttributeUpdate[Any]] = [
            visibility.CUSTOMER_ID.value_set(self._handoff.customer_id),
            visibility.CSM.value_set(self._handoff.csm),
            visibility.STAGE.value_set(self._state.stage.value),
            visibility.STALLED.value_set(self._state.stall.stalled),
            visibility.SETUP_STUCK.value_set(self._state.setup.stuck),
        ]
        if patches.taken(INDEX_CHANGES_ONLY):
            # What the run started with (carried across continue-as-new) and its upserts.
            indexed = workflow.info().typed_search_attributes
            updates = [u for u in updates if indexed.get(u.key) != u.value]
            if not updates:
                return
        workflow.upsert_search_attributes(updates)


def _read(event: RawValue) -> OnboardingEvent | UnreadableEvent:
    if event.payload.metadata.get("encoding") != b"json/plain":
        return UnreadableEvent(kind="unknown", reason="the event must be sent as JSON")
    return read_event(event.payload.data)


def _signal_misuse(name: str, given: int) -> str:
    if name != SUBMIT_EVENT:
        return f"there is no signal {name[: limits.LINE_CHARS]!r}: send events as {SUBMIT_EVENT}"
    if given == 0:
        return f"{SUBMIT_EVENT} takes one event, and none was given"
    return f"{SUBMIT_EVENT} takes one event, and {given} were given"


def _refused(reason: str) -> ApplicationError:
    """A refusal the caller reads as is: one sentence, and no retry will change it."""
    return ApplicationError(reason, type=REFUSED_ERROR_TYPE, non_retryable=True)


def _criterion_text(verdict: Any) -> str:
    subject = verdict.metric.value + (f"[{verdict.purpose}]" if verdict.purpose else "")
    return f"{subject}={verdict.observed:g} (threshold {verdict.threshold:g})"


def _verdict_summary(verdict: WeekVerdict) -> str:
    m = verdict.measurement
    outcome = "criteria met" if verdict.criteria_met else "stalled" if verdict.stalled else "ok"
    summary = (
        f"week {m.week_index}: active seats {m.active_seat_ratio:.0%}, "
        f"{sum(m.key_actions.values())} key actions: {outcome}"
    )
    if m.late_events:
        summary += f"; {m.late_events} events of earlier weeks arrived after their verdict"
    return summary


def _days(span: timedelta) -> str:
    if span >= timedelta(days=1):
        return f"{span.days} days"
    return f"{int(span.total_seconds())} seconds"


def _read_input(given: OnboardingInput | dict[str, Any]) -> OnboardingInput:
    """The start input. A start with one argument (every history from before the playbook
    could travel apart) reaches the workflow as plain JSON: the SDK reads arguments by
    their type hints only when as many came as the workflow takes. It is read here as
    the converter would have read it, and the SDK's copy emptied (it is kept as long as
    the workflow is cached, and holds a whole playbook)."""
    if isinstance(given, OnboardingInput):
        return given
    if not isinstance(given, dict):
        raise _unreadable("start input", "it is not a JSON object")
    try:
        input = OnboardingInput.model_validate_json(json.dumps(given))
    except ValidationError as err:
        raise _unreadable("start input", _first_error(err)) from None
    given.clear()
    return input


def _read_playbook(input: OnboardingInput, given: RawValue) -> Playbook:
    if given.payload.ByteSize() > 0:
        try:
            playbook = workflow.payload_converter().from_payload(given.payload, Playbook)
        except ValidationError as err:
            raise _unreadable("playbook argument", _first_error(err)) from None
        assert isinstance(playbook, Playbook)
        return playbook
    if input.playbook is None:
        raise ApplicationError(
            "the start input has no playbook: start customers with `liftoff start`, "
            "the API or OnboardingClient.start",
            type="NoPlaybook",
            non_retryable=True,
        )
    return input.playbook


def _unreadable(what: str, why: str) -> ApplicationError:
    """A start no retry can mend fails the workflow in one sentence, instead of failing
    its first task over and over."""
    return ApplicationError(
        f"the {what} is not one Liftoff reads: {why}; start customers with `liftoff start`, "
        "the API or OnboardingClient.start",
        type="UnreadableStart",
        non_retryable=True,
    )


def _first_error(err: ValidationError) -> str:
    # Where and what, never the value: it may be a customer's data.
    first = err.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "the value"
    return f"{where}: {first['msg']}"
