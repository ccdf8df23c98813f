"""Business-day clocks: a playbook's "2 business days" skips the customer's weekend and
its country's public holidays; tasks fall due and are reminded once when overdue.

The workflow tests run on the time-skipping server, moved to a Friday or to the eve of
Japan's Golden Week, and read the agenda and the tasks a CSM would see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowHandle

from models.countries import HOLIDAY_COUNTRIES
from models.events import Cancelled, MeetingKind, MeetingRequested
from models.handoff import CustomerHandoff
from models.onboarding import Due, DueKind, OnboardingState, OnboardingStatus, Stage, TaskKind
from models.playbook import BusinessDays, Playbook, PlaybookError, StageTimer, TaskPolicy
from models.playbook_diff import differences
from records.database import Database
from records.playbooks import load_playbook
from testkit.factories import REPO, make_handoff, make_playbook
from tests.support.eventually import eventually
from tests.support.temporal import time_skipping_server
from tests.support.workflow_harness import Harness, open_kinds, running_harness, save_history
from workflows.migration import migrate

TOKYO = ZoneInfo("Asia/Tokyo")
DAY = timedelta(days=1)


def business_playbook(
    remind: str = "2 business days", escalate: str = "4 business days"
) -> Playbook:
    timer = StageTimer(remind_csm_after=remind, escalate_to_leader_after=escalate)  # type: ignore[arg-type]
    base = make_playbook()
    timers = base.timers.model_copy(update={"kickoff": timer})
    return make_playbook(timers=timers)


def remind_at(status: OnboardingStatus) -> datetime:
    return next(d.at for d in status.state.agenda if d.kind is DueKind.REMIND_CSM)


async def move_to(h: Harness, instant: datetime) -> None:
    now = await h.env.get_current_time()
    assert instant > now, "the shared test clock is already past this instant"
    await h.env.sleep(instant - now)


async def next_weekday(h: Harness, weekday: int, at: time, zone: ZoneInfo) -> datetime:
    """The next `weekday` (Monday is 0) at local `at`, at least a day ahead."""
    day = (await h.env.get_current_time()).astimezone(zone).date() + DAY
    while day.weekday() != weekday:
        day += DAY
    return datetime.combine(day, at, tzinfo=zone)


@pytest.fixture
async def today_on_a_server_of_its_own(
    task_queue: str, sqlite_database: Database, tmp_path: Path
) -> AsyncIterator[Harness]:
    """A harness on a test server of its own: the shared one's clock is wherever the
    suite left it, possibly past 2099, the last year the holidays library knows for
    Japan."""
    async with (
        time_skipping_server() as env,
        running_harness(env, env.client, task_queue, sqlite_database, tmp_path / "outbox") as h,
    ):
        yield h


async def golden_week_eve(h: Harness) -> date:
    """The next 28 April that falls on a Wednesday (2027 first): Showa Day (Thursday
    29th), a Friday, the weekend, then 3-5 May (Monday to Wednesday) are off in Japan."""
    year = (await h.env.get_current_time()).year
    while not (
        date(year, 4, 28).weekday() == 2
        and datetime(year, 4, 27, tzinfo=UTC) > (await h.env.get_current_time())
    ):
        year += 1
    return date(year, 4, 28)


# Parsing and refusal


@pytest.mark.parametrize(
    ("written", "days"),
    [("5 business days", 5), ("5bd", 5), ("1 business day", 1), ("12 Business Days", 12)],
)
def test_business_days_are_read_in_words_or_short(written: str, days: int) -> None:
    timer = StageTimer(remind_csm_after=written, escalate_to_leader_after="20bd")  # type: ignore[arg-type]
    assert timer.remind_csm_after == BusinessDays(days=days)


def test_business_days_are_stored_as_days_marked_business_and_old_forms_load_unchanged() -> None:
    timer = StageTimer(remind_csm_after="5 business days", escalate_to_leader_after="7bd")  # type: ignore[arg-type]
    stored = timer.model_dump(mode="json")
    assert stored["remind_csm_after"] == {"days": 5, "business": True}
    assert StageTimer.model_validate_json(timer.model_dump_json()) == timer
    # What playbooks pinned in running workflows hold: ISO 8601 and seconds.
    old = StageTimer.model_validate(
        {"remind_csm_after": "P7D", "escalate_to_leader_after": 86400 * 14}
    )
    assert old.remind_csm_after == timedelta(days=7)
    assert old.escalate_to_leader_after == timedelta(days=14)
    assert StageTimer(remind_csm_after="7d", escalate_to_leader_after="2w").model_dump(  # type: ignore[arg-type]
        mode="json"
    ) == {"remind_csm_after": "P7D", "escalate_to_leader_after": "P14D"}


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("0 business days", "whole number from 1 to 120"),
        ("121bd", "whole number from 1 to 120"),
        ("5 busines days", "not a duration"),
        ("five business days", "not a business-day count"),
        ("soon", "not a duration"),
    ],
)
def test_a_bad_wait_is_refused_in_one_sentence_naming_the_field(
    tmp_path: Path, written: str, said: str
) -> None:
    text = (REPO / "playbooks" / "default.toml").read_text()
    first = text.index('remind_csm_after = "7d"')
    path = tmp_path / "bad.toml"
    path.write_text(text[:first] + f'remind_csm_after = "{written}"' + text[first + 23 :])
    with pytest.raises(PlaybookError) as refused:
        load_playbook(path)
    message = str(refused.value)
    assert "timers.kickoff.remind_csm_after" in message
    assert said in message
    assert "escalate_to_leader_after" not in message  # one problem, not one per form


def test_a_reminder_and_escalation_must_count_alike() -> None:
    with pytest.raises(ValidationError, match="both count business days or both count time"):
        StageTimer(remind_csm_after="5bd", escalate_to_leader_after="7d")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="later than remind_csm_after"):
        StageTimer(remind_csm_after="5bd", escalate_to_leader_after="5bd")  # type: ignore[arg-type]


def test_tasks_are_due_in_business_days_by_default_and_a_playbook_may_say_otherwise() -> None:
    assert TaskPolicy().due_after == BusinessDays(days=3)
    assert TaskPolicy().meeting_due_after == BusinessDays(days=5)
    playbook = Playbook.model_validate(
        {**make_playbook().model_dump(mode="json"), "tasks": {"due_after": "36h"}}
    )
    assert playbook.tasks.due_after == timedelta(hours=36)


def test_each_country_a_handoff_accepts_has_a_holiday_calendar() -> None:
    assert {"JP", "US", "GB", "DE"} <= HOLIDAY_COUNTRIES
    supported = holidays.list_supported_countries()
    assert sorted(HOLIDAY_COUNTRIES - set(supported)) == []


def test_a_handoff_country_is_read_in_capitals_and_an_unknown_one_refused() -> None:
    assert make_handoff(country="jp").country == "JP"
    assert make_handoff().country is None
    with pytest.raises(ValidationError, match="unknown country 'XX'"):
        make_handoff(country="XX")
    with pytest.raises(ValidationError, match="unknown country 'Japan'"):
        make_handoff(country="Japan")


# Workflows on the time-skipping server


async def start_at(
    h: Harness, instant: datetime, handoff: CustomerHandoff, playbook: Playbook
) -> tuple[WorkflowHandle[Any, Any], OnboardingStatus]:
    await move_to(h, instant)
    handle = await h.start(handoff, playbook)
    return handle, await h.status(handle)


async def test_a_two_business_day_reminder_set_on_friday_fires_on_tuesday_not_sunday(
    h: Harness,
) -> None:
    utc = ZoneInfo("UTC")
    friday = await next_weekday(h, 4, time(14, 0), utc)
    handoff = make_handoff(time_zone="UTC")
    handle, status = await start_at(h, friday, handoff, business_playbook())

    remind = remind_at(status)
    # Tuesday, as the customer's business day opens; "2d" would have been Sunday.
    assert remind == datetime.combine(friday.date() + 4 * DAY, time(9, 0), tzinfo=utc)
    [schedule] = status.state.open_tasks
    assert schedule.kind is TaskKind.SCHEDULE_KICKOFF and schedule.due_at == remind

    await move_to(h, friday + 2 * DAY + timedelta(hours=1))  # Sunday afternoon
    assert open_kinds(await h.status(handle)) == [TaskKind.SCHEDULE_KICKOFF]
    await move_to(h, remind + timedelta(minutes=1))
    status = await h.wait_for(handle, lambda s: TaskKind.OVERDUE_REMINDER in open_kinds(s))
    assert (await h.env.get_current_time()).weekday() == 1


async def test_a_japanese_customer_skips_showa_day_and_golden_week(
    today_on_a_server_of_its_own: Harness,
) -> None:
    h = today_on_a_server_of_its_own
    eve = await golden_week_eve(h)
    kickoff = datetime.combine(eve, time(10, 0), tzinfo=TOKYO)
    handoff = make_handoff(country="JP", locale="en", time_zone="Asia/Tokyo")
    handle, status = await start_at(h, kickoff, handoff, business_playbook())

    # Thursday 29th (Showa Day) is off, Friday 30th is the first business day, then the
    # weekend and 3-5 May: the second is Thursday 6 May, the fourth Monday 10 May.
    remind = remind_at(status)
    escalate = next(d.at for d in status.state.agenda if d.kind is DueKind.ESCALATE_TO_LEADER)
    assert remind == datetime(eve.year, 5, 6, 9, 0, tzinfo=TOKYO)
    assert escalate == datetime(eve.year, 5, 10, 9, 0, tzinfo=TOKYO)

    await move_to(h, datetime(eve.year, 5, 5, 20, 0, tzinfo=TOKYO))
    assert TaskKind.OVERDUE_REMINDER not in open_kinds(await h.status(handle))
    await move_to(h, remind + timedelta(minutes=1))
    status = await h.wait_for(handle, lambda s: TaskKind.OVERDUE_REMINDER in open_kinds(s))
    reminder = next(t for t in status.state.open_tasks if t.kind is TaskKind.OVERDUE_REMINDER)
    # The reminder task is itself due three business days later (Friday, Monday, Tuesday).
    assert reminder.due_at == datetime(eve.year, 5, 11, 9, 0, tzinfo=TOKYO)

    # Monday 10th the leader is called in; Tuesday 11th the open reminder is overdue.
    await move_to(h, reminder.due_at + timedelta(minutes=1))
    status = await h.wait_for(handle, lambda s: TaskKind.OVERDUE_ESCALATION in open_kinds(s))
    overdue = await eventually_overdue(h, handoff, 1)
    assert overdue[0].details["task_id"] == reminder.task_id

    await h.record(handle, Cancelled(reason="test over"))
    await handle.result()
    save_history("business_day_timers", (await handle.fetch_history()).to_json())


async def test_without_a_country_the_locale_calendar_counts_and_english_counts_weekends_only(
    today_on_a_server_of_its_own: Harness,
) -> None:
    h = today_on_a_server_of_its_own
    eve = await golden_week_eve(h)
    await move_to(h, datetime.combine(eve, time(10, 0), tzinfo=TOKYO))
    playbook = business_playbook()
    by_locale = make_handoff(locale="ja", time_zone="Asia/Tokyo")
    weekends_only = make_handoff(locale="en", time_zone="Asia/Tokyo")
    japanese = await h.status(await h.start(by_locale, playbook))
    english = await h.status(await h.start(weekends_only, playbook))

    # ja: the campaign's default calendar {"ja": "JP"}; en has none: Thursday and Friday.
    assert remind_at(japanese) == datetime(eve.year, 5, 6, 9, 0, tzinfo=TOKYO)
    assert remind_at(english) == datetime(eve.year, 4, 30, 9, 0, tzinfo=TOKYO)


async def eventually_overdue(h: Harness, handoff: CustomerHandoff, count: int) -> list[Any]:
    """The customer's stored `task_overdue` entries, once there are `count`."""
    return await eventually(
        lambda: [e for e in h.timeline(handoff.customer_id) if e.kind == "task_overdue"],
        lambda entries: len(entries) >= count,
        what="task_overdue entries",
    )


