"""One customer's adjustments of its playbook: `effective()` applies them through the
playbook's own schema and names what does not fit; on the time-skipping server the
workflow follows them, records them, keeps them across continue-as-new, and carries
them to a new playbook version or refuses the move with the reason."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowHandle

from api.dashboard.i18n import JA, Translator
from api.dashboard.overrides import in_words
from cli import connections
from cli.main import main
from client.errors import CommandRejectedError
from models.events import Cancelled
from models.handoff import CustomerHandoff
from models.migration import MigrationRequest
from models.onboarding import DueKind, OnboardingStatus, Stage, TaskKind
from models.overrides import (
    CustomerOverrides,
    OverriddenValue,
    OverridesError,
    OverrideSetting,
    OverridesRequest,
    StageTimerOverride,
    deadline_at,
    effective,
)
from models.playbook import Playbook
from models.tables import Task
from records.tokens import TokenRole
from testkit.factories import make_handoff, make_playbook
from tests.support.api_harness import CSM, OTHER_CSM, ApiHarness
from tests.support.eventually import eventually
from tests.support.workflow_harness import (
    Harness,
    open_kinds,
    received,
    save_history,
    through_training,
    until_sent,
)

DAY = timedelta(days=1)
START = datetime(2027, 1, 4, 1, 0, tzinfo=UTC)


def aligned() -> Playbook:
    """The shipped playbook measuring on its weekday and hour, as it ships."""
    playbook = make_playbook(campaign=True)
    measurement = playbook.measurement.model_copy(update={"align_to_weekday": True})
    return playbook.model_copy(update={"measurement": measurement})


def adjusting(reason: str = "the customer's fiscal year ends in March", **fields: Any) -> Any:
    return OverridesRequest(
        overrides=CustomerOverrides(**fields), reason=reason, requested_by="csm@liftoff.example"
    )


def due_at(status: OnboardingStatus, kind: DueKind) -> datetime:
    return next(d.at for d in status.state.agenda if d.kind is kind)


# effective(): the playbook as one customer follows it


def test_no_overrides_is_the_playbook_itself() -> None:
    playbook = make_playbook()
    assert effective(playbook, None) is playbook
    assert effective(playbook, CustomerOverrides()) is playbook


def test_each_override_replaces_the_playbook_value_and_nothing_else() -> None:
    playbook = aligned()
    adjusted = effective(
        playbook,
        CustomerOverrides(
            thresholds={"active_seat_ratio": 0.4},
            timers={"kickoff": StageTimerOverride(remind_csm_after=timedelta(days=3))},
            measurement_weekday=2,
            measurement_hour=14,
            deadline=date(2027, 9, 30),
            skip_steps=["A:nudge"],
        ),
        started_at=START,
        time_zone="Asia/Tokyo",
    )
    criteria = {c.metric.value: c.at_least for c in adjusted.completion_criteria}
    assert criteria["active_seat_ratio"] == 0.4
    assert criteria["key_actions"] == 20  # untouched
    # The escalation keeps the playbook's gap (7 days) after the new reminder.
    assert adjusted.timers.kickoff.remind_csm_after == 3 * DAY
    assert adjusted.timers.kickoff.escalate_to_leader_after == 10 * DAY
    assert adjusted.timers.training == playbook.timers.training
    assert (adjusted.measurement.weekday, adjusted.measurement.local_hour) == (2, 14)
    assert START + adjusted.deadline == deadline_at(date(2027, 9, 30), "Asia/Tokyo")
    purpose = adjusted.purpose("A")
    assert purpose is not None and "nudge" not in [s.id for s in purpose.steps]
    assert adjusted.version == playbook.version
    # The pinned playbook is left as it was.
    assert playbook.completion_criteria[0].at_least == 0.6


@pytest.mark.parametrize(
    ("fields", "sentence"),
    [
        (
            {"thresholds": {"logins": 3}},
            "has no completion criterion logins (it has active_seat_ratio, key_actions",
        ),
        ({"timers": {"adoption": {"remind_csm_after": "3d"}}}, "has no stage timer adoption"),
        ({"skip_steps": ["A:farewell"]}, "has no step A:farewell"),
        (
            {"timers": {"kickoff": {"remind_csm_after": "9d", "escalate_to_leader_after": "8d"}}},
            "the kickoff escalation (8d) must come after its reminder (9d)",
        ),
        ({"deadline": "2027-02-01"}, "the deadline 2027-02-01 must come after the momentum"),
        ({"deadline": "2031-01-01"}, "more than 1096 days after the start"),
    ],
)
def test_what_the_playbook_cannot_take_is_refused_with_a_sentence_naming_it(
    fields: dict[str, Any], sentence: str
) -> None:
    with pytest.raises(OverridesError, match=re.escape(sentence)):
        effective(aligned(), CustomerOverrides(**fields), started_at=START, time_zone="UTC")


def test_a_playbook_measuring_from_adoption_takes_no_weekday() -> None:
    with pytest.raises(OverridesError, match="not on a weekday and hour"):
        effective(make_playbook(), CustomerOverrides(measurement_weekday=3))


@pytest.mark.parametrize(
    "fields",
    [
        {"thresholds": {"active_seat_ratio": -0.1}},
        {"thresholds": {"key_actions": 2e9}},
        {"timers": {"kickoff": {"remind_csm_after": "400d"}}},
        {"timers": {"kickoff": {}}},
        {"measurement_weekday": 7},
        {"measurement_hour": 24},
        {"skip_steps": ["nudge"]},
        {"skip_steps": [f"A:s{i}" for i in range(51)]},
        {"thresholds": {f"c{i}": 1 for i in range(51)}},
        {"colour": "blue"},
    ],
)
def test_every_field_is_bounded(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CustomerOverrides.model_validate(fields)


def test_a_reason_is_required_and_bounded() -> None:
    with pytest.raises(ValidationError):
        OverridesRequest(overrides=CustomerOverrides(), reason="", requested_by="csm")
    with pytest.raises(ValidationError):
        OverridesRequest(overrides=CustomerOverrides(), reason="x" * 501, requested_by="csm")


# The workflow


async def test_an_overridden_timer_and_threshold_are_followed_and_recorded(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    before = await h.status(handle)
    started = before.state.started_at
    assert started is not None

    result = await h.onboarding.set_overrides(
        handoff.customer_id,
        adjusting(
            thresholds={"active_seat_ratio": 0.3},
            timers={"kickoff": StageTimerOverride(remind_csm_after=timedelta(days=2))},
        ),
    )
    assert {v.name: (v.playbook, v.customer) for v in result.overridden} == {
        "threshold active_seat_ratio": ("0.6", "0.3"),
        "kickoff remind_csm_after": ("7d", "2d"),
    }
    status = await h.wait_for(handle, lambda s: s.state.overrides is not None)
    assert due_at(status, DueKind.REMIND_CSM) == started + 2 * DAY
    assert due_at(status, DueKind.ESCALATE_TO_LEADER) == started + 9 * DAY
    assert [v.name for v in status.overridden] == [v.name for v in result.overridden]
    entry = next(e for e in h.timeline(handoff.customer_id) if e.kind == "overrides_set")
    assert entry.details["by"] == "csm@liftoff.example"
    assert entry.details["reason"] == "the customer's fiscal year ends in March"
    assert "active_seat_ratio >= 0.3" in entry.summary

    await h.env.sleep(2 * DAY + timedelta(hours=1))
    status = await h.wait_for(handle, lambda s: TaskKind.OVERDUE_REMINDER in open_kinds(s))

    await through_training(h, handle)
    # 40% of the seats, two weeks running: enough for this customer, not the playbook.
    await h.usage(handoff, active_users=4, actions_per_user=6, quota_units=40)
    await h.next_week(handle)
    await h.usage(handoff, active_users=4, actions_per_user=6)
    status = await h.next_week(handle)
    assert status.state.stage is Stage.COMPLETION_REVIEW
    ratio = status.state.recent_weeks[-1].criteria[0]
    assert (ratio.observed, ratio.threshold, ratio.met) == (0.4, 0.3, True)
    save_history("overrides_set_in_kickoff", (await handle.fetch_history()).to_json())


async def test_a_skipped_step_is_never_sent_the_others_are(h: Harness) -> None:
    handoff = make_handoff(purposes=["A"])
    handle = await h.start(handoff, make_playbook(campaign=True))
    await through_training(h, handle)
    status = await h.wait_for(handle, lambda s: any(d.ref == "A:nudge" for d in s.state.agenda))

    result = await h.onboarding.set_overrides(
        handoff.customer_id, adjusting("they asked for fewer emails", skip_steps=["A:nudge"])
    )
    assert [(s.ref, s.change) for s in result.plan.steps] == [("A:nudge", "dropped")]
    await until_sent(h, handle, "A:setup")
    await h.env.sleep(21 * DAY)
    status = await h.wait_for(handle, lambda s: True)

    keys = Counter(key for got in received(h).values() for key in got.elements())
    assert not any(":nudge:" in key for key in keys), keys
    assert any(key.startswith("campaign:shared:setup:") for key in keys), keys
    assert any(key.startswith("campaign:A:welcome:") for key in keys), keys
    assert not any(d.ref == "A:nudge" for d in status.state.agenda)
    save_history("overrides_skip_step", (await handle.fetch_history()).to_json())


async def test_a_deadline_date_fails_the_customer_at_the_end_of_that_local_day(
    h: Harness,
) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    started = (await h.status(handle)).state.started_at
    assert started is not None
    day = (started + 120 * DAY).date()
    await h.onboarding.set_overrides(handoff.customer_id, adjusting(deadline=day))
    status = await h.wait_for(handle, lambda s: s.state.overrides is not None)
    assert due_at(status, DueKind.DEADLINE) == deadline_at(day, handoff.time_zone)

    await h.env.sleep(deadline_at(day, handoff.time_zone) - started + timedelta(hours=1))
    status = await h.wait_for(handle, lambda s: s.state.stage.terminal)
    assert status.state.stage is Stage.FAILED


async def test_bad_overrides_are_refused_before_history_and_nothing_is_lost(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    await h.onboarding.set_overrides(handoff.customer_id, adjusting(thresholds={"key_actions": 10}))
    with pytest.raises(CommandRejectedError, match="has no step A:farewell"):
        await h.onboarding.set_overrides(handoff.customer_id, adjusting(skip_steps=["A:farewell"]))
    yesterday = await h.today() - DAY
    with pytest.raises(CommandRejectedError, match="must be after the customer's today"):
        await h.onboarding.set_overrides(handoff.customer_id, adjusting(deadline=yesterday))
    # The measured seat ratio stops at 1: a threshold of 4 would never let it onboard.
    with pytest.raises(CommandRejectedError, match="active_seat_ratio 4 can never be reached"):
        await h.onboarding.set_overrides(
            handoff.customer_id, adjusting(thresholds={"active_seat_ratio": 4})
        )
    status = await h.status(handle)
    assert status.state.overrides == CustomerOverrides(thresholds={"key_actions": 10})
    entries = [e for e in h.timeline(handoff.customer_id) if e.kind == "overrides_set"]
    assert len(entries) == 1


async def test_clearing_the_overrides_puts_the_playbook_values_back(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff)
    started = (await h.status(handle)).state.started_at
    assert started is not None
    timer = StageTimerOverride(remind_csm_after=timedelta(days=3))
    await h.onboarding.set_overrides(handoff.customer_id, adjusting(timers={"kickoff": timer}))
    await h.onboarding.set_overrides(handoff.customer_id, adjusting("back to the kata"))
    status = await h.wait_for(handle, lambda s: s.state.overrides is None)
    assert due_at(status, DueKind.REMIND_CSM) == started + 7 * DAY
    assert status.overridden == []


async def test_overrides_survive_continue_as_new(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff, max_history_events=100)
    overrides = CustomerOverrides(thresholds={"key_actions": 5})
    await h.onboarding.set_overrides(
        handoff.customer_id, adjusting(thresholds=overrides.thresholds)
    )
    await through_training(h, handle)
    for _ in range(6):
        await h.usage(handoff, active_users=1, actions_per_user=1)
        status = await h.next_week(handle)
        if status.state.runs > 1:
            break
    status = await h.wait_for(handle, lambda s: s.state.runs > 1, seconds=30)
    assert status.state.overrides == overrides
    await h.usage(handoff, active_users=1, actions_per_user=1)
    status = await h.next_week(handle)
    key_actions = next(
        c for c in status.state.recent_weeks[-1].criteria if c.metric == "key_actions"
    )
    assert key_actions.threshold == 5
    assert [v.name for v in status.overridden] == ["threshold key_actions"]


async def test_overrides_survive_a_migration_and_then_continue_as_new(h: Harness) -> None:
    old = make_playbook()
    # Version 2 asks 30 key actions a week of every customer; this one keeps its 5.
    criteria = [
        c.model_copy(update={"at_least": 30}) if c.metric == "key_actions" else c
        for c in old.completion_criteria
    ]
    new = version(old, "2", completion_criteria=criteria)
    handoff = make_handoff()
    handle = await h.start(handoff, old, max_history_events=100)
    await h.onboarding.set_overrides(handoff.customer_id, adjusting(thresholds={"key_actions": 5}))
    await h.onboarding.migrate(handoff.customer_id, migrating(new))
    await through_training(h, handle)
    for _ in range(6):
        await h.usage(handoff, active_users=1, actions_per_user=1)
        status = await h.next_week(handle)
        if status.state.runs > 1:
            break
    status = await h.wait_for(handle, lambda s: s.state.runs > 1, seconds=30)
    assert status.playbook_version == "2"
    await h.usage(handoff, active_users=1, actions_per_user=1)
    status = await h.next_week(handle)
    key_actions = next(
        c for c in status.state.recent_weeks[-1].criteria if c.metric == "key_actions"
    )
    assert key_actions.threshold == 5
    assert {v.name: (v.playbook, v.customer) for v in status.overridden} == {
        "threshold key_actions": ("30", "5")
    }


def version(playbook: Playbook, name: str, **changes: Any) -> Playbook:
    return playbook.model_copy(update={"version": name, **changes})


def migrating(playbook: Playbook) -> MigrationRequest:
    return MigrationRequest(playbook=playbook, reason="a new kata", requested_by="lead")


async def _started_before_a_later_kickoff_reminder(
    h: Harness,
) -> tuple[CustomerHandoff, WorkflowHandle[Any, Any], Playbook, datetime]:
    """A customer on the test playbook (kickoff reminder after 7 days), the version 2
    that reminds after 9, and when the customer started."""
    old = make_playbook()
    kickoff = old.timers.kickoff.model_copy(update={"remind_csm_after": 9 * DAY})
    new = version(old, "2", timers=old.timers.model_copy(update={"kickoff": kickoff}))
    handoff = make_handoff()
    handle = await h.start(handoff, old)
    started = (await h.status(handle)).state.started_at
    assert started is not None
    return handoff, handle, new, started


async def test_a_migration_keeps_the_overrides_on_the_new_version(h: Harness) -> None:
    handoff, handle, new, started = await _started_before_a_later_kickoff_reminder(h)
    timer = StageTimerOverride(remind_csm_after=2 * DAY)
    await h.onboarding.set_overrides(handoff.customer_id, adjusting(timers={"kickoff": timer}))

    preview = await h.onboarding.preview_migration(handoff.customer_id, new)
    assert preview.refused is None
    assert not [t for t in preview.timers if t.kind is DueKind.REMIND_CSM]
    await h.onboarding.migrate(handoff.customer_id, migrating(new))
    status = await h.wait_for(handle, lambda s: s.playbook_version == "2")
    # The customer's 2 days stand; the new version's 9 days are for the others.
    assert due_at(status, DueKind.REMIND_CSM) == started + 2 * DAY
    assert status.state.overrides is not None
    assert {v.name: v.playbook for v in status.overridden} == {"kickoff remind_csm_after": "9d"}


async def test_the_scheduling_task_is_due_when_the_moved_reminder_fires(h: Harness) -> None:
    """The README: a stage's scheduling task is due when its reminder fires. An
    adjustment or a migration moved the reminder and left the task's date behind."""
    handoff, handle, new, started = await _started_before_a_later_kickoff_reminder(h)

    def scheduling_due(status: OnboardingStatus) -> tuple[datetime | None, datetime | None]:
        task = next(t for t in status.state.open_tasks if t.kind is TaskKind.SCHEDULE_KICKOFF)
        with h.database.session() as session:
            row = session.get(Task, task.task_id)
        assert row is not None
        return task.due_at, row.due_at

    assert scheduling_due(await h.status(handle)) == (started + 7 * DAY,) * 2
    timer = StageTimerOverride(remind_csm_after=2 * DAY)
    await h.onboarding.set_overrides(handoff.customer_id, adjusting(timers={"kickoff": timer}))
    status = await h.wait_for(handle, lambda s: s.state.overrides is not None)
    assert due_at(status, DueKind.REMIND_CSM) == started + 2 * DAY
    assert scheduling_due(status) == (started + 2 * DAY,) * 2

    await h.onboarding.set_overrides(handoff.customer_id, adjusting("back to the kata"))
    await h.onboarding.migrate(handoff.customer_id, migrating(new))
    status = await h.wait_for(handle, lambda s: s.playbook_version == "2")
    assert due_at(status, DueKind.REMIND_CSM) == started + 9 * DAY
    assert scheduling_due(status) == (started + 9 * DAY,) * 2
    await h.onboarding.record(handoff.customer_id, Cancelled(reason="test over"))
    await handle.result()
    save_history("scheduling_task_follows_reminder", (await handle.fetch_history()).to_json())


