"""The playbook's judgements, without a server: criteria, stall rules, the weekly clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from models.onboarding import WeeklyMeasurement, WeekVerdict
from models.playbook import Criterion, MeasurementPolicy, Metric
from testkit.factories import make_playbook
from workflows.rules import evaluate_week, next_measurement_at, observe

START = datetime(2026, 11, 2, tzinfo=UTC)


def week(
    index: int, *, ratio: float, actions: int, quota: float = 0.5, data: bool = True
) -> WeeklyMeasurement:
    return WeeklyMeasurement(
        week_index=index,
        window_start=START + timedelta(weeks=index - 1),
        window_end=START + timedelta(weeks=index),
        active_users=int(ratio * 10),
        active_seat_ratio=ratio,
        events=actions,
        key_actions={"A": actions, "B": 100},
        quota_consumption=quota,
        data_ever_arrived=data,
    )


def judge(weeks: list[WeeklyMeasurement], goals: int = 1) -> WeekVerdict:
    earlier: list[WeekVerdict] = []
    for measurement in weeks:
        earlier.append(
            evaluate_week(
                make_playbook(), measurement, goals_agreed=goals, purposes=["A"], earlier=earlier
            )
        )
    return earlier[-1]


def test_criteria_need_the_active_ratio_two_weeks_running() -> None:
    verdict = judge([week(1, ratio=0.7, actions=25)])
    assert not verdict.criteria_met
    ratio = verdict.criteria[0]
    assert (ratio.observed, ratio.threshold, ratio.weeks_running, ratio.met) == (0.7, 0.6, 1, False)

    assert judge([week(1, ratio=0.7, actions=25), week(2, ratio=0.6, actions=20)]).criteria_met
    # A dip breaks the run.
    dipped = judge(
        [
            week(1, ratio=0.7, actions=25),
            week(2, ratio=0.5, actions=25),
            week(3, ratio=0.9, actions=25),
        ]
    )
    assert not dipped.criteria_met and dipped.criteria[0].weeks_running == 1


def test_criteria_use_only_the_customers_purposes_and_need_a_goal() -> None:
    # Purpose B's 100 actions do not count for a customer holding only A.
    verdict = judge([week(1, ratio=0.9, actions=5), week(2, ratio=0.9, actions=5)])
    key = next(c for c in verdict.criteria if c.metric == "key_actions")
    assert (key.observed, key.met) == (5, False)
    no_goal = judge([week(1, ratio=0.9, actions=30), week(2, ratio=0.9, actions=30)], goals=0)
    assert not no_goal.criteria_met
    assert next(c for c in no_goal.criteria if c.metric == "goals_agreed").observed == 0


def test_stall_needs_two_low_weeks_and_data_at_all() -> None:
    assert not judge([week(1, ratio=0.1, actions=1)]).stalled
    assert judge([week(1, ratio=0.1, actions=1), week(2, ratio=0.1, actions=1)]).stalled
    no_data = judge(
        [week(1, ratio=0, actions=0, data=False), week(2, ratio=0, actions=0, data=False)]
    )
    assert not no_data.stalled  # no data at all is "stuck in setup", judged elsewhere
    reasons = judge([week(1, ratio=0.1, actions=9), week(2, ratio=0.1, actions=9)]).stall_checks
    assert [(r.metric, r.met) for r in reasons] == [
        ("active_seat_ratio", True),
        ("key_actions", False),
    ]


def test_playbook_can_judge_email_engagement() -> None:
    playbook = make_playbook(completion_criteria=[Criterion(metric=Metric.EMAIL_OPENS, at_least=2)])
    engaged = week(1, ratio=0.5, actions=5).model_copy(update={"email_opens": 3, "email_clicks": 1})

    verdict = evaluate_week(playbook, engaged, goals_agreed=1, purposes=["A"], earlier=[])

    assert verdict.criteria_met
    assert verdict.criteria[0].observed == 3
    assert observe(Metric.EMAIL_CLICKS, None, engaged, goals_agreed=1, purposes=["A"]) == 1
    # A measurement stored before engagement was measured reads as none.
    old = WeeklyMeasurement.model_validate(
        week(1, ratio=0.5, actions=5).model_dump(exclude={"email_opens", "email_clicks"})
    )
    assert observe(Metric.EMAIL_OPENS, None, old, goals_agreed=1, purposes=["A"]) == 0


def test_measurement_runs_on_the_customers_weekday_and_local_hour() -> None:
    policy = MeasurementPolicy(weekday=0, local_hour=9)
    # Wednesday 2026-11-25 12:00 UTC is 21:00 in Tokyo; next Monday 09:00 JST is 00:00 UTC.
    after = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    at = next_measurement_at(policy, after=after, time_zone="Asia/Tokyo")
    assert at == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    # Exactly at the measurement instant, the next one is a week later.
    assert next_measurement_at(policy, after=at, time_zone="Asia/Tokyo") == at + timedelta(days=7)
    # A customer's own weekday overrides the playbook's.
    friday = next_measurement_at(policy, after=after, time_zone="Asia/Tokyo", weekday=4)
    assert friday.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%a %H:%M") == "Fri 09:00"


def test_local_hour_holds_across_a_daylight_saving_change() -> None:
    policy = MeasurementPolicy(weekday=0, local_hour=9)
    new_york = ZoneInfo("America/New_York")
    before_dst_end = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
    first = next_measurement_at(policy, after=before_dst_end, time_zone="America/New_York")
    second = next_measurement_at(policy, after=first, time_zone="America/New_York")
    assert first.astimezone(new_york).hour == 9 and second.astimezone(new_york).hour == 9
    assert second - first == timedelta(days=7, hours=1)  # 2026-11-01 ends DST


def test_unaligned_measurement_runs_every_interval() -> None:
    policy = MeasurementPolicy(align_to_weekday=False, every=timedelta(seconds=7))
    assert next_measurement_at(policy, after=START, time_zone="UTC") == START + timedelta(seconds=7)
