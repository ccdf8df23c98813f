"""The workflow's side effects: activities queued by handlers and timers, run by the
main loop in the order they were queued.

Handlers change state synchronously and queue their effects here; only the main loop
awaits them (`drain`), so ordering and continue-as-new stay simple. Every timeline
entry goes through `timeline`, which numbers it (the idempotency key of its write)
and keeps it as unwritten until the activity storing it has returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

import workflows.activity_options as options
import workflows.local_activities as local_activities
import workflows.patches as patches
from activities.mail import MailActivities
from activities.store import StoreActivities
from models.activity_io import (
    OpenTaskInput,
    RecordTimelineInput,
    SendEmailInput,
    StoreBatchInput,
    StoreWrite,
)
from models.onboarding import OnboardingState, TaskKind, TimelineDetails, TimelineRecord
from models.projection import ProjectionSnapshot

Effect = Callable[[], Awaitable[Any]]
STORE_FAILED = "store_failed"
# Histories from before awaited a batch's emails, retries and all, before anything else.
MAIL_BESIDE_THE_LOOP = "mail-beside-the-loop"
# Histories from before wrote each store effect with its own activity.
BATCH_STORE_WRITES = "store-writes-batched"
# Histories from before said nothing of recipients the send left out for an opt-out.
OPT_OUT_TIMELINE = "opt-out-on-timeline"
# The field of StoreWrite each store activity fills.
_BATCH_FIELDS: dict[str, str] = {
    "upsert_customer": "upsert_customer",
    "add_contact": "add_contact",
    "record_timeline": "record_timeline",
    "open_task": "open_task",
    "close_tasks": "close_tasks",
    "move_task_due": "move_task_due",
}


def attempt_stamp(runs: int) -> dict[str, Any]:
    """The workflow task attempt writing now, as fields that order it after every
    earlier one (`attempt_order`, then `attempt_at`).

    A local activity writes inside its workflow task: one whose task then died (its
    worker killed) has written rows that the retried task, maybe with a CSM update
    first, may fill with other content. The store keeps the later attempt's
    (activities/store.py). The order is the run (a continued-as-new journey goes on
    from the last), then the history length the attempt sees: longer for each task,
    and for the first retry of a failed one. The server gives the retries after that
    the same history (an update adds no event until accepted), so the instant the
    attempt began breaks the tie.
    """
    return {
        "attempt_order": runs << 32 | workflow.info().get_current_history_length(),
        "attempt_at": workflow.now(),
    }


@dataclass
class _Mail:
    """Queued emails, sent one after another (see Effects._deliver)."""

    send: Effect

    def __call__(self) -> Awaitable[Any]:
        return self.send()


@dataclass
class _Write:
    """A queued store write: the activity, its input (built when it runs: a timeline
    write takes the customer's snapshot then), and what to do once it is stored."""

    activity: Callable[[Any, Any], Any]
    arg: Callable[[], Any]
    stored: Callable[[], None] | None = None

    @property
    def name(self) -> str:
        return str(getattr(self.activity, "__name__", self.activity))


class Effects:
    def __init__(
        self,
        customer_id: str,
        state: OnboardingState,
        snapshot: Callable[[], ProjectionSnapshot] | None = None,
        *,
        on_store_failed: Callable[[str, str], None] | None = None,
    ) -> None:
        self._customer_id = customer_id
        # What the customer projection needs, taken when each timeline write runs.
        self._snapshot = snapshot
        # Told (activity name, reason) when the database refused a write for good.
        self._on_store_failed = on_store_failed
        # The workflow's state, updated in place: the timeline sequence and failures.
        self._state = state
        self._queue: list[_Mail | _Write] = []
        self._running = 0
        # Emails being sent while the main loop goes on (see drain), and the error of one
        # that broke, for the main loop to raise as if it had awaited it.
        self._sending: set[asyncio.Task[None]] = set()
        self._broken: BaseException | None = None
        self._unwritten: dict[int, TimelineRecord] = {}
        # One email in flight at a time (see _deliver).
        self._mail_turn = asyncio.Lock()

    @property
    def queued(self) -> bool:
        """Whether effects (or a broken email's error) wait for the main loop."""
        return bool(self._queue) or self._broken is not None

    @property
    def pending(self) -> int:
        """Effects queued or running: 0 once all is written and sent."""
        return len(self._queue) + self._running + len(self._sending)

    def unwritten(self) -> list[TimelineRecord]:
        """Timeline entries queued and not yet stored, oldest first."""
        return [entry for _, entry in sorted(self._unwritten.items())]

    def timeline(self, kind: str, summary: str, details: TimelineDetails) -> None:
        self._state.timeline_seq += 1
        entry = TimelineRecord(
            seq=self._state.timeline_seq,
            at=workflow.now(),
            kind=kind,
            stage=self._state.stage,
            summary=summary,
            details=details,
        )
        self._unwritten[entry.seq] = entry
        write = RecordTimelineInput(customer_id=self._customer_id, **entry.model_dump())

        def with_snapshot() -> RecordTimelineInput:
            # The state as the queued work leaves it: the same replay after replay.
            snapshot = self._snapshot() if self._snapshot is not None else None
            return write.model_copy(
                update={"snapshot": snapshot, **attempt_stamp(self._state.runs)}
            )

        def written() -> None:
            self._unwritten.pop(entry.seq, None)

        self._queue.append(_Write(StoreActivities.record_timeline, with_snapshot, written))

    def store(self, activity: Callable[[Any, Any], Any], arg: Any) -> None:
        """Queue one store activity (customer, task, contact)."""

        def stamped() -> Any:
            # Stamped when written, by the attempt that writes it (a task's open).
            if isinstance(arg, OpenTaskInput):
                return arg.model_copy(update=attempt_stamp(self._state.runs))
            return arg

        self._queue.append(_Write(activity, stamped))

    def send(self, email: SendEmailInput) -> None:
        self._queue.append(_Mail(lambda: self._deliver(email)))

    def send_in_turn(self, emails: list[SendEmailInput]) -> None:
        """One after another, not side by side: a worker that dies right after the
        provider took a message can resend only the one message in flight."""

        async def in_turn() -> None:
            for email in emails:
                await self._deliver(email)

        self._queue.append(_Mail(in_turn))

    async def _deliver(self, email: SendEmailInput) -> None:
        """One of the customer's emails at a time, in the order queued: a worker that dies
        right after the provider took a message leaves only that one to be sent again
        (activities/mail.py). Histories from before sent a batch's emails side by side."""
        if patches.taken("mail-one-at-a-time"):
            async with self._mail_turn:
                await self._send(email)
        else:
            await self._send(email)

    async def _send(self, email: SendEmailInput) -> None:
        try:
            result = await workflow.execute_activity_method(
                MailActivities.send_email,
                email,
                start_to_close_timeout=options.MAIL_TIMEOUT,
                retry_policy=options.MAIL_RETRY,
            )
        except ActivityError as err:
            # A send that failed for good is visible state, not a stuck journey.
            reason = str(err.cause or err)
            self._state.failures.append(f"email {email.ledger_key}: {reason}")
            self.timeline("email_failed", f"email {email.template} failed: {reason}", {})
            return
        # Only a send that left someone out gets here, so the marker is written then and
        # a history whose activity said so to an older workflow replays without it.
        if result.opted_out and email.category and patches.taken(OPT_OUT_TIMELINE):
            category = email.category.value
            self.timeline(
                "email_opted_out",
                f"not sent: {', '.join(result.opted_out)} opted out of {category} emails "
                f"({email.ledger_key})",
                {
                    "recipients": list(result.opted_out),
                    "category": category,
                    "ledger_key": email.ledger_key,
                    "template": email.template,
                },
            )

    async def drain(self, *, with_mail: bool = False) -> None:
        """Run everything queued, and whatever that queues, batch by batch; with
        `with_mail`, until every email is sent too (before the run ends or continues
        as new).

        The store writes of one batch go to the database together, in queue order, as
        one activity and one transaction (StoreActivities.store_batch), beside the
        batch's emails; histories from before ran one activity per write.

        Emails are sent beside the main loop, not waited for: a provider's outage
        retries a send for about ten minutes (activity_options.MAIL_RETRY), and the
        customer's CSM events, measurements and timers went on waiting behind it.
        Histories from before waited for them in each batch."""
        while True:
            self._raise_broken()
            while self._queue:
                batch, self._queue = self._queue, []
                mail = [effect for effect in batch if isinstance(effect, _Mail)]
                if mail and patches.taken(MAIL_BESIDE_THE_LOOP):
                    for send in mail:
                        self._send_beside(send)
                    batch = [effect for effect in batch if not isinstance(effect, _Mail)]
                await self._run_batch(batch)
            if not with_mail or not self._sending:
                self._raise_broken()
                return
            await workflow.wait_condition(lambda: not self._sending or self.queued)

    def _send_beside(self, mail: _Mail) -> None:
        async def sending() -> None:
            await mail()

        def done(task: asyncio.Task[None]) -> None:
            self._sending.discard(task)
            if not task.cancelled() and task.exception() is not None and self._broken is None:
                self._broken = task.exception()

        task = asyncio.create_task(sending())
        self._sending.add(task)
        task.add_done_callback(done)

    def _raise_broken(self) -> None:
        """A send's failure is recorded by _send; anything else it raised is a bug, and
        fails the workflow task as it did when the loop awaited the send."""
        if self._broken is not None:
            broken, self._broken = self._broken, None
            raise broken

    async def _run_batch(self, batch: list[_Mail | _Write]) -> None:
        self._running += len(batch)
        try:
            writes = [effect for effect in batch if isinstance(effect, _Write)]
            if len(writes) > 1 and patches.taken(BATCH_STORE_WRITES):
                others = [effect for effect in batch if not isinstance(effect, _Write)]
                await asyncio.gather(self._store_batch(writes), *(effect() for effect in others))
            else:
                await asyncio.gather(*(self._run(effect) for effect in batch))
        finally:
            self._running -= len(batch)

    async def _run(self, effect: _Mail | _Write) -> None:
        if isinstance(effect, _Write):
            await self._store_one(effect, effect.arg())
        else:
            await effect()

    async def _store_one(self, write: _Write, arg: Any) -> None:
        await self._store(write.activity, arg)
        if write.stored is not None:
            write.stored()

    async def _store_batch(self, writes: list[_Write]) -> None:
        args = [write.arg() for write in writes]
        # Every timeline write of the batch took the same snapshot (nothing ran between
        # them): it travels once, with the batch.
        snapshot = next(
            (arg.snapshot for arg in args if isinstance(arg, RecordTimelineInput)), None
        )
        batch = StoreBatchInput(
            customer_id=self._customer_id,
            writes=[
                StoreWrite.model_validate(
                    {
                        _BATCH_FIELDS[write.name]: arg.model_copy(update={"snapshot": None})
                        if isinstance(arg, RecordTimelineInput)
                        else arg
                    }
                )
                for write, arg in zip(writes, args, strict=True)
            ],
            snapshot=snapshot,
        )
        try:
            await local_activities.execute(
                StoreActivities.store_batch,
                batch,
                start_to_close_timeout=options.STORE_TIMEOUT,
                retry_policy=options.STORE_RETRY,
            )
        except local_activities.FAILED:
            # Refused for good: nothing of the batch was kept (one transaction). Write
            # each on its own, in order, so the one the database refuses is named.
            for write, arg in zip(writes, args, strict=True):
                await self._store_one(write, arg)
            return
        for write in writes:
            if write.stored is not None:
                write.stored()

    async def _store(self, activity: Callable[[Any, Any], Any], arg: Any) -> None:
        try:
            await local_activities.execute(
                activity,
                arg,
                start_to_close_timeout=options.STORE_TIMEOUT,
                retry_policy=options.STORE_RETRY,
            )
        except local_activities.FAILED as err:
            # Only an error no retry can mend gets here (options.STORE_FAILS_FOR_GOOD):
            # like a failed email, it becomes visible state, not a stuck or failed journey.
            self._store_failed(getattr(activity, "__name__", str(activity)), arg, err)

    def _store_failed(self, name: str, arg: Any, err: ActivityError | ApplicationError) -> None:
        # An ordinary activity's error wraps the activity's own; a local one's is it.
        cause = (err.cause or err) if isinstance(err, ActivityError) else err
        lines = (getattr(cause, "message", "") or str(cause)).splitlines() or [""]
        reason = lines[0][: options.FAILURE_REASON_CHARS]
        self._state.failures = [*self._state.failures, f"{name}: {reason}"][
            -options.FAILURES_KEPT :
        ]
        # The record of a failure failed too: stop here rather than fail in a loop.
        if (isinstance(arg, RecordTimelineInput) and arg.kind == STORE_FAILED) or (
            isinstance(arg, OpenTaskInput) and arg.kind is TaskKind.STORE_FAILED
        ):
            return
        self.timeline(
            STORE_FAILED,
            f"{name} could not be stored: {reason}",
            {"activity": name, "reason": reason},
        )
        if self._on_store_failed is not None:
            self._on_store_failed(name, reason)
