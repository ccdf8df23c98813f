"""The weekly measurement: usage facts of one window, from stored usage and email events.

Keyed by (customer, week index): the first answer is stored, and a retry returns it,
so a replayed or retried week never judges different numbers.

The workflow runs it the playbook's grace period after the window ends, so usage
that occurred in the window and arrived late but within the grace counts. An event
counts in its window's verdict if it was received by the time that window was
measured; one of an earlier window received after the previous measurement is
counted once, as late, by the next one (a verdict already acted on stands).
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio import activity

from models.activity_io import MeasureWeeklyUsageInput
from models.onboarding import WeeklyMeasurement
from models.tables import EmailEvent, UsageEvent, WeeklyMeasurementRecord, utc_now
from records.database import Database, insert_ignore
from records.email_events import EventType


class MeasureActivities:
    def __init__(self, database: Database) -> None:
        self._database = database

    @activity.defn
    def measure_weekly_usage(self, input: MeasureWeeklyUsageInput) -> WeeklyMeasurement:
        """Usage facts of one window; the first answer is stored and returned on every retry."""
        with self._database.session() as session:
            stored = session.get(WeeklyMeasurementRecord, (input.customer_id, input.week_index))
            if stored is None:
                row = _measure(session, input)
                insert_ignore(
                    session,
                    WeeklyMeasurementRecord,
                    row.model_dump(),
                    ["customer_id", "week_index"],
                )
                # Another attempt may have stored its answer first: return that one.
                stored = session.get(WeeklyMeasurementRecord, (input.customer_id, input.week_index))
            if stored is None:  # pragma: no cover - the insert above guarantees a row
                raise RuntimeError(f"measurement {input.customer_id}/{input.week_index} missing")
            return WeeklyMeasurement(
                week_index=stored.week_index,
                window_start=stored.window_start,
                window_end=stored.window_end,
                active_users=stored.active_users,
                active_seat_ratio=stored.active_seat_ratio,
                events=stored.events,
                key_actions=dict(stored.key_actions),
                quota_consumption=stored.quota_consumption,
                data_ever_arrived=stored.data_ever_arrived,
                email_opens=stored.email_opens,
                email_clicks=stored.email_clicks,
                late_events=stored.late_events,
            )


def _measure(session: Session, input: MeasureWeeklyUsageInput) -> WeeklyMeasurementRecord:
    measured_at = utc_now()
    received = col(UsageEvent.received_at)
    # What this measurement sees; a later arrival is late for the next one to report.
    customer = (col(UsageEvent.customer_id) == input.customer_id) & (received <= measured_at)
    occurred = col(UsageEvent.occurred_at)
    in_window = (occurred >= input.window_start) & (occurred < input.window_end)

    active_users, events = session.exec(
        select(func.count(func.distinct(UsageEvent.user_id)), func.count())
        .where(customer)
        .where(in_window)
    ).one()

    key_events = set(input.key_actions.values())
    counts: dict[str, int] = {}
    if key_events:
        by_event = session.exec(
            select(UsageEvent.event, func.count())
            .where(customer)
            .where(in_window)
            .where(col(UsageEvent.event).in_(key_events))
            .group_by(UsageEvent.event)
        ).all()
        counts = {event: int(count) for event, count in by_event}

    quota_consumption: float | None = None
    if input.quota_event is not None and input.quota_contracted is not None:
        used = session.exec(
            select(func.coalesce(func.sum(UsageEvent.quantity), 0.0))
            .where(customer)
            .where(occurred < input.window_end)
            .where(col(UsageEvent.event) == input.quota_event)
        ).one()
        quota_consumption = float(used) / input.quota_contracted

    ever = session.exec(
        select(UsageEvent.id).where(customer).where(occurred < input.window_end).limit(1)
    ).first()

    opens, clicks = _engagement(session, input)

    late = 0
    previous = session.get(WeeklyMeasurementRecord, (input.customer_id, input.week_index - 1))
    if previous is not None:
        late = session.exec(
            select(func.count())
            .where(customer)
            .where(occurred < input.window_start)
            .where(received > previous.measured_at)
        ).one()

    ratio = min(1.0, active_users / input.seats_contracted) if input.seats_contracted > 0 else 0.0
    return WeeklyMeasurementRecord(
        customer_id=input.customer_id,
        week_index=input.week_index,
        window_start=input.window_start,
        window_end=input.window_end,
        active_users=int(active_users),
        active_seat_ratio=round(ratio, 4),
        events=int(events),
        key_actions={purpose: counts.get(event, 0) for purpose, event in input.key_actions.items()},
        quota_consumption=quota_consumption,
        data_ever_arrived=ever is not None,
        email_opens=opens,
        email_clicks=clicks,
        late_events=int(late),
        measured_at=measured_at,
    )


def _engagement(session: Session, input: MeasureWeeklyUsageInput) -> tuple[int, int]:
    """Opens and clicks of the customer's emails in the window, from the provider's events."""
    occurred = col(EmailEvent.occurred_at)
    by_event = session.exec(
        select(EmailEvent.event, func.count())
        .where(col(EmailEvent.customer_id) == input.customer_id)
        .where((occurred >= input.window_start) & (occurred < input.window_end))
        .where(col(EmailEvent.event).in_((EventType.OPEN, EventType.CLICK)))
        # A privacy proxy fetching every image is not a person reading.
        .where(col(EmailEvent.machine_open).is_(False))
        .group_by(EmailEvent.event)
    ).all()
    counts = {event: int(count) for event, count in by_event}
    return counts.get(EventType.OPEN, 0), counts.get(EventType.CLICK, 0)
