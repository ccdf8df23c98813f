"""Business days and quiet hours on the customer's own clock, as pure functions.

Campaign steps are offset in business days (weekends and the customer's
country's public holidays do not count) and go out only inside a local send
window, e.g. 09:00-18:00 in Asia/Tokyo. Deterministic: holidays are an input
(the workflow fetches its customer's table once through an activity and keeps it
in its state), so a later `holidays` release cannot change a replayed history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WEEKEND = frozenset({5, 6})

# Enough to step over the longest run of Japanese holidays (Golden Week) and a weekend.
_MAX_DAYS_SCANNED = 31


@dataclass(frozen=True)
class SendWindow:
    """Where and when a customer may receive campaign email."""

    time_zone: str
    # Public holidays of the customer's country: not business days, like weekends.
    holidays: frozenset[date] = frozenset()
    # Weekdays off (Monday is 0).
    weekend: frozenset[int] = _WEEKEND
    opens: time = time(9, 0)
    closes: time = time(18, 0)

    def __post_init__(self) -> None:
        if self.opens >= self.closes:
            raise ValueError("the send window must open before it closes")


def is_business_day(
    day: date, holidays: frozenset[date], weekend: frozenset[int] = _WEEKEND
) -> bool:
    return day.weekday() not in weekend and day not in holidays


def add_business_days(
    start: date, days: int, holidays: frozenset[date], weekend: frozenset[int] = _WEEKEND
) -> date:
    """The business day `days` business days after `start` (0: start, or the next one)."""
    if days < 0:
        raise ValueError("business-day offsets count forward")
    day = start
    while not is_business_day(day, holidays, weekend):
        day += timedelta(days=1)
    remaining = days
    while remaining:
        day += timedelta(days=1)
        if is_business_day(day, holidays, weekend):
            remaining -= 1
    return day


def business_days_between(start: datetime, end: datetime, window: SendWindow) -> int:
    """Business days after `start`'s local day, up to and including `end`'s."""
    zone = ZoneInfo(window.time_zone)
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    count = 0
    while day < last:
        day += timedelta(days=1)
        count += is_business_day(day, window.holidays, window.weekend)
    return count


def next_send_at(after: datetime, window: SendWindow) -> datetime:
    """The earliest instant at or after `after` inside the window on a business day."""
    zone = ZoneInfo(window.time_zone)
    local = after.astimezone(zone)
    day = local.date()
    for _ in range(_MAX_DAYS_SCANNED):
        if is_business_day(day, window.holidays, window.weekend):
            opens = datetime.combine(day, window.opens, tzinfo=zone)
            closes = datetime.combine(day, window.closes, tzinfo=zone)
            if local < closes:
                return max(local, opens).astimezone(after.tzinfo)
        day += timedelta(days=1)
    raise ValueError(f"no business day within {_MAX_DAYS_SCANNED} days of {day}")


def business_day_at(start: datetime, days: int, window: SendWindow) -> datetime:
    """When a step offset by `days` business days from `start` goes out."""
    zone = ZoneInfo(window.time_zone)
    day = add_business_days(start.astimezone(zone).date(), days, window.holidays, window.weekend)
    earliest = max(start, datetime.combine(day, window.opens, tzinfo=zone))
    return next_send_at(earliest, window).astimezone(start.tzinfo)
