"""Timeline sentences on the dashboard, rebuilt from each entry's details per language."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from api.dashboard.i18n import Locale, Translator
from api.dashboard.render import Formatter
from api.dashboard.timeline import sentence
from models.events import (
    CompletionReviewHeld,
    ContactAdded,
    KickoffHeld,
    MeetingHeld,
    MeetingKind,
    OnboardingEvent,
)
from models.handoff import Contact, Role
from models.onboarding import WeeklyMeasurement, WeekVerdict
from records.reports import TimelineRow
from workflows.events import event_json

AT = datetime(2026, 11, 25, 9, tzinfo=UTC)
HELD = date(2026, 11, 24)


def _row(kind: str, details: dict[str, Any], summary: str = "the workflow's words") -> TimelineRow:
    return TimelineRow(seq=1, at=AT, kind=kind, stage="kickoff", summary=summary, details=details)


def _said(row: TimelineRow, locale: Locale) -> str:
    return sentence(row, Formatter(Translator(locale), AT))


def _event(event: OnboardingEvent) -> TimelineRow:
    # The details exactly as the workflow writes them.
    return _row(event.kind, event_json(event))


@pytest.mark.parametrize(
    ("event", "english", "japanese"),
    [
        (
            KickoffHeld(held_on=HELD, goals=["Scan every invoice", "Train the team"]),
            "kickoff held on 2026-11-24 with 2 goal(s) agreed",
            "2026-11-24 にキックオフを実施、目標 2 件に合意",
        ),
        (
            MeetingHeld(meeting=MeetingKind.POOR_PROGRESS, held_on=HELD),
            "meeting held on 2026-11-24 (Poor progress)",
            "2026-11-24 にミーティングを実施（進捗不良）",
        ),
        (
            ContactAdded(contact=Contact(email="a@x.example", name="Aoi", role=Role.END_USER)),
            "contact added: Aoi (End user)",
            "担当者を追加: Aoi（エンドユーザー）",
        ),
        (
            CompletionReviewHeld(held_on=HELD, success_confirmed=True),
            "completion review held on 2026-11-24; success: yes",
            "2026-11-24 に完了レビューを実施、短期的成功の確認: はい",
        ),
    ],
)
def test_a_csm_action_reads_in_the_pages_language(
    event: OnboardingEvent, english: str, japanese: str
) -> None:
    assert _said(_event(event), "en") == english
    assert _said(_event(event), "ja") == japanese


def test_a_stage_change_names_both_stages_and_keeps_its_cause() -> None:
    row = _row("transition", {"from": "kickoff", "to": "training", "cause": "kickoff held"})
    assert _said(row, "en") == "Kickoff → Training: kickoff held"
    assert _said(row, "ja") == "キックオフ → トレーニング（kickoff held）"
    first = _row("transition", {"from": None, "to": "handoff", "cause": "handoff received"})
    assert _said(first, "ja").startswith("– → 引き継ぎ")


def test_setup_stuck_says_how_long_in_the_pages_units() -> None:
    row = _row("setup_stuck", {"waited_seconds": 14 * 86400})
    assert _said(row, "en") == "no usage data for 14 d: stuck in setup"
    assert _said(row, "ja") == "利用データが 14日 届いていません: セットアップ停滞"


def test_a_weekly_verdict_reads_with_its_seats_actions_and_outcome() -> None:
    week = WeeklyMeasurement(
        week_index=3,
        window_start=AT,
        window_end=AT,
        active_users=4,
        active_seat_ratio=0.4,
        events=30,
        key_actions={"A": 5, "B": 2},
        quota_consumption=None,
        data_ever_arrived=True,
    )
    verdict = WeekVerdict(
        measurement=week, criteria=[], criteria_met=False, stall_checks=[], stalled=True
    )
    row = _row("weekly_measurement", verdict.model_dump(mode="json"))
    assert _said(row, "en") == "week 3: active seats 40%, 7 key actions: stalled"
    assert _said(row, "ja") == "第3週: アクティブ席率 40%、主要アクション 7 回: 利用停滞"


def test_a_weekly_verdict_says_how_many_events_of_earlier_weeks_arrived_late() -> None:
    week = WeeklyMeasurement(
        week_index=4,
        window_start=AT,
        window_end=AT,
        active_users=4,
        active_seat_ratio=0.4,
        events=30,
        key_actions={"A": 7},
        quota_consumption=None,
        data_ever_arrived=True,
        late_events=12,
    )
    verdict = WeekVerdict(
        measurement=week, criteria=[], criteria_met=False, stall_checks=[], stalled=False
    )
    row = _row("weekly_measurement", verdict.model_dump(mode="json"))
    assert _said(row, "en") == (
        "week 4: active seats 40%, 7 key actions: ok"
        "; 12 events of earlier weeks arrived after their verdict"
    )
    assert _said(row, "ja").endswith("（前週までの利用 12 件が判定後に到着）")


def test_step_and_proposal_emails_name_their_roles_and_steps() -> None:
    sent = _row("campaign_step_sent", {"ref": "A:welcome", "roles": ["administrator", "end_user"]})
    assert _said(sent, "en") == "A:welcome sent to: Administrator, End user"
    assert _said(sent, "ja") == "A:welcome を送信: 管理者, エンドユーザー"
    nobody = _row("campaign_step_sent", {"ref": "B:tips", "roles": [], "no_contact": ["end_user"]})
    assert _said(nobody, "en") == "B:tips not sent: the customer has no contact in its roles"
    assert _said(nobody, "ja") == "B:tips は未送信: 対象の役割に担当者がいません"
    proposals = _row("stall_proposal", {"episode": 1, "steps": ["A:proposal", "C:proposal"]})
    assert _said(proposals, "ja") == "停滞中の利用目的の提案メール: A:proposal, C:proposal"
    assert _said(_row("stall_proposal", {"episode": 1}), "ja") == "管理者へ提案メールを送信"


@pytest.mark.parametrize(
    "row",
    [
        # A kind this dashboard does not know (a newer workflow's).
        _row("loyalty_survey_sent", {"survey": "q1"}),
        # Details it cannot read: a missing field, a stage it does not know, a bad date.
        _row("transition", {"to": "training"}),
        _row("transition", {"from": "kickoff", "to": "orbit", "cause": "launched"}),
        _row("kickoff_held", {"kind": "kickoff_held", "held_on": "last tuesday"}),
        _row("weekly_measurement", {"week_index": 3}),
        _row("campaign_step_sent", {"ref": "A:welcome", "roles": ["auditor"]}),
        # Kinds whose sentence comes from the playbook's own text.
        _row("task_opened", {"task_id": "acme-1"}),
    ],
)
def test_anything_else_keeps_the_workflows_own_summary(row: TimelineRow) -> None:
    assert _said(row, "en") == _said(row, "ja") == "the workflow's words"