async def test_a_migration_the_overrides_do_not_fit_is_refused_with_the_reason(
    h: Harness,
) -> None:
    old = make_playbook()
    new = version(
        old,
        "2",
        completion_criteria=[c for c in old.completion_criteria if c.metric != "quota_consumption"],
    )
    handoff = make_handoff()
    handle = await h.start(handoff, old)
    await h.onboarding.set_overrides(
        handoff.customer_id, adjusting(thresholds={"quota_consumption": 0.1})
    )
    reason = (
        "the customer's overrides do not fit version 2: playbook 2 has no completion "
        "criterion quota_consumption"
    )
    preview = await h.onboarding.preview_migration(handoff.customer_id, new)
    assert (preview.refused or "").startswith(reason)
    with pytest.raises(CommandRejectedError, match=re.escape(reason)):
        await h.onboarding.migrate(handoff.customer_id, migrating(new))
    assert (await h.status(handle)).playbook_version == old.version


# The CLI: `liftoff adjust`


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit:  # argparse refusals
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_client(monkeypatch: pytest.MonkeyPatch, h: Harness) -> Harness:
    """`liftoff` commands reach the harness's worker through the real client."""

    async def client(settings: Any) -> Any:
        return h.onboarding

    monkeypatch.setattr(connections, "onboarding_client", client)
    return h


