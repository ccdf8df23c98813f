"""A playbook wait placed on the customer's clock: "7d" is elapsed time, "5 business
days" skips weekends and the public holidays of the customer's country.

Stage service-level timers (the CSM's reminder, the leader's escalation), the due date
of every task the workflow opens, and with it an on-demand meeting request's, go
through `due_at`. Business days are counted by `workflows/send_window.py`, as the
campaign's step emails are, and land when the customer's business day opens
(campaign.send_window_opens, 09:00 by default), so a reminder arrives in a morning.

Deterministic: the holiday table is an input, fetched once per year by
`ensure_holidays` (an activity) and kept in the state.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import workflows.activity_options as options
import workflows.campaign as campaign
import workflows.local_activities as local_activities
import workflows.send_window as send_window
from activities.calendar import public_holidays
from models.activity_io import PublicHolidaysInput
from models.handoff import CustomerHandoff
from models.onboarding import OnboardingState
from models.playbook import BusinessDays, CampaignPolicy, Playbook, StageTimer

# The marker of the clocks counting business days: histories from before it never
# looked up a holiday table for them.
PATCH = "business-day-timers"


def holiday_country(handoff: CustomerHandoff, playbook: Playbook) -> str | None:
    """The customer's country if sales gave one, else the campaign's calendar for its
    locale (what campaign emails used before the handoff had a country)."""
    if handoff.country is not None:
        return handoff.country
    policy = playbook.campaign or CampaignPolicy()
    return policy.holiday_calendars.get(handoff.locale)


def window(
    handoff: CustomerHandoff, playbook: Playbook, holidays: list[date]
) -> send_window.SendWindow:
    """The customer's business days and hours: the campaign's, or its defaults."""
    return campaign.window_for(playbook.campaign or CampaignPolicy(), handoff, holidays)


def due_at(
    wait: BusinessDays | timedelta, anchor: datetime, window: send_window.SendWindow
) -> datetime:
    """When a wait that starts at `anchor` ends: elapsed time as before, or the opening
    of the Nth business day after the anchor's local day."""
    if isinstance(wait, BusinessDays):
        return send_window.business_day_at(anchor, wait.days, window)
    return anchor + wait


def counts_business_days(playbook: Playbook) -> bool:
    """Whether any clock of the playbook needs the holiday table."""
    timers = playbook.timers
    stage_timers: list[StageTimer] = [timers.kickoff, timers.training, timers.completion_review]
    waits = [t.remind_csm_after for t in stage_timers] + [
        playbook.tasks.due_after,
        playbook.tasks.meeting_due_after,
    ]
    return any(isinstance(wait, BusinessDays) for wait in waits)


async def ensure_holidays(
    handoff: CustomerHandoff, playbook: Playbook, state: OnboardingState, now: datetime
) -> None:
    """Fetches the customer's public holidays for this year and next, once each."""
    country = holiday_country(handoff, playbook)
    years = [year for year in (now.year, now.year + 1) if year not in state.holiday_years]
    if country is None or not years:
        return
    fetched: list[date] = await local_activities.execute(
        public_holidays,
        PublicHolidaysInput(country=country, years=years),
        start_to_close_timeout=options.CALENDAR_TIMEOUT,
    )
    state.holidays = sorted({*state.holidays, *fetched})
    state.holiday_years = sorted({*state.holiday_years, *years})
