"""Purpose step emails on the time-skipping server, with the real activities.

What the customer's people receive is read from the outbox (each message names
its ledger key); when it went out, in workflow time, from the timeline.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.client import WorkflowHandle

from activities.calendar import public_holidays_of
from models.events import Cancelled, ContactAdded, PurposeAdded
from models.handoff import Contact, Role
from models.tables import TimelineEntry
from records.email_events import process_events
from testkit.factories import make_handoff, make_playbook, with_steps
from tests.support.workflow_harness import (
    KICKOFF_STEP,
    Harness,
    body_text,
    received,
    save_history,
    through_training,
    until_sent,
)


def campaign_entries(h: Harness, customer_id: str, kind: str) -> list[TimelineEntry]:
    return [e for e in h.timeline(customer_id) if e.kind == kind]


def assert_sent_in_business_hours(
    entries: list[TimelineEntry], time_zone: str, holidays: set[date]
) -> None:
    """Every step went out on a local business day inside 09:00-18:00, one per role per day."""
    zone = ZoneInfo(time_zone)
    per_role_day: Counter[tuple[str, date]] = Counter()
    for entry in entries:
        local = entry.at.replace(tzinfo=entry.at.tzinfo or ZoneInfo("UTC")).astimezone(zone)
        assert local.weekday() < 5, f"{entry.summary} sent on a weekend: {local}"
        assert local.date() not in holidays, f"{entry.summary} sent on a holiday: {local}"
        assert 9 <= local.hour < 18, f"{entry.summary} sent outside the window: {local}"
        for role in entry.details["roles"]:
            per_role_day[(role, local.date())] += 1
    assert max(per_role_day.values(), default=0) <= 1, per_role_day


async def test_each_role_gets_its_steps_once_per_day_and_goal_or_condition_skip_the_rest(
    h: Harness,
) -> None:
    # A's usage reaches its goal; B has none. Nudges after the first measurement.
    playbook = make_playbook(campaign=True)
    for purpose_id in ("A", "B"):
        playbook = with_steps(playbook, purpose_id, nudge={"after_business_days": 8})
    handoff = make_handoff(purposes=["A", "B"], time_zone="Asia/Tokyo")
    handle = await h.start(handoff, playbook)
    await through_training(h, handle)
    for _ in range(3):
        await h.usage(handoff, active_users=8, actions_per_user=5)  # 40 scans: A's goal is 30
        await h.next_week(handle)
    await h.wait_for(handle, lambda s: "B:nudge" in s.state.campaign_done)

    got = received(h)
    assert got["boss@acme.example"] == Counter(
        {"campaign:A:welcome:decision_maker": 1, "campaign:B:welcome:decision_maker": 1}
    )
    assert got["user@acme.example"] == Counter(
        {"campaign:A:welcome:end_user": 1, "campaign:B:welcome:end_user": 1}
    )
    # The setup step is common to both purposes: one email, not two. A's nudge is
    # skipped because A reached its goal; B's goes out.
    assert got["admin@acme.example"] == Counter(
        {
            "campaign:A:welcome:administrator": 1,
            "campaign:B:welcome:administrator": 1,
            "campaign:shared:setup:administrator": 1,
            "campaign:B:nudge:administrator": 1,
        }
    )
    skipped = {
        e.details["ref"]: e.summary
        for e in campaign_entries(h, handoff.customer_id, "campaign_step_skipped")
    }
    assert "A:nudge" in skipped and "reached its goal" in skipped["A:nudge"]
    assert "already went out for another purpose" in next(
        summary for ref, summary in skipped.items() if ref.endswith(":setup")
    )
    # Role-specific content: the decision maker's welcome is not the administrator's.
    bodies = {str(m["X-Liftoff-Ledger-Key"]): body_text(m) for m in h.emails()}
    assert bodies["campaign:A:welcome:decision_maker"] != bodies["campaign:A:welcome:administrator"]

    sent = campaign_entries(h, handoff.customer_id, "campaign_step_sent")
    today = (await h.env.get_current_time()).year
    holidays = set(public_holidays_of("JP", [today - 1, today, today + 1]))
    assert_sent_in_business_hours(sent, "Asia/Tokyo", holidays)

    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("campaign_two_purposes_in_step_order", (await handle.fetch_history()).to_json())


async def test_a_condition_skips_a_step_while_usage_is_already_there(h: Harness) -> None:
    playbook = with_steps(make_playbook(campaign=True), "A", nudge={"after_business_days": 8})
    handoff = make_handoff(purposes=["A"], time_zone="America/New_York")
    handle = await h.start(handoff, playbook)
    await through_training(h, handle)
    for _ in range(3):
        await h.usage(handoff, active_users=4, actions_per_user=2)  # 8 scans: not below 5
        await h.next_week(handle)
    await h.wait_for(handle, lambda s: "A:nudge" in s.state.campaign_done)

    skipped = [
        e
        for e in campaign_entries(h, handoff.customer_id, "campaign_step_skipped")
        if e.details["ref"] != "A:kickoff_prep"  # lapses or not, by how long kickoff lasted
    ]
    assert [e.details["ref"] for e in skipped] == ["A:nudge"]
    assert "8 key actions last week, not below 5" in skipped[0].summary
    assert "campaign:A:nudge:administrator" not in received(h)["admin@acme.example"]

    sent = campaign_entries(h, handoff.customer_id, "campaign_step_sent")
    year = (await h.env.get_current_time()).year
    holidays = set(public_holidays_of("US", [year - 1, year, year + 1]))
    assert_sent_in_business_hours(sent, "America/New_York", holidays)
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_no_purpose_asks_to_choose_then_purposes_added_later_start_without_repeats(
    h: Harness,
) -> None:
    handoff = make_handoff(purposes=[])
    handle = await h.start(handoff, make_playbook(campaign=True))
    await through_training(h, handle)
    await until_sent(h, handle, "choose_purpose")
    got = received(h)
    assert got["boss@acme.example"] == Counter({"campaign:choose_purpose:decision_maker": 1})
    assert got["admin@acme.example"] == Counter({"campaign:choose_purpose:administrator": 1})
    assert "user@acme.example" not in got

    await h.record(handle, PurposeAdded(purpose="C"))
    for ref in ("C:welcome", "C:setup"):
        await until_sent(h, handle, ref)
    await h.record(handle, PurposeAdded(purpose="D"))
    for ref in ("D:welcome", "D:setup"):
        await until_sent(h, handle, ref)

    admin = received(h)["admin@acme.example"]
    assert admin["campaign:C:welcome:administrator"] == 1
    assert admin["campaign:D:welcome:administrator"] == 1
    assert admin["campaign:shared:setup:administrator"] == 1  # not again for D
    # Asked once: a customer that has purposes is not asked again.
    assert admin["campaign:choose_purpose:administrator"] == 1
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("campaign_purpose_added_later", (await handle.fetch_history()).to_json())


async def test_a_contact_added_later_joins_from_the_current_step(h: Harness) -> None:
    handoff = make_handoff(purposes=["A"])
    handle = await h.start(handoff, make_playbook(campaign=True))
    await through_training(h, handle)
    await until_sent(h, handle, "A:welcome")
    newcomer = Contact(
        email="second-admin@acme.example", name="Sam Second", role=Role.ADMINISTRATOR
    )
    await h.record(handle, ContactAdded(contact=newcomer))
    await until_sent(h, handle, "A:setup")

    got = received(h)
    assert got["second-admin@acme.example"] == Counter({"campaign:shared:setup:administrator": 1})
    assert got["admin@acme.example"]["campaign:A:welcome:administrator"] == 1
    assert got["admin@acme.example"]["campaign:shared:setup:administrator"] == 1
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_a_step_names_only_the_roles_the_customer_has_contacts_in(h: Harness) -> None:
    contacts = [
        Contact(email="boss@acme.example", name="Dana Boss", role=Role.DECISION_MAKER),
        Contact(email="admin@acme.example", name="Ari Admin", role=Role.ADMINISTRATOR),
    ]
    handoff = make_handoff(purposes=["A"], contacts=contacts)
    handle = await h.start(handoff, make_playbook(campaign=True))
    await through_training(h, handle)
    await until_sent(h, handle, "A:welcome")

    [welcome] = [
        e
        for e in campaign_entries(h, handoff.customer_id, "campaign_step_sent")
        if e.details["ref"] == "A:welcome"
    ]
    assert welcome.details["roles"] == ["decision_maker", "administrator"]
    assert welcome.details["no_contact"] == ["end_user"]
    assert welcome.summary == (
        "A:welcome sent to the decision_maker, administrator contacts (no end_user contact)"
    )
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_a_steps_roles_are_sent_one_after_another_never_side_by_side(
    h: Harness,
) -> None:
    # A worker killed right after the provider took a message resends only the one in
    # flight: with the roles side by side, every role in flight went out twice.
    handoff = make_handoff(purposes=["A"])
    handle = await h.start(handoff, make_playbook(campaign=True))
    await through_training(h, handle)
    await until_sent(h, handle, "A:welcome")

    scheduled: dict[int, str] = {}
    completed: dict[str, int] = {}
    order: list[str] = []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name == "send_email":
                key = json.loads(attributes.input.payloads[0].data)["ledger_key"]
                if key.startswith("campaign:A:welcome:"):
                    scheduled[event.event_id] = key
                    order.append(key)
        elif event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes.scheduled_event_id
            if done in scheduled:
                completed[scheduled[done]] = event.event_id
    assert [key.rsplit(":", 1)[1] for key in order] == [
        "decision_maker",
        "administrator",
        "end_user",
    ]
    first_id = {key: event_id for event_id, key in scheduled.items()}
    for earlier, later in zip(order, order[1:], strict=False):
        assert completed[earlier] < first_id[later], (earlier, later)
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def test_a_bounced_contact_receives_nothing_more(h: Harness) -> None:
    handoff = make_handoff(purposes=["A"])
    handle = await h.start(handoff, make_playbook(campaign=True))
    await through_training(h, handle)
    await until_sent(h, handle, "A:welcome")
    bounce = [
        {
            "event": "bounce",
            "email": "admin@acme.example",
            "timestamp": int((await h.env.get_current_time()).timestamp()),
            "sg_event_id": "bounce-1",
            "customer_id": handoff.customer_id,
            "ledger_key": "campaign:A:welcome:administrator",
            "reason": "550 mailbox unavailable",
        }
    ]
    report = process_events(
        h.database, json.dumps(bounce).encode(), signature=None, timestamp=None, public_key=None
    )
    assert report.suppressed == ["admin@acme.example"]
    await until_sent(h, handle, "A:setup")

    assert received(h)["admin@acme.example"] == Counter({"campaign:A:welcome:administrator": 1})
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()


async def most_sends_in_flight(handle: WorkflowHandle[Any, Any]) -> int:
    """The most send_email activities the workflow ever had scheduled and unfinished."""
    open_sends: set[int] = set()
    most = 0
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            if event.activity_task_scheduled_event_attributes.activity_type.name == "send_email":
                open_sends.add(event.event_id)
                most = max(most, len(open_sends))
        for ended in (
            "activity_task_completed_event_attributes",
            "activity_task_failed_event_attributes",
            "activity_task_timed_out_event_attributes",
            "activity_task_canceled_event_attributes",
        ):
            if event.HasField(ended):
                open_sends.discard(getattr(event, ended).scheduled_event_id)
    return most


async def test_a_stall_sends_the_proposal_written_for_the_stuck_purpose(h: Harness) -> None:
    handoff = make_handoff(purposes=["A"])
    handle = await h.start(handoff, make_playbook(campaign=True))
    await through_training(h, handle)
    for _ in range(2):  # the stall rules need two weeks running
        await h.usage(handoff, active_users=1, actions_per_user=1)
        status = await h.next_week(handle)
    assert status.state.stall.stalled

    proposals = [
        m
        for m in h.emails()
        if str(m["X-Liftoff-Ledger-Key"]) == "stall:1:A:proposal:administrator"
    ]
    assert [str(m["To"]) for m in proposals] == ["admin@acme.example"]
    note = make_playbook(campaign=True).purpose("A")
    assert note is not None
    step = next(s for s in note.steps if s.trigger == "stall")
    assert step.note["en"][:40] in " ".join(body_text(proposals[0]).split())
    # The generic proposal is for playbooks that wrote none.
    assert not [m for m in h.emails() if str(m["X-Liftoff-Ledger-Key"]) == "stall:1:proposal"]
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    # The stall's task email to the CSM, the escalation and the proposal went out one
    # at a time: a crash can leave at most one message to be sent again.
    assert await most_sends_in_flight(handle) == 1
    save_history("campaign_stall_proposal", (await handle.fetch_history()).to_json())


async def test_steps_are_sent_once_across_continue_as_new(h: Harness) -> None:
    playbook = with_steps(make_playbook(campaign=True), "A", nudge={"after_business_days": 12})
    handoff = make_handoff(purposes=["A"])
    handle = await h.start(handoff, playbook, max_history_events=100)
    await through_training(h, handle)
    for _ in range(5):
        await h.usage(handoff, active_users=3, actions_per_user=1)
        await h.next_week(handle)
    latest = h.client.get_workflow_handle(handle.id)
    status = await h.wait_for(latest, lambda s: "A:nudge" in s.state.campaign_done)
    assert status.state.runs > 1
    # "A@kickoff" too, if the loop planned the kickoff step before the kickoff was held.
    assert "A" in status.state.campaign_planned
    assert set(status.state.campaign_planned) <= {"A", "A@kickoff"}
    admin = received(h)["admin@acme.example"]
    assert admin == Counter(
        {
            "campaign:A:welcome:administrator": 1,
            "campaign:shared:setup:administrator": 1,
            "campaign:A:nudge:administrator": 1,
        }
    )
    await h.record(latest, Cancelled(reason="test over"))
    await latest.result()


async def test_a_kickoff_step_goes_out_once_while_kickoff_lasts_and_lapses_after_it(
    h: Harness,
) -> None:
    handoff = make_handoff(purposes=["A", "B"])
    handle = await h.start(handoff, make_playbook(campaign=True))
    # Shared by A and B: one email to each decision maker and administrator.
    for ref in ("A:kickoff_prep", "B:kickoff_prep"):
        await until_sent(h, handle, ref)
    got = received(h, kickoff_step=True)
    assert got["boss@acme.example"] == Counter({"campaign:shared:kickoff_prep:decision_maker": 1})
    assert got["admin@acme.example"] == Counter({"campaign:shared:kickoff_prep:administrator": 1})
    assert "user@acme.example" not in got
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("campaign_kickoff_step", (await handle.fetch_history()).to_json())

    # Due three business days into kickoff, but the kickoff is held first: it lapses.
    late = with_steps(make_playbook(campaign=True), "A", kickoff_prep={"after_business_days": 3})
    other = make_handoff(purposes=["A"])
    handle = await h.start(other, late)
    await h.wait_for(handle, lambda s: any(d.ref == "A:kickoff_prep" for d in s.state.agenda))
    await through_training(h, handle)
    await until_sent(h, handle, "A:kickoff_prep")
    skipped = campaign_entries(h, other.customer_id, "campaign_step_skipped")
    assert [e.summary for e in skipped if e.details["ref"] == "A:kickoff_prep"] == [
        "A:kickoff_prep skipped: the kickoff stage is over"
    ]
    assert not any(
        KICKOFF_STEP in str(m["X-Liftoff-Ledger-Key"])
        and other.customer_id in str(m["X-Liftoff-Customer"])
        for m in h.emails()
    )
    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
