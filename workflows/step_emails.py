"""A customer's purpose step emails, as the workflow runs them: planning each
purpose's steps onto the agenda when its stage begins, sending or skipping a step
when it comes due (daily cap, business days, holidays), and the stall ladder's
proposals for stuck purposes.

The judgements are pure and live in workflows/campaign.py; this class keeps the
workflow's part: its state, the holiday activity and the emails it queues.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import JsonValue
from temporalio import workflow

import emails.contexts as contexts
import workflows.campaign as campaign
import workflows.clocks as clocks
import workflows.patches as patches
import workflows.send_window as send_window
from models.activity_io import SendEmailInput
from models.email_categories import EmailCategory
from models.handoff import CustomerHandoff, Role
from models.onboarding import Due, DueKind, HeldDue, OnboardingState
from models.playbook import CampaignPolicy, Playbook
from workflows.effects import Effects


class StepEmails:
    def __init__(
        self,
        handoff: CustomerHandoff,
        playbook: Playbook,
        state: OnboardingState,
        effects: Effects,
    ) -> None:
        self._handoff = handoff
        self._playbook = playbook
        # The workflow's state, updated in place: agenda, campaign progress, holidays.
        self._state = state
        self._effects = effects

    def use(self, playbook: Playbook) -> None:
        """The playbook a migration moved the customer to."""
        self._playbook = playbook

    def unplanned(self) -> list[tuple[str, str]]:
        """(plan key, stage) of the purposes' steps the customer's stage has reached but
        that are not planned yet; the choose-purpose step once adoption has begun."""
        state = self._state
        policy = self._playbook.campaign
        if policy is None or state.stage.terminal:
            return []
        wanted: list[tuple[str, str]] = []
        for stage in campaign.ANCHOR_STAGES:
            if stage != "adoption":
                # Kickoff and training steps are planned while their stage lasts.
                if state.stage.value != stage:
                    continue
                for purpose_id in state.purposes:
                    purpose = self._playbook.purpose(purpose_id)
                    if purpose is not None and campaign.steps_starting_at(purpose, stage):
                        wanted.append((campaign.plan_key(purpose_id, stage), stage))
            elif state.adoption_started_at is not None:
                wanted += [(purpose_id, stage) for purpose_id in state.purposes]
                if not state.purposes and policy.choose_purpose is not None:
                    wanted.append((campaign.CHOOSE_PURPOSE, stage))
        return [(key, stage) for key, stage in wanted if key not in state.campaign_planned]

    async def plan(self) -> None:
        """Puts new purposes' steps on the agenda. Run by the main loop, not by handlers,
        because the holiday table it counts business days with comes from an activity."""
        unplanned = self.unplanned()
        # Playbooks before campaigns existed have none; the marker keeps histories
        # of workflows that reached adoption before this change replaying.
        if not unplanned:
            return
        if not patches.taken("purpose-campaigns"):
            # Marked planned all the same, so the main loop does not wake for them again.
            self._state.campaign_planned += [key for key, _ in unplanned]
            return
        now = workflow.now()
        await self.ensure_holidays(now)
        window = self._send_window()
        for key, stage in unplanned:
            self._state.campaign_planned.append(key)
            if key == campaign.CHOOSE_PURPOSE:
                self._state.agenda += campaign.plan_choose_purpose(self._policy(), now, window)
                continue
            purpose = self._playbook.purpose(key.partition("@")[0])
            if purpose is not None:
                self._state.agenda += campaign.plan_purpose(
                    purpose,
                    anchor=now,
                    window=window,
                    done=self._state.campaign_done,
                    stage=stage,
                )

    async def ensure_holidays(self, now: datetime) -> None:
        """Fetches the customer's public holidays for this year and next, once (the
        table the workflow's business-day clocks count with too)."""
        await clocks.ensure_holidays(self._handoff, self._playbook, self._state, now)

    def replanned(self, held: HeldDue, now: datetime) -> datetime:
        """When a step a pause held goes out after it: as many business days after `now`
        as it was after the pause began, in the send window (by the holidays known)."""
        window = self._send_window()
        days = send_window.business_days_between(held.held_at, held.due.at, window)
        return send_window.business_day_at(now, days, window)

    def _policy(self) -> CampaignPolicy:
        policy = self._playbook.campaign
        if policy is None:  # callers run only for playbooks with a campaign
            raise RuntimeError("the playbook has no campaign")
        return policy

    def _send_window(self) -> send_window.SendWindow:
        return campaign.window_for(self._policy(), self._handoff, self._state.holidays)

    def step_due(self, ref: str, now: datetime) -> None:
        policy = self._policy()
        state = self._state
        if ref in state.campaign_done:
            return
        window = self._send_window()
        today = campaign.local_day(now, window)
        if state.campaign_day != today:
            state.campaign_day = today
            state.campaign_sends_today = {}
        if ref == campaign.CHOOSE_PURPOSE:
            self._send_choose_purpose(policy)
            return
        found = campaign.find_step(self._playbook.purposes, ref)
        if found is None:
            return
        purpose, step = found
        if step.starts_at != "adoption" and state.stage.value != step.starts_at:
            state.campaign_done.append(ref)
            self._effects.timeline(
                "campaign_step_skipped",
                f"{ref} skipped: the {step.starts_at} stage is over",
                {"ref": ref},
            )
            return
        last_week = state.recent_weeks[-1].measurement if state.recent_weeks else None
        actions = last_week.key_actions.get(purpose.id, 0) if last_week else None
        decision = campaign.decide(
            purpose,
            step,
            now=now,
            window=window,
            key_actions_last_week=actions,
            shared_sent=state.shared_steps_sent,
            sends_today=state.campaign_sends_today,
            daily_cap=policy.daily_cap,
        )
        if decision.action == "defer" and decision.at is not None:
            state.agenda.append(Due(kind=DueKind.CAMPAIGN_STEP, at=decision.at, ref=ref))
            return
        state.campaign_done.append(ref)
        if decision.action == "skip":
            self._effects.timeline(
                "campaign_step_skipped", f"{ref} skipped: {decision.reason}", {"ref": ref}
            )
            return
        if step.shared:
            state.shared_steps_sent.append(step.id)
        context = contexts.step_context(
            self._handoff.name, purpose, step, self._handoff.locale, actions
        )
        self._send_step(
            ref,
            campaign.ledger_base(purpose, step),
            step.template,
            step.roles,
            context,
            what=ref,
        )

    def send_purpose_proposals(self, episode: int) -> bool:
        """The proposal steps written for each stuck purpose; False if there are none,
        and the generic proposal goes out instead. Escalations are outside the cap."""
        state = self._state
        last_week = state.recent_weeks[-1].measurement if state.recent_weeks else None
        key_actions = last_week.key_actions if last_week else {}
        proposals = campaign.stall_proposals(self._playbook.purposes, state.purposes, key_actions)
        if not proposals or self._playbook.campaign is None:
            return False
        if not patches.taken("purpose-proposals"):
            return False
        for purpose, step in proposals:
            context = contexts.step_context(
                self._handoff.name,
                purpose,
                step,
                self._handoff.locale,
                key_actions.get(purpose.id, 0),
            )
            for role in step.roles:
                self._send_campaign_email(
                    f"stall:{episode}:{purpose.id}:{step.id}:{role.value}",
                    step.template,
                    role,
                    context,
                    category=EmailCategory.PROPOSAL,
                    counted=False,
                )
        refs = [campaign.step_ref(purpose, step) for purpose, step in proposals]
        self._effects.timeline(
            "stall_proposal",
            f"proposals for stuck purposes: {', '.join(refs)}",
            {"episode": episode, "steps": list(refs)},
        )
        return True

    def _send_choose_purpose(self, policy: CampaignPolicy) -> None:
        self._state.campaign_done.append(campaign.CHOOSE_PURPOSE)
        step = policy.choose_purpose
        if step is None or self._state.purposes:
            return
        context = contexts.choose_purpose_context(
            self._handoff.name, self._playbook.purposes, self._handoff.locale
        )
        self._send_step(
            campaign.CHOOSE_PURPOSE,
            f"campaign:{campaign.CHOOSE_PURPOSE}",
            step.template,
            step.roles,
            context,
            what="the choose-purpose email",
        )

    def _send_step(
        self,
        ref: str,
        ledger_base: str,
        template: str,
        roles: Sequence[Role],
        context: dict[str, JsonValue],
        *,
        what: str,
    ) -> None:
        """One email per role, then the timeline entry that says who it went to: only the
        roles the customer has contacts in (the others' sends find no one)."""
        if patches.taken("step-roles-in-turn"):
            self._effects.send_in_turn(
                [
                    self._campaign_email(
                        f"{ledger_base}:{role.value}",
                        template,
                        role,
                        context,
                        category=EmailCategory.STEP,
                    )
                    for role in roles
                ]
            )
        else:
            for role in roles:
                self._send_campaign_email(
                    f"{ledger_base}:{role.value}",
                    template,
                    role,
                    context,
                    category=EmailCategory.STEP,
                )
        known = {c.role for c in [*self._handoff.contacts, *self._state.added_contacts]}
        sent_to: list[JsonValue] = [role.value for role in roles if role in known]
        nobody: list[JsonValue] = [role.value for role in roles if role not in known]
        if sent_to:
            summary = f"{what} sent to the {', '.join(map(str, sent_to))} contacts"
        else:
            summary = f"{what} not sent"
        if nobody:
            summary += f" (no {', '.join(map(str, nobody))} contact)"
        self._effects.timeline(
            "campaign_step_sent", summary, {"ref": ref, "roles": sent_to, "no_contact": nobody}
        )

    def _send_campaign_email(
        self,
        ledger_key: str,
        template: str,
        role: Role,
        context: dict[str, JsonValue],
        *,
        category: EmailCategory,
        counted: bool = True,
    ) -> None:
        self._effects.send(
            self._campaign_email(
                ledger_key, template, role, context, category=category, counted=counted
            )
        )

    def _campaign_email(
        self,
        ledger_key: str,
        template: str,
        role: Role,
        context: dict[str, JsonValue],
        *,
        category: EmailCategory,
        counted: bool = True,
    ) -> SendEmailInput:
        """The email to one role; `counted` ones count toward the role's daily cap."""
        if counted:
            counts = self._state.campaign_sends_today
            counts[role.value] = counts.get(role.value, 0) + 1
        return SendEmailInput(
            ledger_key=ledger_key,
            customer_id=self._handoff.customer_id,
            template=template,
            locale=self._handoff.locale,
            to_role=role,
            context=context,
            category=category,
        )