async def test_adjust_adds_to_the_earlier_adjustments_and_shows_them_beside_the_playbook(
    capsys: pytest.CaptureFixture[str], cli_client: Harness
) -> None:
    h = cli_client
    handoff = make_handoff()
    handle = await h.start(handoff)
    args = ("adjust", handoff.customer_id, "--reason", "slow procurement", "--by", "Kim")
    code, out, err = await asyncio.to_thread(
        run_cli, capsys, *args, "--threshold", "key_actions=12", "--skip", "A:nudge"
    )
    assert (code, err) == (0, "")
    code, out, err = await asyncio.to_thread(
        run_cli, capsys, *args, "--timer", "kickoff=3d/5d", "--threshold", "goals_agreed=2"
    )
    assert (code, err) == (0, ""), err
    assert "threshold key_actions" in out and "playbook 20  →  12" in out
    assert "kickoff escalate_to_leader_after" in out
    status = await h.status(handle)
    assert status.state.overrides == CustomerOverrides(
        thresholds={"key_actions": 12, "goals_agreed": 2},
        timers={
            "kickoff": StageTimerOverride(
                remind_csm_after=3 * DAY, escalate_to_leader_after=5 * DAY
            )
        },
        skip_steps=["A:nudge"],
    )
    entries = [e for e in h.timeline(handoff.customer_id) if e.kind == "overrides_set"]
    assert [e.details["by"] for e in entries] == ["Kim", "Kim"]

    code, out, err = await asyncio.to_thread(run_cli, capsys, *args, "--clear")
    assert code == 0 and "no overrides" in out
    assert (await h.status(handle)).state.overrides is None

    # The workflow's refusal, in one line, and nothing changed.
    code, out, err = await asyncio.to_thread(run_cli, capsys, *args, "--threshold", "logins=3")
    assert code == 2 and "has no completion criterion logins" in err
    assert (await h.status(handle)).state.overrides is None


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        ((), "needs at least one of"),
        (("--threshold", "key_actions"), "NAME=VALUE"),
        (("--threshold", "key_actions=many"), "not a number"),
        (("--threshold", "key_actions=-1"), "between 0 and"),
        (("--timer", "kickoff=soon"), "remind_csm_after"),
        (("--measure-on", "Funday"), "not a weekday"),
        (("--measure-at", "24"), "not between 0 and 23"),
        (("--deadline", "2027-02-30"), "deadline"),
        (("--skip", "nudge"), "skip_steps"),
        (("--skip", "A:nudge", "--reason", "x" * 501), "reason"),
    ],
)
def test_adjust_refuses_bad_input_in_one_line_before_connecting(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flags: tuple[str, ...],
    fragment: str,
) -> None:
    async def refuse(settings: Any) -> Any:
        raise AssertionError("the CLI tried to reach Temporal with input it should refuse")

    monkeypatch.setattr(connections, "onboarding_client", refuse)
    code, out, err = run_cli(capsys, "adjust", "acme", "--reason", "why", *flags)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert fragment in err


