"""Business days and quiet hours on the customer's clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from activities.calendar import public_holidays_of
from workflows.send_window import (
    SendWindow,
    add_business_days,
    business_day_at,
    is_business_day,
    next_send_at,
)

JP = frozenset(public_holidays_of("JP", [2026]))
US = frozenset(public_holidays_of("US", [2026]))
NONE: frozenset[date] = frozenset()
TOKYO = SendWindow(time_zone="Asia/Tokyo", holidays=JP)
NEW_YORK = SendWindow(time_zone="America/New_York", holidays=US)


def test_weekends_and_japanese_holidays_are_not_business_days() -> None:
    assert not is_business_day(date(2026, 11, 28), JP)  # Saturday
    assert not is_business_day(date(2026, 11, 23), JP)  # Labor Thanksgiving Day, a Monday
    assert is_business_day(date(2026, 11, 23), NONE)  # weekends-only calendar
    assert is_business_day(date(2026, 11, 23), US)
    assert public_holidays_of("JP", [2026])[date(2026, 11, 23)] == "Labor Thanksgiving Day"


def test_business_day_offsets_step_over_a_weekend_and_a_holiday() -> None:
    friday = date(2026, 11, 20)
    # Sat, Sun and Monday the 23rd (holiday) do not count: +1 is Tuesday in Japan...
    assert add_business_days(friday, 1, JP) == date(2026, 11, 24)
    # ...and Monday in the United States.
    assert add_business_days(friday, 1, US) == date(2026, 11, 23)
    assert add_business_days(friday, 0, JP) == friday
    # Starting on a holiday counts from the next business day.
    assert add_business_days(date(2026, 11, 23), 0, JP) == date(2026, 11, 24)
    # Golden Week 2026: Sun 3 May to Wed 6 May are holidays.
    assert add_business_days(date(2026, 5, 1), 1, JP) == date(2026, 5, 7)
    with pytest.raises(ValueError):
        add_business_days(friday, -1, JP)


def test_quiet_hours_hold_in_tokyo_and_new_york_for_the_same_instant() -> None:
    # 2026-11-25 23:30 UTC is Thursday 08:30 in Tokyo and Wednesday 18:30 in New York.
    instant = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    assert next_send_at(instant, TOKYO) == datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # 09:00 JST
    # New York's window closed at 18:00; Thursday 26th is Thanksgiving, so Friday 09:00 EST.
    assert next_send_at(instant, NEW_YORK) == datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def test_inside_the_window_sends_now_and_results_keep_the_callers_zone() -> None:
    instant = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 11:00 JST
    assert next_send_at(instant, TOKYO) == instant
    assert next_send_at(instant, TOKYO).tzinfo is UTC


def test_a_step_offset_in_business_days_goes_out_when_the_window_opens() -> None:
    friday_evening = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # Friday 19:00 JST
    at = business_day_at(friday_evening, 1, TOKYO)
    assert at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # Tuesday 09:00 JST
    # Offset 0 after hours: the next business morning, Monday the 23rd being a holiday.
    assert business_day_at(friday_evening, 0, TOKYO) == at


def test_a_window_must_open_before_it_closes() -> None:
    with pytest.raises(ValueError, match="open before it closes"):
        SendWindow(time_zone="UTC", opens=time(18), closes=time(9))
