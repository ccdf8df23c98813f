"""The campaign planner as pure functions: when steps fall due and whether they go out."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.calendar import public_holidays_of
from models.handoff import Role
from models.playbook import CampaignStep, Purpose
from workflows.campaign import decide, plan_purpose, stall_proposals
from workflows.send_window import SendWindow

TOKYO = SendWindow(time_zone="Asia/Tokyo", holidays=frozenset(public_holidays_of("JP", [2026])))
FRIDAY_EVENING = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # 19:00 JST


def purpose(*steps: CampaignStep, goal: int | None = 30) -> Purpose:
    return Purpose(
        id="A",
        title="Scan",
        key_action="document_scanned",
        goal_key_actions=goal,
        steps=list(steps),
    )


def step(step_id: str, **fields: object) -> CampaignStep:
    return CampaignStep.model_validate(
        {"id": step_id, "template": "purpose_nudge", "roles": ["administrator"], **fields}
    )


def test_steps_fall_due_in_business_days_across_a_weekend_and_a_japanese_holiday() -> None:
    plan = plan_purpose(
        purpose(step("welcome"), step("nudge", after_business_days=2), step("p", trigger="stall")),
        anchor=FRIDAY_EVENING,
        window=TOKYO,
        done=[],
    )
    # Saturday, Sunday and Monday the 23rd (Labor Thanksgiving Day) are skipped.
    assert [(d.ref, d.at) for d in plan] == [
        ("A:welcome", datetime(2026, 11, 24, 0, 0, tzinfo=UTC)),  # Tuesday 09:00 JST
        # Two business days after Friday: Tuesday, then Wednesday 09:00 JST.
        ("A:nudge", datetime(2026, 11, 25, 0, 0, tzinfo=UTC)),
    ]
    # A step already done is not planned again (a purpose re-planned after continue-as-new).
    again = plan_purpose(
        purpose(step("welcome")), anchor=FRIDAY_EVENING, window=TOKYO, done=["A:welcome"]
    )
    assert again == []


def test_decide_skips_on_goal_condition_or_shared_and_defers_on_the_daily_cap() -> None:
    now = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # Tuesday 10:00 JST
    common = {"now": now, "window": TOKYO, "shared_sent": [], "sends_today": {}, "daily_cap": 1}
    nudge = step("nudge", only_if_key_actions_below=5)
    assert decide(purpose(nudge), nudge, key_actions_last_week=2, **common).action == "send"  # type: ignore[arg-type]
    below = decide(purpose(nudge), nudge, key_actions_last_week=7, **common)  # type: ignore[arg-type]
    assert (below.action, below.reason) == ("skip", "7 key actions last week, not below 5")
    goal = decide(purpose(nudge), nudge, key_actions_last_week=30, **common)  # type: ignore[arg-type]
    assert goal.action == "skip" and "reached its goal" in goal.reason

    shared = step("setup", shared=True)
    done = decide(
        purpose(shared),
        shared,
        now=now,
        window=TOKYO,
        key_actions_last_week=0,
        shared_sent=["setup"],
        sends_today={},
        daily_cap=1,
    )
    assert done.action == "skip"

    capped = decide(
        purpose(nudge),
        nudge,
        now=now,
        window=TOKYO,
        key_actions_last_week=0,
        shared_sent=[],
        sends_today={Role.ADMINISTRATOR.value: 1},
        daily_cap=1,
    )
    # Wednesday 09:00 JST: the next business morning.
    assert (capped.action, capped.at) == ("defer", datetime(2026, 11, 25, 0, 0, tzinfo=UTC))


def test_stall_proposals_pick_the_stuck_purposes_only() -> None:
    proposal = step("proposal", trigger="stall")
    a = purpose(proposal)
    b = Purpose(id="B", title="Approve", key_action="expense_approved", steps=[proposal])
    c = Purpose(id="C", title="Share", key_action="contact_shared", goal_key_actions=10, steps=[])
    picked = stall_proposals([a, b, c], ["A", "B", "C"], {"A": 40, "B": 0, "C": 0})
    # A reached its goal; B has no goal, so it counts as stuck; C wrote no proposal.
    assert [(p.id, s.id) for p, s in picked] == [("B", "proposal")]
    assert stall_proposals([a, b], ["A"], {"A": 3}) == [(a, proposal)]
