"""The weekly measurement on SQLite and PostgreSQL: what a week measures, what a retry returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import ActivityEnvironment

from activities.measure import MeasureActivities
from models.activity_io import MeasureWeeklyUsageInput
from records.database import Database
from records.usage.events import record_usage_event

WEEK_START = datetime(2025, 3, 3, tzinfo=UTC)
WEEK_END = WEEK_START + timedelta(days=7)


@pytest.fixture
def store(database: Database) -> MeasureActivities:
    return MeasureActivities(database)


@pytest.fixture
def activity_env() -> ActivityEnvironment:
    return ActivityEnvironment()


def usage(
    database: Database,
    customer_id: str,
    user: str,
    event: str,
    at: datetime,
    quantity: float = 1.0,
) -> None:
    record_usage_event(
        database,
        customer_id=customer_id,
        user_id=user,
        event=event,
        occurred_at=at,
        quantity=quantity,
    )


def measure_input(customer_id: str, **overrides: object) -> MeasureWeeklyUsageInput:
    fields: dict[str, object] = {
        "customer_id": customer_id,
        "week_index": 1,
        "window_start": WEEK_START,
        "window_end": WEEK_END,
        "seats_contracted": 4,
        "quota_contracted": 100.0,
        "quota_event": "document_processed",
        "key_actions": {"A": "document_scanned", "B": "report_viewed", "C": "invoice_sent"},
    }
    fields.update(overrides)
    return MeasureWeeklyUsageInput.model_validate(fields)


def test_week_measures_active_seats_key_actions_per_purpose_and_quota(
    database: Database, store: MeasureActivities, activity_env: ActivityEnvironment
) -> None:
    customer = "cust-measured"
    inside = WEEK_START + timedelta(days=2)
    # Before the window: counts toward the quota and proves data flowed, not toward the week.
    usage(database, customer, "u9", "document_processed", WEEK_START - timedelta(days=3), 20)
    for user in ("u1", "u2", "u3"):
        usage(database, customer, user, "login", inside)
    usage(database, customer, "u1", "document_scanned", inside)
    usage(database, customer, "u2", "document_scanned", inside)
    usage(database, customer, "u2", "document_scanned", inside + timedelta(hours=1))
    usage(database, customer, "u3", "report_viewed", inside)
    usage(database, customer, "u1", "document_processed", WEEK_START, 10)  # the start is inside
    usage(database, customer, "u4", "login", WEEK_END)  # the end is outside
    usage(database, customer, "u4", "document_processed", WEEK_END, 50)
    usage(database, "someone-else", "u5", "login", inside)

    result = activity_env.run(store.measure_weekly_usage, measure_input(customer))

    assert result.active_users == 3
    assert result.active_seat_ratio == 0.75
    assert result.events == 8
    assert result.key_actions == {"A": 3, "B": 1, "C": 0}
    assert result.quota_consumption == pytest.approx(0.30)
    assert result.data_ever_arrived is True
    assert (result.window_start, result.window_end) == (WEEK_START, WEEK_END)


def test_active_seat_ratio_is_capped_at_one_and_rounded(
    database: Database, store: MeasureActivities, activity_env: ActivityEnvironment
) -> None:
    inside = WEEK_START + timedelta(hours=1)
    for user in ("u1", "u2", "u3"):
        usage(database, "over", user, "login", inside)
    usage(database, "third", "u1", "login", inside)

    over = activity_env.run(store.measure_weekly_usage, measure_input("over", seats_contracted=2))
    third = activity_env.run(store.measure_weekly_usage, measure_input("third", seats_contracted=3))

    assert over.active_seat_ratio == 1.0
    assert over.active_users == 3
    assert third.active_seat_ratio == 0.3333


def test_week_without_any_data_says_data_never_arrived(
    store: MeasureActivities, activity_env: ActivityEnvironment
) -> None:
    result = activity_env.run(store.measure_weekly_usage, measure_input("silent"))

    assert result.data_ever_arrived is False
    assert (result.active_users, result.events, result.active_seat_ratio) == (0, 0, 0.0)
    assert result.key_actions == {"A": 0, "B": 0, "C": 0}
    assert result.quota_consumption == 0.0


def test_quiet_week_after_earlier_data_still_counts_as_data_arrived(
    database: Database, store: MeasureActivities, activity_env: ActivityEnvironment
) -> None:
    usage(database, "quiet", "u1", "login", WEEK_START - timedelta(days=10))

    result = activity_env.run(store.measure_weekly_usage, measure_input("quiet"))

    assert result.data_ever_arrived is True
    assert result.events == 0


def test_quota_is_unknown_without_a_contracted_quota_or_quota_event(
    database: Database, store: MeasureActivities, activity_env: ActivityEnvironment
) -> None:
    usage(database, "noquota", "u1", "document_processed", WEEK_START, 10)

    no_quota = activity_env.run(
        store.measure_weekly_usage, measure_input("noquota", quota_contracted=None)
    )
    no_event = activity_env.run(
        store.measure_weekly_usage, measure_input("noquota", week_index=2, quota_event=None)
    )

    assert no_quota.quota_consumption is None
    assert no_event.quota_consumption is None


def test_retried_measurement_returns_the_stored_answer(
    database: Database, store: MeasureActivities, activity_env: ActivityEnvironment
) -> None:
    inside = WEEK_START + timedelta(days=1)
    usage(database, "retry", "u1", "login", inside)
    first = activity_env.run(store.measure_weekly_usage, measure_input("retry"))
    # Late data for the same window arrives between the attempts.
    usage(database, "retry", "u2", "login", inside)
    usage(database, "retry", "u3", "document_scanned", inside)

    again = activity_env.run(store.measure_weekly_usage, measure_input("retry"))
    next_week = activity_env.run(store.measure_weekly_usage, measure_input("retry", week_index=2))

    assert again == first
    assert first.active_users == 1
    # A new week index measures afresh (same window here, so it sees the late data).
    assert next_week.active_users == 3
    assert next_week.key_actions["A"] == 1


def test_usage_arriving_after_its_week_was_judged_is_reported_once_as_late(
    database: Database, store: MeasureActivities, activity_env: ActivityEnvironment
) -> None:
    customer = "late-arrivals"
    usage(database, customer, "u1", "login", WEEK_START + timedelta(days=1))
    first = activity_env.run(store.measure_weekly_usage, measure_input(customer))
    # Two events of week 1 arrive after its verdict; one of week 2 arrives in time.
    usage(database, customer, "u2", "login", WEEK_END - timedelta(hours=1))
    usage(database, customer, "u2", "document_scanned", WEEK_END - timedelta(hours=1))
    usage(database, customer, "u3", "login", WEEK_END + timedelta(days=1))

    def week(index: int) -> MeasureWeeklyUsageInput:
        start = WEEK_START + (index - 1) * timedelta(days=7)
        return measure_input(
            customer, week_index=index, window_start=start, window_end=start + timedelta(days=7)
        )

    second = activity_env.run(store.measure_weekly_usage, week(2))
    third = activity_env.run(store.measure_weekly_usage, week(3))

    # Week 1's verdict stands; week 2 reports what arrived late, and only week 2 does.
    assert (first.active_users, first.late_events) == (1, 0)
    assert activity_env.run(store.measure_weekly_usage, week(1)) == first
    assert (second.active_users, second.events, second.late_events) == (1, 1, 2)
    assert third.late_events == 0
