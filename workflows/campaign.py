"""Purpose step emails: when each step is due and whether it goes out, as pure functions.

The workflow keeps the plan on its agenda (one due instant per step) and asks
`decide` when a step comes due; sending stays an activity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from models.handoff import CustomerHandoff
from models.onboarding import Due, DueKind
from models.playbook import CampaignPolicy, CampaignStep, Purpose
from workflows.send_window import SendWindow, business_day_at, next_send_at

CHOOSE_PURPOSE = "choose_purpose"


def window_for(
    policy: CampaignPolicy, handoff: CustomerHandoff, holidays: Sequence[date]
) -> SendWindow:
    return SendWindow(
        time_zone=handoff.time_zone,
        holidays=frozenset(holidays),
        weekend=frozenset(policy.weekend),
        opens=policy.send_window_opens,
        closes=policy.send_window_closes,
    )


def step_ref(purpose: Purpose, step: CampaignStep) -> str:
    return f"{purpose.id}:{step.id}"


def ledger_base(purpose: Purpose, step: CampaignStep) -> str:
    """The send ledger's key: a shared step is one email per customer, not per purpose."""
    return f"campaign:shared:{step.id}" if step.shared else f"campaign:{purpose.id}:{step.id}"


# Stages a step's offset can count from, in the order a customer reaches them.
ANCHOR_STAGES = ("kickoff", "training", "adoption")


def plan_key(purpose_id: str, stage: str) -> str:
    """What `campaign_planned` records once a purpose's steps for a stage are planned.
    Adoption keeps the bare purpose id, as before stages could anchor steps."""
    return purpose_id if stage == "adoption" else f"{purpose_id}@{stage}"


def steps_starting_at(purpose: Purpose, stage: str) -> list[CampaignStep]:
    return [s for s in purpose.steps if s.trigger == "purpose" and s.starts_at == stage]


def plan_purpose(
    purpose: Purpose,
    *,
    anchor: datetime,
    window: SendWindow,
    done: Sequence[str],
    stage: str = "adoption",
) -> list[Due]:
    """One due instant per step of `stage` not yet done, in business days from `anchor`."""
    return [
        Due(
            kind=DueKind.CAMPAIGN_STEP,
            at=business_day_at(anchor, step.after_business_days, window),
            ref=step_ref(purpose, step),
        )
        for step in steps_starting_at(purpose, stage)
        if step_ref(purpose, step) not in done
    ]


def plan_choose_purpose(policy: CampaignPolicy, now: datetime, window: SendWindow) -> list[Due]:
    step = policy.choose_purpose
    if step is None:
        return []
    at = business_day_at(now, step.after_business_days, window)
    return [Due(kind=DueKind.CAMPAIGN_STEP, at=at, ref=CHOOSE_PURPOSE)]


def stall_proposals(
    purposes: Sequence[Purpose], adopted: Sequence[str], key_actions: dict[str, int]
) -> list[tuple[Purpose, CampaignStep]]:
    """The stall-triggered steps of each adopted purpose whose key action is stuck:
    below the step's own threshold, else below the purpose's goal."""
    stuck = []
    for purpose in purposes:
        if purpose.id not in adopted:
            continue
        actions = key_actions.get(purpose.id, 0)
        for step in purpose.steps:
            if step.trigger != "stall":
                continue
            limit = step.only_if_key_actions_below or purpose.goal_key_actions
            if limit is None or actions < limit:
                stuck.append((purpose, step))
    return stuck


def find_step(purposes: Sequence[Purpose], ref: str) -> tuple[Purpose, CampaignStep] | None:
    purpose_id, _, step_id = ref.partition(":")
    for purpose in purposes:
        if purpose.id == purpose_id:
            for step in purpose.steps:
                if step.id == step_id:
                    return purpose, step
    return None


@dataclass(frozen=True)
class Decision:
    action: Literal["send", "skip", "defer"]
    reason: str = ""
    # For "defer": when to try again.
    at: datetime | None = None


def decide(
    purpose: Purpose,
    step: CampaignStep,
    *,
    now: datetime,
    window: SendWindow,
    key_actions_last_week: int | None,
    shared_sent: Sequence[str],
    sends_today: dict[str, int],
    daily_cap: int,
) -> Decision:
    """Whether a due step goes out now, is skipped for good, or waits for the cap."""
    if step.shared and step.id in shared_sent:
        return Decision("skip", f"step {step.id} already went out for another purpose")
    actions = key_actions_last_week or 0
    if purpose.goal_key_actions is not None and actions >= purpose.goal_key_actions:
        return Decision(
            "skip", f"purpose {purpose.id} reached its goal ({actions} key actions last week)"
        )
    if step.only_if_key_actions_below is not None and actions >= step.only_if_key_actions_below:
        return Decision(
            "skip",
            f"{actions} key actions last week, not below {step.only_if_key_actions_below}",
        )
    if any(sends_today.get(role.value, 0) >= daily_cap for role in step.roles):
        return Decision("defer", "daily email cap reached", next_business_morning(now, window))
    return Decision("send")


def next_business_morning(now: datetime, window: SendWindow) -> datetime:
    """The window's opening on the next business day after today, local time."""
    zone = ZoneInfo(window.time_zone)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    start = datetime.combine(tomorrow, window.opens, tzinfo=zone)
    return next_send_at(start, window)


def local_day(now: datetime, window: SendWindow) -> date:
    return now.astimezone(ZoneInfo(window.time_zone)).date()