async def test_a_task_past_its_due_date_is_reminded_once(h: Harness) -> None:
    monday = await next_weekday(h, 0, time(10, 0), TOKYO)
    playbook = make_playbook(tasks=TaskPolicy(meeting_due_after="1bd"))  # type: ignore[arg-type]
    handoff = make_handoff(time_zone="Asia/Tokyo")
    handle, _ = await start_at(h, monday, handoff, playbook)
    await h.record(handle, MeetingRequested(meeting=MeetingKind.CUSTOMER_REQUEST, notes="pricing"))
    status = await h.wait_for(handle, lambda s: TaskKind.MEETING in open_kinds(s))
    meeting = next(t for t in status.state.open_tasks if t.kind is TaskKind.MEETING)
    assert meeting.due_at == datetime.combine(monday.date() + DAY, time(9, 0), tzinfo=TOKYO)

    await move_to(h, meeting.due_at + timedelta(minutes=1))
    [overdue] = await eventually_overdue(h, handoff, 1)
    assert overdue.details["task_id"] == meeting.task_id
    assert "pricing" in overdue.summary and "overdue" in overdue.summary
    # Days later the meeting is still not held: no second reminder.
    await move_to(h, meeting.due_at + 3 * DAY)
    status = await h.wait_for(handle, lambda s: True)
    assert TaskKind.MEETING in open_kinds(status)
    assert len(await eventually_overdue(h, handoff, 1)) == 1


# A lead moving customers between versions


def test_a_migration_to_business_days_places_the_reminder_from_the_stage_start() -> None:
    old = make_playbook()
    new = business_playbook().model_copy(update={"version": "bd.1"})
    friday = datetime(2027, 4, 23, 14, 0, tzinfo=UTC)
    handoff = make_handoff(time_zone="UTC")
    state = OnboardingState(
        stage=Stage.KICKOFF,
        stage_since=friday,
        started_at=friday,
        agenda=[
            Due(
                kind=DueKind.REMIND_CSM,
                at=friday + old.timers.kickoff.remind_csm_after,  # type: ignore[operator]
                stage=Stage.KICKOFF,
            )
        ],
    )

    change = migrate(state, handoff, old, new, friday + DAY)

    [remind] = change.agenda
    assert remind.at == datetime(2027, 4, 27, 9, 0, tzinfo=UTC)  # Tuesday morning
    assert "timers kickoff remind_csm_after: 1 week → 2 business days" in differences(old, new)