# The REST API


async def test_the_customers_csm_or_a_lead_adjusts_it_over_rest_another_csm_may_not(
    api: ApiHarness,
) -> None:
    async with api.as_csm(CSM) as csm, api.as_csm(OTHER_CSM) as other, api.as_lead() as lead:
        customer = await rest_start(csm)
        path = f"/api/customers/{customer}/overrides"
        body = {"overrides": {"thresholds": {"key_actions": 12}}, "reason": "seasonal business"}

        # Another CSM's customer answers as one never started.
        refused = await other.put(path, json=body)
        assert refused.status_code == 404, refused.text

        done = await csm.put(path, json=body)
        assert done.status_code == 200, done.text
        assert done.json()["overridden"] == [
            {
                "name": "threshold key_actions",
                "playbook": "20",
                "customer": "12",
                "setting": "threshold",
                "subject": "key_actions",
            }
        ]
        by_lead = await lead.put(
            path,
            json={
                "overrides": {"thresholds": {"key_actions": 12}, "skip_steps": ["A:nudge"]},
                "reason": "they asked for fewer emails",
            },
        )
        assert by_lead.status_code == 200, by_lead.text

        unknown = await csm.put(
            path, json={"overrides": {"skip_steps": ["A:farewell"]}, "reason": "x"}
        )
        assert unknown.status_code == 409
        assert "has no step A:farewell" in unknown.json()["detail"]
        for bad in (
            {"overrides": {"thresholds": {"key_actions": -1}}, "reason": "x"},
            {"overrides": {"measurement_hour": 25}, "reason": "x"},
            {"overrides": {}, "reason": ""},
            {"overrides": {"colour": "blue"}, "reason": "x"},
        ):
            response = await csm.put(path, json=bad)
            assert response.status_code == 422, (bad, response.text)

        detail = await eventually(
            lambda: rest_detail(csm, customer),
            lambda d: d["pending_side_effects"] == 0,
            what="the adjustments stored",
        )
        assert detail["state"]["overrides"]["skip_steps"] == ["A:nudge"]
        assert [v["name"] for v in detail["overridden"]] == [
            "threshold key_actions",
            "step A:nudge",
        ]
        timeline = (await csm.get(f"/api/customers/{customer}/timeline")).json()
        bys = [e["details"]["by"] for e in timeline if e["kind"] == "overrides_set"]
        assert len(bys) == 2 and bys[0] == CSM


