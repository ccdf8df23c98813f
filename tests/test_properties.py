"""Property tests: whatever is sent (generated events as updates, signals and API calls;
generated handoffs and playbooks at the start), no workflow task fails, and the answer
is an acceptance or a one-sentence refusal.

One worker and one Temporal environment serve the whole module; examples are bounded
so the module stays within seconds.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from client.handoffs import UnknownPurposeError, check_purposes
from client.onboarding import RECORD_EVENT, SUBMIT_EVENT
from models import visibility
from models.events import EVENT_MODELS, MeetingKind
from models.handoff import CustomerHandoff
from models.onboarding import EventResult, OnboardingInput, OnboardingStatus
from models.playbook import Playbook
from records.database import Database
from testkit.factories import make_handoff, make_playbook
from tests.support.api_harness import ApiHarness
from tests.support.eventually import eventually
from tests.support.temporal import onboarding_worker
from workflows.onboarding import CustomerOnboardingWorkflow

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# A refusal is one line: a reading problem is capped at 300 characters
# (models.events.refusal_sentence); a rule's refusal may quote what was typed, such as
# a goal of up to 500 characters.
SENTENCE_CHARS = 1_000

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_FIELDS = sorted(
    {name for model in EVENT_MODELS.values() for name in model.model_fields} - {"kind"}
)
_field_values = st.one_of(
    _json,
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)).map(str),
    st.sampled_from(["2026-02-30", "A", "Z", "x@acme.example", "nope"]),
    st.sampled_from([kind.value for kind in MeetingKind]),
    st.text(max_size=5_000),
    st.lists(st.text(max_size=600), max_size=60),
    st.fixed_dictionaries(
        {"email": st.sampled_from(["new@acme.example", "bad"]), "name": st.text(max_size=3)},
        optional={"role": st.sampled_from(["end_user", "ceo"])},
    ),
)
# Mostly events naming a known kind with some of the union's fields; sometimes any JSON.
event_payloads = st.one_of(
    _json,
    st.builds(
        lambda kind, fields: {"kind": kind, **fields},
        st.sampled_from(sorted(EVENT_MODELS)),
        st.dictionaries(st.sampled_from(_FIELDS), _field_values, max_size=4),
    ),
    st.builds(
        lambda kind, fields: {"kind": kind, **fields},
        st.text(max_size=10),
        st.dictionaries(st.text(max_size=10), _json, max_size=2),
    ),
)


class Customers:
    """Customers on one worker, a new one whenever the last has ended."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.started: list[WorkflowHandle[Any, Any]] = []

    async def start(self, handoff: CustomerHandoff, playbook: Playbook) -> WorkflowHandle[Any, Any]:
        handle = await self.client.start_workflow(
            CustomerOnboardingWorkflow.run,
            OnboardingInput(handoff=handoff, playbook=playbook),
            id=visibility.workflow_id_for(handoff.customer_id),
            task_queue=self.task_queue,
        )
        self.started.append(handle)
        return handle

    async def current(self) -> WorkflowHandle[Any, Any]:
        if self.started and not (await self.status(self.started[-1])).state.stage.terminal:
            return self.started[-1]
        return await self.start(make_handoff(), make_playbook())

    async def status(self, handle: WorkflowHandle[Any, Any]) -> OnboardingStatus:
        return await handle.query(CustomerOnboardingWorkflow.status)


@pytest.fixture(scope="module")
async def customers(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Customers]:
    """On the dev server: nothing here waits for days, and the time-skipping server's
    clock stays the other tests' (a playbook example left its next sleep failing)."""
    env = local_env
    folder = tmp_path_factory.mktemp("properties")
    database = Database(f"sqlite:///{folder / 'liftoff.db'}")
    database.migrate()
    task_queue = f"properties-{uuid.uuid4()}"
    try:
        async with onboarding_worker(env.client, task_queue, database, folder / "outbox"):
            found = Customers(env.client, task_queue)
            yield found
            for handle in found.started:
                failures = await _task_failures(handle)
                assert not failures, f"{handle.id}: {failures}"
                with contextlib.suppress(RPCError):  # already ended
                    await handle.terminate("properties checked")
    finally:
        database.dispose()


# The server's own retries of a task (a signal arrived while it completed; a worker
# went away; the test terminated the workflow meanwhile) are routine; any other
# failed task is the workflow code failing.
_ROUTINE = {
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_STICKY_TASK_QUEUE,
}
# Terminating a workflow while its task runs fails that task (FORCE_CLOSE_COMMAND):
# routine when the test terminated it, not when the server did (a limit). The dev
# server keeps its own reason and puts the caller's in the details.
_TERMINATED_BY_TEST = "checked"


async def _task_failures(handle: WorkflowHandle[Any, Any]) -> list[str]:
    history = await handle.fetch_history()
    failed = [
        event.workflow_task_failed_event_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]
    terminated_by_test = any(
        _TERMINATED_BY_TEST in str(event.workflow_execution_terminated_event_attributes)
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED
    )
    force_closed = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND
    return [
        f"{WorkflowTaskFailedCause.Name(task.cause)}: {task.failure.message}"
        for task in failed
        if task.cause not in _ROUTINE and not (task.cause == force_closed and terminated_by_test)
    ]


def _is_one_sentence(text: str) -> bool:
    return bool(text) and "\n" not in text and len(text) <= SENTENCE_CHARS


@EXAMPLES
@given(payload=event_payloads)
async def test_any_update_is_accepted_or_refused_in_one_sentence(
    customers: Customers, payload: Any
) -> None:
    handle = await customers.current()
    try:
        result = await handle.execute_update(RECORD_EVENT, payload, result_type=EventResult)
    except WorkflowUpdateFailedError as err:
        refusal = err.cause
        assert isinstance(refusal, ApplicationError), refusal
        assert refusal.non_retryable
        assert _is_one_sentence(refusal.message), refusal.message
    else:
        assert result.kind == payload["kind"]
    assert not await _task_failures(handle)


