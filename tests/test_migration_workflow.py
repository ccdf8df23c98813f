"""Moving running customers to another playbook version, on the time-skipping server
with the real activities: the dry run shows what the update then does, timers move by
the difference, no step email goes out twice, and a customer that cannot move is
refused with the reason while the others go ahead."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from client.errors import CommandRejectedError
from models.events import KickoffHeld, PurposeAdded
from models.migration import MigrationRequest
from models.onboarding import DueKind, OnboardingStatus, Stage
from models.playbook import Playbook
from models.tables import CustomerProjection
from testkit.factories import make_handoff, make_playbook, with_steps
from tests.support.workflow_harness import (
    Harness,
    received,
    save_history,
    through_training,
    until_sent,
)

DAY = timedelta(days=1)


def version(playbook: Playbook, name: str, **changes: Any) -> Playbook:
    return playbook.model_copy(update={"version": name, **changes})


def request(playbook: Playbook) -> MigrationRequest:
    return MigrationRequest(
        playbook=playbook, reason="the kickoff reminder came too early", requested_by="lead"
    )


def due_at(status: OnboardingStatus, kind: DueKind) -> Any:
    return next(d.at for d in status.state.agenda if d.kind is kind)


async def test_dry_run_shows_the_rebased_timers_and_applying_moves_them(h: Harness) -> None:
    old = make_playbook()
    kickoff = old.timers.kickoff.model_copy(
        update={"remind_csm_after": old.timers.kickoff.remind_csm_after + 2 * DAY}
    )
    new = version(
        old,
        "2",
        timers=old.timers.model_copy(update={"kickoff": kickoff}),
        deadline=old.deadline + 14 * DAY,
    )
    handoff = make_handoff()
    handle = await h.start(handoff, old)
    before = await h.status(handle)

    preview = await h.onboarding.preview_migration(handoff.customer_id, new)
    changed = {(t.kind, t.after - t.before) for t in preview.timers}
    assert changed == {(DueKind.REMIND_CSM, 2 * DAY), (DueKind.DEADLINE, 14 * DAY)}
    assert not any(t.overdue for t in preview.timers)
    # A dry run moves nothing.
    assert (await h.status(handle)).playbook_version == before.playbook_version

    plan = await h.onboarding.migrate(handoff.customer_id, request(new))
    assert plan.model_dump(exclude={"timers"}) == preview.model_dump(exclude={"timers"})
    after = await h.wait_for(handle, lambda s: s.playbook_version == "2")
    assert due_at(after, DueKind.REMIND_CSM) == due_at(before, DueKind.REMIND_CSM) + 2 * DAY
    assert due_at(after, DueKind.DEADLINE) == due_at(before, DueKind.DEADLINE) + 14 * DAY
    assert due_at(after, DueKind.ESCALATE_TO_LEADER) == due_at(before, DueKind.ESCALATE_TO_LEADER)

    entry = next(e for e in h.timeline(handoff.customer_id) if e.kind == "playbook_migrated")
    assert entry.details["from"] == old.version and entry.details["to"] == "2"
    assert entry.details["by"] == "lead"
    assert "too early" in entry.summary
    with h.database.session() as session:
        row = session.exec(
            select(CustomerProjection).where(CustomerProjection.customer_id == handoff.customer_id)
        ).one()
    assert row.playbook_version == "2"
    save_history("migrated_in_kickoff", (await handle.fetch_history()).to_json())


async def test_a_deadline_already_past_under_the_new_version_fails_the_customer(
    h: Harness,
) -> None:
    old = make_playbook()
    handoff = make_handoff()
    handle = await h.start(handoff, old)
    await h.env.sleep(10 * DAY)
    new = version(old, "short", momentum_after=2 * DAY, deadline=5 * DAY)

    now = await h.env.get_current_time()
    preview = await h.onboarding.preview_migration(handoff.customer_id, new, now=now)
    overdue = {t.kind for t in preview.timers if t.overdue}
    assert DueKind.DEADLINE in overdue and DueKind.MOMENTUM in overdue

    await h.onboarding.migrate(handoff.customer_id, request(new))
    status = await h.wait_for(handle, lambda s: s.state.stage.terminal)
    assert status.state.stage is Stage.FAILED


async def test_steps_already_sent_never_go_out_again_added_ones_do_dropped_ones_never(
    h: Harness,
) -> None:
    old = make_playbook(campaign=True)
    handoff = make_handoff(purposes=["A"])
    handle = await h.start(handoff, old)
    await through_training(h, handle)
    await until_sent(h, handle, "A:welcome")
    # v2: the welcome again (sent already), the nudge dropped, a new "tips" step two
    # business days in, and the setup step moved from 1 to 3 business days.
    purpose = old.purpose("A")
    assert purpose is not None
    tips = purpose.steps[1].model_copy(update={"id": "tips", "after_business_days": 2})
    steps = [s for s in purpose.steps if s.id != "nudge"] + [tips]
    new = with_steps(
        version(old, "2", purposes=[purpose.model_copy(update={"steps": steps})]),
        "A",
        setup={"after_business_days": 3},
    )

    preview = await h.onboarding.preview_migration(handoff.customer_id, new)
    changes = {step.ref: step.change for step in preview.steps}
    assert changes == {
        "A:welcome": "already_sent",
        "A:setup": "rescheduled",
        "A:tips": "added",
        "A:nudge": "dropped",
    }
    await h.onboarding.migrate(handoff.customer_id, request(new))
    await h.wait_for(handle, lambda s: s.playbook_version == "2")
    for ref in ("A:setup", "A:tips"):
        await until_sent(h, handle, ref)
    await h.env.sleep(21 * DAY)
    status = await h.wait_for(handle, lambda s: True)

    keys = Counter(key for got in received(h).values() for key in got.elements())
    assert all(count == 1 for count in keys.values()), keys
    assert not any(":nudge:" in key for key in keys)
    assert any(key.startswith("campaign:A:tips:") for key in keys)
    assert "A:nudge" not in status.state.campaign_done
    save_history("migrated_step_emails", (await handle.fetch_history()).to_json())


async def test_a_customer_whose_purpose_the_new_version_lacks_is_refused_the_others_move(
    h: Harness,
) -> None:
    old = make_playbook()
    new = version(old, "2", purposes=[p for p in old.purposes if p.id != "B"])
    keeps = make_handoff(purposes=["A"])
    holds_b = make_handoff(purposes=["A"])
    for handoff in (keeps, holds_b):
        await h.start(handoff, old)
    await h.onboarding.record(holds_b.customer_id, PurposeAdded(purpose="B"))

    plans = await h.onboarding.migrate_each(
        [keeps.customer_id, holds_b.customer_id, "nobody"], request(new), dry_run=False
    )
    by_customer = {plan.customer_id: plan for plan in plans}
    assert by_customer[keeps.customer_id].refused is None
    assert by_customer[holds_b.customer_id].refused == (
        "version 2 has no purpose B, which the customer holds"
    )
    assert "unknown customer" in (by_customer["nobody"].refused or "")
    assert (await h.onboarding.status(keeps.customer_id)).playbook_version == "2"
    assert (await h.onboarding.status(holds_b.customer_id)).playbook_version == old.version

    with pytest.raises(CommandRejectedError, match="already follows version 2"):
        await h.onboarding.migrate(keeps.customer_id, request(new))


async def test_the_new_version_survives_continue_as_new(h: Harness) -> None:
    old = make_playbook()
    new = version(old, "2")
    handoff = make_handoff()
    handle = await h.start(handoff, old, max_history_events=100)
    await h.onboarding.migrate(handoff.customer_id, request(new))
    today = await h.today()
    await h.record(handle, KickoffHeld(held_on=today, goals=["Scan every invoice"]))
    await through_training_again(h, handle)
    status = await h.wait_for(handle, lambda s: s.state.runs > 1, seconds=30)
    assert status.playbook_version == "2"


async def through_training_again(h: Harness, handle: Any) -> None:
    """Weeks of low usage until the history outgrows its limit."""
    from models.events import TrainingHeld

    await h.record(handle, TrainingHeld(held_on=await h.today()))
    for _ in range(6):
        status = await h.next_week(handle)
        if status.state.runs > 1:
            return