async def rest_detail(client: Any, customer_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/customers/{customer_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def rest_start(client: Any) -> str:
    handoff = make_handoff(csm=CSM).model_dump(mode="json")
    response = await client.post("/api/customers", json=handoff)
    assert response.status_code == 201, response.text
    customer_id: str = handoff["customer_id"]
    return customer_id


# The dashboard


async def test_the_customer_page_shows_each_adjustment_beside_the_playbook_and_sets_them(
    api: ApiHarness,
) -> None:
    csm = f"csm-{uuid.uuid4().hex[:8]}@liftoff.example"
    handoff = make_handoff(csm=csm)
    await api.services.onboarding.start(handoff, make_playbook(campaign=True))
    await api.past_handoff(handoff.customer_id)
    page_path = f"/customers/{handoff.customer_id}"
    post_path = f"{page_path}/overrides"
    async with api.client() as browser, api.as_csm(OTHER_CSM) as other:
        signed_in = await browser.post("/login", data={"token": api.token(TokenRole.CSM, csm)})
        assert signed_in.status_code == 303, signed_in.text
        page = (await browser.get(f"{page_path}?lang=en")).text
        assert 'id="overrides"' in page and "The playbook&#39;s values apply." in page

        form = {
            "thresholds": "key_actions=12\r\n",
            "timers": "kickoff=10d/20d",
            "skip_steps": "A:nudge",
            "reason": "Seasonal <business>",
        }
        # Another site's page cannot post it with the CSM's cookie (CSRF).
        forged = await browser.post(
            post_path, data=form, headers={"Origin": "https://evil.example"}
        )
        assert forged.status_code == 403
        # Another CSM's customer answers as one never started.
        assert (await other.post(post_path, data=form)).status_code == 404
        assert (await api.services.onboarding.status(handoff.customer_id)).state.overrides is None

        saved = await browser.post(post_path, data=form)
        assert saved.status_code == 303, saved.text
        page = (await browser.get(saved.headers["location"] + "&lang=en")).text
        overrides = page[page.index('id="overrides"') : page.index('id="timeline"')]
        assert "Adjustments saved" in overrides
        row = overrides[overrides.index('data-override="threshold key_actions"') :]
        assert re.search(r"<td[^>]*>20</td>\s*<td><strong>12</strong>", row), row[:300]
        assert 'data-override="kickoff remind_csm_after"' in overrides
        assert 'data-override="step A:nudge"' in overrides
        # The form opens with the customer's overrides, to edit the whole set.
        assert "key_actions=12</textarea>" in overrides
        assert "kickoff=10d/20d</textarea>" in overrides
        timeline = page[page.index('id="timeline"') :]
        assert 'data-kind="overrides_set"' in timeline
        assert "Seasonal &lt;business&gt;" in timeline

        typo = await browser.post(
            f"{post_path}?lang=en", data={**form, "thresholds": "key_actions=lots"}
        )
        assert typo.status_code == 422
        assert "threshold key_actions: not a number" in typo.text
        assert "key_actions=lots</textarea>" in typo.text  # kept as typed
        refused = await browser.post(
            f"{post_path}?lang=en", data={**form, "skip_steps": "A:farewell"}
        )
        assert refused.status_code == 409
        assert "has no step A:farewell" in refused.text
        no_reason = await browser.post(post_path, data={**form, "reason": ""})
        assert no_reason.status_code == 422

    status = await api.services.onboarding.status(handoff.customer_id)
    assert status.state.overrides == CustomerOverrides(
        thresholds={"key_actions": 12},
        timers={
            "kickoff": StageTimerOverride(
                remind_csm_after=10 * DAY, escalate_to_leader_after=20 * DAY
            )
        },
        skip_steps=["A:nudge"],
    )


async def test_a_japanese_customer_page_names_the_adjustments_in_japanese(
    api: ApiHarness,
) -> None:
    csm = f"csm-{uuid.uuid4().hex[:8]}@liftoff.example"
    handoff = make_handoff(csm=csm)
    await api.services.onboarding.start(handoff, aligned())
    await api.past_handoff(handoff.customer_id)
    await api.services.onboarding.set_overrides(
        handoff.customer_id,
        adjusting(
            thresholds={"key_actions": 12},
            timers={"kickoff": StageTimerOverride(remind_csm_after=10 * DAY)},
            measurement_weekday=2,
            skip_steps=["A:nudge"],
        ),
    )
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        page = (await browser.get(f"/customers/{handoff.customer_id}?lang=ja")).text

    table = page[page.index('<table class="overrides">') : page.index("</table>")]
    cells = re.findall(r"<td[^>]*>(?:<strong>)?([^<]*)<", table)
    assert [tuple(cells[i : i + 3]) for i in range(0, len(cells), 3)] == [
        ("基準 key_actions のしきい値", "20", "12"),
        ("キックオフ：CSM へのリマインドまで", "7d", "10d"),
        ("計測の曜日", "月曜日", "水曜日"),
        ("ステップ A:nudge", "送信する", "送信しない"),
    ]
    for english in ("threshold", "remind_csm_after", "measurement weekday", "step A:", "skipped"):
        assert not [cell for cell in cells if english in cell], english
    # The timeline's entry for the adjustment says it in the same words.
    timeline = page[page.index('id="timeline"') :]
    assert "基準 key_actions のしきい値 20 → 12" in timeline
    assert "threshold key_actions" not in timeline


def test_every_adjustment_has_its_words_and_one_from_before_keeps_its_own() -> None:
    missing = [s.value for s in OverrideSetting if f"override_{s.value}" not in JA]
    assert missing == []
    before = OverriddenValue(name="threshold key_actions", playbook="20", customer="12")
    assert in_words(before, Translator("ja")) == before


async def test_the_measurement_moves_to_the_overridden_weekday_and_hour(h: Harness) -> None:
    # The handoff's own weekday (Friday) gives way to the override (Wednesday, 14:00).
    handoff = make_handoff(measurement_weekday=4)
    handle = await h.start(handoff, aligned())
    await through_training(h, handle)
    status = await h.wait_for(
        handle, lambda s: any(d.kind is DueKind.MEASURE for d in s.state.agenda)
    )
    before = next(d for d in status.state.agenda if d.kind is DueKind.MEASURE)
    assert before.window_end is not None
    zone = ZoneInfo(handoff.time_zone)
    assert before.window_end.astimezone(zone).weekday() == 4

    result = await h.onboarding.set_overrides(
        handoff.customer_id, adjusting(measurement_weekday=2, measurement_hour=14)
    )
    assert [t.kind for t in result.plan.timers] == [DueKind.MEASURE]
    assert {v.name: (v.playbook, v.customer) for v in result.overridden} == {
        "measurement weekday": ("Friday", "Wednesday"),
        "measurement hour": ("09:00", "14:00"),
    }
    status = await h.status(handle)
    after = next(d for d in status.state.agenda if d.kind is DueKind.MEASURE)
    assert after.window_end is not None
    local = after.window_end.astimezone(zone)
    assert (local.weekday(), local.hour, local.minute) == (2, 14, 0)
    assert after.at == after.window_end + aligned().measurement.grace_period
    # The week measured runs on from there: the next one is a week later, same hour.
    status = await h.next_week(handle)
    following = next(d for d in status.state.agenda if d.kind is DueKind.MEASURE)
    assert following.window_end == after.window_end + timedelta(days=7)