@EXAMPLES
@given(payload=event_payloads)
async def test_any_signal_is_applied_or_recorded_as_rejected(
    customers: Customers, payload: Any
) -> None:
    handle = await customers.current()
    before = (await customers.status(handle)).state
    await handle.signal(SUBMIT_EVENT, payload)
    event_id = payload.get("event_id") if isinstance(payload, dict) else None
    duplicate = isinstance(event_id, str) and event_id in before.seen_event_ids
    # Applied or rejected, each writes a timeline entry; a redelivered event id, none.
    after = await eventually(
        lambda: customers.status(handle),
        lambda s: duplicate or s.state.timeline_seq > before.timeline_seq,
        what="the signal handled",
        interval=0.02,
    )
    for rejected in after.state.rejected:
        assert _is_one_sentence(rejected.reason), rejected.reason
    assert not await _task_failures(handle)


_handoff_fields = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=300),
        "csm": st.sampled_from(["csm@liftoff.example", "not-an-email", "x" * 400 + "@a.jp"]),
        "contacts": st.lists(
            st.fixed_dictionaries(
                {
                    "email": st.emails(),
                    "name": st.text(min_size=1, max_size=250),
                    "role": st.sampled_from(["end_user", "administrator", "ceo"]),
                }
            ),
            max_size=4,
        ),
        "seats_contracted": st.integers(min_value=-1, max_value=20_000_000),
        "quota_contracted": st.none() | st.floats(allow_nan=False, allow_infinity=False),
        "time_zone": st.sampled_from(["UTC", "Asia/Tokyo", "Mars/Olympus", ""]),
        "locale": st.sampled_from(["en", "ja", "fr"]),
        "purposes": st.lists(st.sampled_from(["A", "B", "Z", "a" * 40]), max_size=4),
        "handoff_notes": st.text(max_size=12_000),
        "measurement_weekday": st.none() | st.integers(min_value=-1, max_value=8),
    },
)


@settings(EXAMPLES, max_examples=15)
@given(fields=_handoff_fields)
async def test_any_handoff_is_refused_at_the_door_or_starts_a_customer(
    customers: Customers, fields: dict[str, Any]
) -> None:
    base = make_handoff().model_dump(mode="json")
    playbook = make_playbook()
    try:
        handoff = CustomerHandoff.model_validate({**base, **fields})
        check_purposes(handoff, playbook)
    except (ValidationError, UnknownPurposeError):
        return
    handle = await customers.start(handoff, playbook)
    await eventually(
        lambda: customers.status(handle),
        lambda s: s.state.stage.value == "kickoff" and s.pending_side_effects == 0,
        what="the customer started",
        interval=0.05,
    )
    assert not await _task_failures(handle)
    await handle.terminate("handoff checked")


_PLAYBOOK_EDITS = st.one_of(
    st.tuples(st.just(("name",)), st.text(max_size=300)),
    st.tuples(st.just(("version",)), st.text(max_size=100)),
    st.tuples(st.just(("onboarded_definition",)), st.text(max_size=5_000)),
    st.tuples(st.just(("purposes", 0, "title")), st.text(max_size=300)),
    st.tuples(st.just(("purposes", 0, "key_action")), st.text(max_size=300)),
    st.tuples(st.just(("purposes", 0, "outcome")), st.text(max_size=600)),
    st.tuples(st.just(("quota_event",)), st.none() | st.text(max_size=300)),
    st.tuples(st.just(("completion_criteria", 0, "weeks")), st.integers(-1, 20)),
    st.tuples(st.just(("deadline",)), st.sampled_from(["1d", "400d", "0s", "junk"])),
)


@settings(EXAMPLES, max_examples=15)
@given(edit=_PLAYBOOK_EDITS)
async def test_any_playbook_is_refused_when_read_or_carries_a_customer(
    customers: Customers, edit: tuple[tuple[str | int, ...], Any]
) -> None:
    path, value = edit
    data = json.loads(make_playbook().model_dump_json())
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError:
        return
    handle = await customers.start(make_handoff(), playbook)
    today = (await customers.client.get_workflow_handle(handle.id).describe()).start_time.date()
    try:
        await handle.execute_update(
            RECORD_EVENT, {"kind": "kickoff_held", "held_on": str(today)}, result_type=EventResult
        )
    except WorkflowUpdateFailedError as err:
        assert isinstance(err.cause, ApplicationError)
        assert _is_one_sentence(err.cause.message)
    assert not await _task_failures(handle)
    await handle.terminate("playbook checked")


@settings(EXAMPLES, max_examples=15)
@given(payload=event_payloads)
async def test_any_api_call_is_accepted_or_refused_never_a_server_error(
    api: ApiHarness, payload: Any
) -> None:
    async with api.as_lead() as lead:
        customer_id = _api_customer.get("id")
        if customer_id is None:
            response = await lead.post(
                "/api/customers", json=make_handoff().model_dump(mode="json")
            )
            customer_id = _api_customer["id"] = response.json()["customer_id"]
            await api.past_handoff(customer_id)
        response = await lead.post(f"/api/customers/{customer_id}/events", json=payload)
    assert response.status_code in (200, 409, 422), response.text
    if response.status_code == 409:
        assert _is_one_sentence(response.json()["detail"])
    if response.status_code == 200:
        _api_customer.clear()  # an accepted event may have ended it: start another next


# The API harness is per test, so the customer it holds is kept only for one test's examples.
_api_customer: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _fresh_api_customer() -> None:
    _api_customer.clear()
