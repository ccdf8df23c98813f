"""What a pause holds and how its clocks move on resume (pure).

While a customer is paused, Liftoff's own judgements wait: service-level reminders
and escalations, tasks' overdue notes, momentum, the deadline and the campaign's step
emails leave the agenda for the pause's `held` list. The weekly measurement stays on
its cadence (its facts are recorded, not judged) and so does the pause's own scheduled
end. On resume each held item comes back as far ahead as it was when it was held:
every clock moves by the time it was paused, and steps keep their spacing instead of
all falling due.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from models.onboarding import Due, DueKind, HeldDue

# The agenda items a pause holds; the others (measurement, resume) go on.
HELD_KINDS = frozenset(
    {
        DueKind.REMIND_CSM,
        DueKind.ESCALATE_TO_LEADER,
        DueKind.MOMENTUM,
        DueKind.DEADLINE,
        DueKind.CAMPAIGN_STEP,
        DueKind.TASK_OVERDUE,
    }
)


def resume_instant(resume_on: date, time_zone: str) -> datetime:
    """The start of the customer's local day `resume_on`: a pause "until the 10th"
    ends as the customer's 10th begins."""
    return datetime.combine(resume_on, time(0), tzinfo=ZoneInfo(time_zone)).astimezone(UTC)


def hold(agenda: list[Due], now: datetime) -> tuple[list[Due], list[HeldDue]]:
    """The agenda that goes on while paused, and the items it holds from `now`."""
    kept = [due for due in agenda if due.kind not in HELD_KINDS]
    held = [HeldDue(due=due, held_at=now) for due in agenda if due.kind in HELD_KINDS]
    return kept, held


def released(held: HeldDue, now: datetime) -> Due:
    """A held item back on the agenda, moved by the time it was held."""
    return held.due.model_copy(update={"at": held.due.at + (now - held.held_at)})
