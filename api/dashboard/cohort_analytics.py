"""The cohort analytics page: time to onboard and in a stage (Kaplan-Meier), where
failed and stalled customers stall, escalations per CSM, and the step emails.

The same figures as the REST API's /api/cohort/... (each table links its CSV there),
for the customers the signed-in person sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from analytics import survival
from analytics.email_steps import StepEmails, StepRecovery
from analytics.stalls import CsmEscalations, StallAnalysis
from analytics.survival import GroupBy, SurvivalFigure, TimedStage
from api.dashboard.chart import SurvivalChart, survival_chart
from api.dashboard.data import visible_filters
from models.onboarding import Stage
from records import cohort_analytics, customer_lists
from records.database import Database
from records.tokens import Principal, TokenRole


@dataclass(frozen=True)
class SurvivalPanel:
    figure: SurvivalFigure
    chart: SurvivalChart | None


@dataclass(frozen=True)
class AnalyticsPage:
    onboard: SurvivalPanel
    in_stage: SurvivalPanel
    stalls: StallAnalysis
    escalations: list[CsmEscalations]
    # The CSMs a lead may narrow to; empty for a CSM, who sees only their own.
    csms: list[str]


@dataclass(frozen=True)
class EmailsPage:
    """The step emails, a page of their own: counting every message's events is the
    costliest read of the analytics, and the times and stalls need not wait for it."""

    email_steps: list[StepEmails]
    recovery: list[StepRecovery]
    csms: list[str]


def analytics_page(
    database: Database,
    who: Principal,
    csm_filter: str | None,
    by: GroupBy,
    stage: TimedStage,
    now: datetime,
) -> AnalyticsPage:
    filters = visible_filters(who, csm_filter)
    journeys = cohort_analytics.journeys(database, filters)
    onboard = survival.time_to_onboard_figure(journeys, by, now)
    in_stage = survival.time_in_stage_figure(journeys, Stage(stage), by, now)
    return AnalyticsPage(
        onboard=SurvivalPanel(onboard, survival_chart(onboard.groups)),
        in_stage=SurvivalPanel(in_stage, survival_chart(in_stage.groups)),
        stalls=cohort_analytics.stalls(database, filters),
        escalations=cohort_analytics.escalations_by_csm(database, filters),
        csms=_csms(database, who),
    )


def emails_page(database: Database, who: Principal, csm_filter: str | None) -> EmailsPage:
    filters = visible_filters(who, csm_filter)
    return EmailsPage(
        email_steps=cohort_analytics.email_steps(database, filters),
        recovery=cohort_analytics.stall_recovery(database, filters),
        csms=_csms(database, who),
    )


def _csms(database: Database, who: Principal) -> list[str]:
    return [] if who.role is TokenRole.CSM else customer_lists.csms(database)
