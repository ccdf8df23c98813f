"""Time to onboard and time in stage: Kaplan-Meier with in-flight customers censored,
medians and their 95% intervals checked against the product-limit worked by hand, and
the curve drawn from them."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics.survival import (
    GroupBy,
    Journey,
    estimate_by,
    groups_of,
    time_in_stage,
    time_in_stage_figure,
    time_to_onboard,
    time_to_onboard_figure,
)
from api.dashboard.chart import survival_chart
from models.onboarding import Stage

NOW = datetime(2026, 6, 1, 9, tzinfo=UTC)
DAY = 86_400.0


def journey(customer_id: str, **fields: Any) -> Journey:
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "stage": "kickoff",
        "stage_since": None,
        "started_at": None,
        "ended_at": None,
        "outcome": None,
        "furthest": 1,
        "stays": {},
        "purposes": ["A"],
        "playbook_name": "default",
        "playbook_version": "1",
        "seats_band": "1-10",
        "trial_used": False,
        "locale": "en",
        "country": None,
    }
    # Instants given as datetimes, kept as Unix seconds as the records layer reads them.
    for name in ("stage_since", "started_at", "ended_at"):
        if isinstance(fields.get(name), datetime):
            fields[name] = fields[name].timestamp()
    return Journey(**(values | fields))


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


# Five customers, two censored (time to onboard, in days):
#   a onboarded after 10; b still onboarding, 20 so far (censored); c onboarded after 30;
#   d failed after 40 (censored: it never onboarded); e onboarded after 50.
# Product-limit, S(t) = prod (1 - d_i / n_i) over event times:
#   t=10: n=5, d=1 -> S = 4/5 = 0.8
#   t=30: n=3 (b left at 20), d=1 -> S = 0.8 * 2/3 = 0.5333
#   t=50: n=1 (d left at 40), d=1 -> S = 0
# Median: the first time S falls below 0.5 -> 50 days (counting b as 20 or dropping it
# would say 30).
# Greenwood: se(10) = 0.8 * sqrt(1/(5*4)) = 0.17889; se(30) = 0.5333 *
# sqrt(1/20 + 1/(3*2)) = 0.24826. 95% interval (Brookmeyer-Crowley, log-log):
# t is in when |log(-log S) - log(-log 0.5)| / (se * |1 / (S log S)|) <= 1.96:
#   t=10: |-1.49994 + 0.36651| / (0.17889 * 5.60204) = 1.131 -> in
#   t=30: |-0.46425 + 0.36651| / (0.24826 * 2.98294) = 0.132 -> in
#   t=50: S = 0, undefined -> out
# lower = the first time in (10); upper = the event time after the last in (50).
ONBOARDING = [
    journey(
        "a", stage="onboarded", outcome="onboarded", started_at=days_ago(60), ended_at=days_ago(50)
    ),
    journey("b", stage="adoption", started_at=days_ago(20), stage_since=days_ago(5)),
    journey(
        "c", stage="onboarded", outcome="onboarded", started_at=days_ago(90), ended_at=days_ago(60)
    ),
    journey("d", stage="failed", outcome="failed", started_at=days_ago(45), ended_at=days_ago(5)),
    journey(
        "e", stage="onboarded", outcome="onboarded", started_at=days_ago(51), ended_at=days_ago(1)
    ),
    # Not started yet: no time at risk, not counted.
    journey("f", stage="handoff"),
]


def test_time_to_onboard_censors_in_flight_and_failed_customers_as_worked_by_hand() -> None:
    (group,) = time_to_onboard_figure(ONBOARDING, GroupBy.ALL, NOW).groups
    assert (group.customers, group.events, group.censored) == (5, 3, 2)
    assert [round(p.seconds / DAY, 6) for p in group.curve] == [10, 30, 50]
    assert [round(p.survival, 4) for p in group.curve] == [0.8, 0.5333, 0.0]
    assert [p.at_risk for p in group.curve] == [5, 3, 1]
    assert group.median_seconds == pytest.approx(50 * DAY)
    assert group.median_ci_low_seconds == pytest.approx(10 * DAY)
    assert group.median_ci_high_seconds == pytest.approx(50 * DAY)
    assert group.longest_seconds == pytest.approx(50 * DAY)
    # The band around S(10) = 0.8 (log-log): 0.8^exp(+-1.96 * 0.17889 / |0.8 ln 0.8|).
    spread = 1.959964 * 0.178885 / abs(0.8 * math.log(0.8))
    first = group.curve[0]
    assert first.ci_low == pytest.approx(0.8 ** math.exp(spread), rel=1e-4)
    assert first.ci_high == pytest.approx(0.8 ** math.exp(-spread), rel=1e-4)


def test_a_median_the_curve_never_falls_to_says_not_reached() -> None:
    # One onboarded after 10 days of four; three still in flight (20, 30, 40 days):
    # S(10) = 3/4 and stays there, so the median is not reached. The interval's lower
    # end is 10 (|log(-log .75) - log(-log .5)| / (0.21651 * 4.63466) = 0.876 <= 1.96),
    # and its upper end is not reached either (10 is the last event time).
    rows = [
        journey("a", stage="onboarded", outcome="onboarded", started_at=days_ago(10), ended_at=NOW),
        *(journey(f"r{d}", stage="adoption", started_at=days_ago(d)) for d in (20, 30, 40)),
    ]
    (group,) = time_to_onboard_figure(rows, GroupBy.ALL, NOW).groups
    assert not group.median_reached and group.median_seconds is None
    assert group.median_ci_low_seconds == pytest.approx(10 * DAY)
    assert group.median_ci_high_seconds is None


def test_a_group_with_everyone_censored_says_not_reached() -> None:
    rows = [
        journey("ja-1", locale="ja", stage="adoption", started_at=days_ago(12)),
        journey("ja-2", locale="ja", stage="failed", outcome="failed", started_at=days_ago(30),
                ended_at=days_ago(2)),
        journey("en-1", locale="en", stage="onboarded", outcome="onboarded",
                started_at=days_ago(9), ended_at=days_ago(1)),
    ]  # fmt: skip
    groups = {g.group: g for g in time_to_onboard_figure(rows, GroupBy.LOCALE, NOW).groups}
    ja = groups["ja"]
    assert (ja.customers, ja.events, ja.censored) == (2, 0, 2)
    assert ja.median_seconds is None and ja.median_ci_low_seconds is None
    assert ja.median_ci_high_seconds is None and ja.curve == []
    assert ja.longest_seconds == pytest.approx(28 * DAY)
    assert groups["en"].median_seconds == pytest.approx(8 * DAY)


# Five stays in kickoff (days), two censored:
#   k1 2, moved on to training (event); k2 in kickoff now, 3 so far (censored);
#   k3 4, the onboarding failed in kickoff (censored: it never moved on);
#   k4 6, moved on, failed later in training (event); k5 8, moved on (event).
#   k6 never reached kickoff: not at risk.
# S: t=2: n=5, d=1 -> 0.8; t=6: n=2 (k2, k3 left at 3 and 4), d=1 -> 0.4; t=8: n=1 -> 0.
# Median: first S below 0.5 -> 6 days.
KICKOFF = [
    journey("k1", stage="training", furthest=2, stays={"kickoff": 2 * DAY}),
    journey("k2", stage="kickoff", stage_since=days_ago(3)),
    journey("k3", stage="failed", outcome="failed", furthest=1, stays={"kickoff": 4 * DAY}),
    journey("k4", stage="failed", outcome="failed", furthest=2, stays={"kickoff": 6 * DAY}),
    journey("k5", stage="adoption", furthest=3, stays={"kickoff": 8 * DAY}),
    journey("k6", stage="handoff", furthest=0),
]


def test_time_in_stage_censors_running_stays_and_stays_the_onboarding_ended_in() -> None:
    spans = time_in_stage(KICKOFF, Stage.KICKOFF, NOW)
    assert sorted((s.journey.customer_id, s.seconds / DAY, s.event) for s in spans) == [
        ("k1", 2, True),
        ("k2", 3, False),
        ("k3", 4, False),
        ("k4", 6, True),
        ("k5", 8, True),
    ]
    (group,) = time_in_stage_figure(KICKOFF, Stage.KICKOFF, GroupBy.ALL, NOW).groups
    assert [round(p.survival, 4) for p in group.curve] == [0.8, 0.4, 0.0]
    assert group.median_seconds == pytest.approx(6 * DAY)
    with pytest.raises(ValueError, match="not a timed stage"):
        time_in_stage(KICKOFF, Stage.ONBOARDED, NOW)


def test_groups_come_from_a_fixed_list_and_a_customer_counts_in_each_of_its_purposes() -> None:
    rows = [
        journey("ab", purposes=["A", "B"], started_at=datetime(2026, 3, 31, 23, tzinfo=UTC)),
        journey("b", purposes=["B"], started_at=datetime(2026, 4, 1, tzinfo=UTC), country="JP"),
        journey("none", purposes=[], started_at=datetime(2026, 4, 2, tzinfo=UTC), trial_used=True),
    ]
    spans = time_to_onboard(rows, NOW)

    def members(by: GroupBy) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for span in spans:
            for group in groups_of(span.journey, by):
                found.setdefault(group, []).append(span.journey.customer_id)
        return found

    assert members(GroupBy.PURPOSE) == {"A": ["ab"], "B": ["ab", "b"], "none": ["none"]}
    assert members(GroupBy.START_MONTH) == {"2026-03": ["ab"], "2026-04": ["b", "none"]}
    assert members(GroupBy.COUNTRY) == {"none": ["ab", "none"], "JP": ["b"]}
    assert members(GroupBy.TRIAL_USED) == {"no": ["ab", "b"], "yes": ["none"]}
    assert members(GroupBy.PLAYBOOK_VERSION) == {"default:1": ["ab", "b", "none"]}
    assert [g.group for g in estimate_by(spans, GroupBy.PURPOSE)] == ["A", "B", "none"]
    assert [g.customers for g in estimate_by(spans, GroupBy.PURPOSE)] == [1, 2, 1]
    banded = [
        journey(band, seats_band=band, started_at=days_ago(3))
        for band in ("1001+", "201-1000", "11-50", "1-10", "51-200")
    ]
    groups = estimate_by(time_to_onboard(banded, NOW), GroupBy.SEATS_BAND)
    assert [g.group for g in groups] == ["1-10", "11-50", "51-200", "201-1000", "1001+"]


def test_the_curve_is_drawn_as_steps_with_its_band_between_the_pointwise_limits() -> None:
    # The five customers worked by hand in tests/test_cohort_survival.py: S = 0.8 from
    # day 10, 0.5333 from day 30, 0 at day 50; the axis runs to 50 days on 496 pixels
    # from x = 48, shares on 186 pixels from y = 14 (100%) down to y = 200 (0%).
    figure = time_to_onboard_figure(ONBOARDING, GroupBy.ALL, NOW)
    chart = survival_chart(figure.groups)
    assert chart is not None and chart.x_unit == "days"
    (series,) = chart.series
    # y(0.8) = 14 + 186 * 0.2 = 51.2; y(0.5333) = 100.8; x(10 days) = 48 + 496 / 5 = 147.2.
    assert series.line == "M48,14.0H147.2V51.2H345.6V100.8H544.0V200.0H544.0V200.0"
    # Up the upper limits, back down the lower ones (0.8's: 0.359 -> y 162.1).
    assert series.band.startswith("M48,14.0H147.2V19.7H345.6V39.5")
    assert series.band.endswith("H544.0V187.3H345.6V162.1H147.2V14.0H48Z")
    assert [label for _, label in chart.x_ticks] == ["0", "10", "20", "30", "40", "50"]
