"""What reaches the workflow's update and signal as raw JSON (a `temporal workflow
update`, another SDK, an integration): read by its kind, refused in one sentence that
names the field, and a refused signal recorded rather than dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from client.errors import CommandRejectedError
from client.onboarding import RECORD_EVENT, SUBMIT_EVENT
from models import limits
from models.events import MeetingRequested, TrainingHeld
from models.onboarding import EventResult, OnboardingStatus, Stage, TaskKind
from testkit.factories import make_handoff
from tests.support.workflow_harness import Harness, open_kinds


async def _refusal(handle: WorkflowHandle[Any, Any], payload: Any) -> ApplicationError:
    # Bounded: a payload the workflow cannot take used to leave the update hanging.
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        async with asyncio.timeout(10):
            await handle.execute_update(RECORD_EVENT, payload, result_type=EventResult)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def _signal_refused(
    h: Harness, handle: WorkflowHandle[Any, Any], payload: Any
) -> OnboardingStatus:
    before = len((await h.status(handle)).state.rejected)
    await handle.signal(SUBMIT_EVENT, payload)
    return await h.wait_for(handle, lambda s: len(s.state.rejected) > before)


async def test_garbage_is_refused_not_read_as_a_meeting_request(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    refused = await _refusal(handle, {"garbage": 1})
    assert refused.message.startswith("the event must name its kind (one of kickoff_held")
    refused = await _refusal(handle, {"kind": "meeting_requested", "garbage": 1})
    assert refused.message == "meeting_requested has no field 'garbage'"

    status = await _signal_refused(h, handle, {"garbage": 1})
    assert status.state.rejected[-1].kind == "unknown"
    assert "must name its kind" in status.state.rejected[-1].reason
    assert status.state.meetings == []
    assert TaskKind.MEETING not in open_kinds(status)
    rows = h.timeline(handoff.customer_id)
    assert "meeting_requested" not in [row.kind for row in rows]
    assert rows[-1].kind == "event_rejected"
    assert rows[-1].summary.startswith("unknown rejected: the event must name its kind")


async def test_a_malformed_signal_is_recorded_as_rejected_not_dropped(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    status = await _signal_refused(h, handle, {"kind": "kickoff_held", "held_on": "2026-02-30"})
    rejected = status.state.rejected[-1]
    assert rejected.kind == "kickoff_held"
    assert rejected.reason.startswith("kickoff_held field 'held_on': input should be a valid date")
    assert status.state.stage is Stage.KICKOFF
    entry = h.timeline(handoff.customer_id)[-1]
    assert entry.kind == "event_rejected"
    assert entry.summary == f"kickoff_held rejected: {rejected.reason}"
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING


async def test_refusals_are_one_sentence_naming_the_field_and_never_retryable(
    h: Harness,
) -> None:
    handle = await h.start(make_handoff())
    malformed = await _refusal(handle, {"kind": "kickoff_held", "held_on": "2026-02-30"})
    out_of_order = await _refusal(handle, TrainingHeld(held_on=await h.today()))
    for refused in (malformed, out_of_order):
        assert refused.non_retryable
        assert refused.type == "EventRefused"
        assert "\n" not in refused.message
    assert "Failed decoding" not in malformed.message
    assert malformed.message == (
        "kickoff_held field 'held_on': input should be a valid date or datetime, "
        "day value is outside expected range"
    )
    assert out_of_order.message == "the training comes after the kickoff: record the kickoff first"

    # The client layer (the CLI, REST and the dashboard) passes the same sentence on.
    customer_id = handle.id.removeprefix("onboarding-")
    with pytest.raises(CommandRejectedError) as rejected:
        await h.onboarding.record(customer_id, TrainingHeld(held_on=await h.today()))
    assert rejected.value.message == out_of_order.message


MEGABYTE_OF_NOTES = {"kind": "meeting_requested", "notes": "x" * 1_000_000}
NOTES_REFUSED = "meeting_requested field 'notes': string should have at most 4000 characters"


async def test_a_megabyte_of_notes_is_refused_before_history_and_the_customer_goes_on(
    h: Harness,
) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    refused = await _refusal(handle, MEGABYTE_OF_NOTES)
    assert refused.message == NOTES_REFUSED
    # A signal is in history once it is sent; it is refused there and never copied.
    status = await _signal_refused(h, handle, MEGABYTE_OF_NOTES)
    assert status.state.rejected[-1].reason == NOTES_REFUSED
    assert status.state.meetings == []
    history = (await handle.fetch_history()).to_json()
    assert len(history) < 1_500_000, "the notes were copied beyond the signal itself"

    # Notes at the bound are welcome; the task title made from them is cut to its column.
    notes = "議事録" * (limits.NOTE_CHARS // 3)
    await h.record(handle, MeetingRequested(notes=notes))
    status = await h.wait_for(handle, lambda s: TaskKind.MEETING in open_kinds(s))
    assert status.state.meetings[-1].notes == notes
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING


async def test_a_signal_with_no_event_or_several_is_recorded_not_a_failed_task(
    h: Harness,
) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    before = len((await h.status(handle)).state.rejected)
    await handle.signal(SUBMIT_EVENT)
    await handle.signal(SUBMIT_EVENT, args=[{"kind": "kickoff_held"}, {"kind": "training_held"}])
    await handle.signal("submit_evnt", {"kind": "kickoff_held"})
    status = await h.wait_for(handle, lambda s: len(s.state.rejected) >= before + 3)
    reasons = [rejected.reason for rejected in status.state.rejected[before:]]
    assert reasons == [
        "submit_event takes one event, and none was given",
        "submit_event takes one event, and 2 were given",
        "there is no signal 'submit_evnt': send events as submit_event",
    ]
    assert status.state.stage is Stage.KICKOFF
    # The workflow went on: a well-formed signal after them is applied.
    await handle.signal(SUBMIT_EVENT, {"kind": "meeting_requested", "notes": "after"})
    status = await h.wait_for(handle, lambda s: TaskKind.MEETING in open_kinds(s))
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    failed_tasks = [
        event
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_task_failed_event_attributes")
    ]
    assert failed_tasks == []
