"""Routes: cohort analytics for the CS leader, each figure as JSON or CSV.

Time to onboard and time in each stage (Kaplan-Meier, in-flight customers censored),
where failed and stalled customers stall, escalations per CSM, step emails and the
steps that preceded a recovery. The same figures the dashboard's analytics page draws
(`/cohort/analytics`), read from the customer projection, the timeline and the send
ledger (`records/cohort_analytics.py`, computed in `analytics/`).

CSV: `format=csv`, or an Accept header naming text/csv (and not application/json
before it). A CSM sees only their customers; a lead or ops everyone, or one CSM's.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel

from analytics.email_steps import StepEmails, StepRecovery
from analytics.stalls import CsmEscalations, MissingCriterion, StallAnalysis
from analytics.survival import GroupBy, SurvivalFigure, TimedStage
from api.deps import AppServices, Staff
from api.routes.customers import NOT_YOURS, FilterEmail
from models.onboarding import Stage
from models.tables import utc_now
from records import cohort_analytics
from records.customer_lists import Filters
from records.tokens import Principal, TokenRole

router = APIRouter(prefix="/api/cohort", tags=["cohort"])

CSV_TYPE = "text/csv"
# Said in a CSV cell where JSON has null: the curve never fell below one half.
NOT_REACHED = "not reached"
# A spreadsheet runs a cell starting with these as a formula (OWASP's CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Model = TypeVar("Model", bound=BaseModel)


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


class SurvivalTable(StrEnum):
    # One row per group: customers, events, censored, median and its interval.
    SUMMARY = "summary"
    # One row per group and event time: the curve and its band.
    CURVE = "curve"


ByQuery = Annotated[GroupBy, Query(description="split the customers by this")]
CsmQuery = Annotated[
    FilterEmail | None,
    Query(description="one CSM's customers (a lead's filter); a csm token sees only its own"),
]
FormatQuery = Annotated[
    Format | None, Query(description="csv for a spreadsheet; default json, or as Accept says")
]
TableQuery = Annotated[
    SurvivalTable, Query(description="csv only: the summary per group, or the curve points")
]
CSV_ANSWER: dict[int | str, dict[str, Any]] = {
    status.HTTP_200_OK: {"content": {CSV_TYPE: {"schema": {"type": "string"}}}},
    status.HTTP_403_FORBIDDEN: NOT_YOURS,
}


def scope(who: Principal, csm: str | None) -> Filters:
    """A CSM: their own customers (naming another CSM is refused); others: all or one."""
    if who.role is TokenRole.CSM:
        if csm is not None and csm != who.csm:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"a csm token sees only its own customers ({who.csm}), not those of {csm}",
            )
        return Filters(csm=who.csm or "")
    return Filters(csm=csm)


def wants_csv(request: Request, format: Format | None) -> bool:
    if format is not None:
        return format is Format.CSV
    accept = request.headers.get("accept", "").lower()
    if CSV_TYPE not in accept:
        return False
    json_at = accept.find("application/json")
    return json_at < 0 or accept.find(CSV_TYPE) < json_at


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, StrEnum):
        value = value.value
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_response(header: Sequence[str], rows: Iterable[Sequence[Any]], name: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return Response(
        out.getvalue(),
        media_type=f"{CSV_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def model_csv(models: Sequence[Model], fields: Sequence[str], name: str) -> Response:
    return csv_response(
        fields, ([getattr(model, field) for field in fields] for model in models), name
    )


SUMMARY_FIELDS = (
    "group",
    "customers",
    "events",
    "censored",
    "longest_seconds",
    "median_seconds",
    "median_ci_low_seconds",
    "median_ci_high_seconds",
)
CURVE_FIELDS = ("group", "seconds", "survival", "ci_low", "ci_high", "at_risk", "events")


def survival_csv(figure: SurvivalFigure, table: SurvivalTable) -> Response:
    name = figure.figure if figure.stage is None else f"{figure.figure}-{figure.stage.value}"
    if table is SurvivalTable.CURVE:
        return csv_response(
            CURVE_FIELDS,
            (
                [group.group, p.seconds, p.survival, p.ci_low, p.ci_high, p.at_risk, p.events]
                for group in figure.groups
                for p in group.curve
            ),
            f"{name}-curve-by-{figure.by.value}",
        )
    return csv_response(
        SUMMARY_FIELDS,
        (
            [
                group.group,
                group.customers,
                group.events,
                group.censored,
                group.longest_seconds,
                group.median_seconds if group.median_reached else NOT_REACHED,
                group.median_ci_low_seconds,
                NOT_REACHED
                if group.median_ci_high_seconds is None
                else group.median_ci_high_seconds,
            ]
            for group in figure.groups
        ),
        f"{name}-by-{figure.by.value}",
    )


@router.get(
    "/time-to-onboard",
    summary="Time to onboard: Kaplan-Meier per group, median and its 95% interval",
    response_model=SurvivalFigure,
    responses=CSV_ANSWER,
)
async def time_to_onboard(
    request: Request,
    who: Staff,
    services: AppServices,
    by: ByQuery = GroupBy.ALL,
    csm: CsmQuery = None,
    format: FormatQuery = None,
    table: TableQuery = SurvivalTable.SUMMARY,
) -> Response | SurvivalFigure:
    """Customers still onboarding are censored at now, failed and cancelled ones at
    their end. A median of null ("not reached" in CSV) means fewer than half onboarded
    within the time followed."""
    filters, now = scope(who, csm), utc_now()
    figure = await asyncio.to_thread(
        cohort_analytics.time_to_onboard, services.database, filters, by, now
    )
    return survival_csv(figure, table) if wants_csv(request, format) else figure


@router.get(
    "/time-in-stage",
    summary="Time in one stage: Kaplan-Meier per group, median and its 95% interval",
    response_model=SurvivalFigure,
    responses=CSV_ANSWER,
)
async def time_in_stage(
    request: Request,
    who: Staff,
    services: AppServices,
    stage: Annotated[TimedStage, Query(description="the stage whose stays are timed")],
    by: ByQuery = GroupBy.ALL,
    csm: CsmQuery = None,
    format: FormatQuery = None,
    table: TableQuery = SurvivalTable.SUMMARY,
) -> Response | SurvivalFigure:
    """Stays still running are censored at now; a stay the onboarding ended in
    (failed, cancelled) at its length."""
    filters, now = scope(who, csm), utc_now()
    figure = await asyncio.to_thread(
        cohort_analytics.time_in_stage, services.database, filters, Stage(stage), by, now
    )
    return survival_csv(figure, table) if wants_csv(request, format) else figure


@router.get(
    "/stalls",
    summary="Failed and stalled customers: the completion criteria they were missing",
    response_model=StallAnalysis,
    responses=CSV_ANSWER,
)
async def stalls(
    request: Request,
    who: Staff,
    services: AppServices,
    csm: CsmQuery = None,
    format: FormatQuery = None,
) -> Response | StallAnalysis:
    """Per criterion, the customers whose latest weekly verdict had it unmet, and for
    how many weeks in a row. The CSV holds the criteria rows."""
    analysis = await asyncio.to_thread(cohort_analytics.stalls, services.database, scope(who, csm))
    if wants_csv(request, format):
        return model_csv(analysis.criteria, list(MissingCriterion.model_fields), "stalls")
    return analysis


@router.get(
    "/escalations",
    summary="Per CSM: customers, stalled and failed ones, open escalations",
    response_model=list[CsmEscalations],
    responses=CSV_ANSWER,
)
async def escalations(
    request: Request,
    who: Staff,
    services: AppServices,
    csm: CsmQuery = None,
    format: FormatQuery = None,
) -> Response | list[CsmEscalations]:
    rows = await asyncio.to_thread(
        cohort_analytics.escalations_by_csm, services.database, scope(who, csm)
    )
    if wants_csv(request, format):
        return model_csv(rows, list(CsmEscalations.model_fields), "escalations")
    return rows


@router.get(
    "/email-steps",
    summary="Step emails per step, role and locale: sent, delivered, opened, clicked, opted out",
    response_model=list[StepEmails],
    responses=CSV_ANSWER,
)
async def email_steps(
    request: Request,
    who: Staff,
    services: AppServices,
    csm: CsmQuery = None,
    format: FormatQuery = None,
) -> Response | list[StepEmails]:
    rows = await asyncio.to_thread(cohort_analytics.email_steps, services.database, scope(who, csm))
    if wants_csv(request, format):
        return model_csv(rows, list(StepEmails.model_fields), "email-steps")
    return rows


@router.get(
    "/stall-recovery",
    summary="Steps sent during a stall, and how many of those stalls were then cleared",
    response_model=list[StepRecovery],
    responses=CSV_ANSWER,
)
async def stall_recovery(
    request: Request,
    who: Staff,
    services: AppServices,
    csm: CsmQuery = None,
    format: FormatQuery = None,
) -> Response | list[StepRecovery]:
    """Counted once per stall episode a step was sent in (from the episode's start to
    its clearing); an episode still running, or ended by the onboarding, is not
    recovered. Preceding a recovery is not causing it."""
    rows = await asyncio.to_thread(
        cohort_analytics.stall_recovery, services.database, scope(who, csm)
    )
    if wants_csv(request, format):
        return model_csv(rows, list(StepRecovery.model_fields), "stall-recovery")
    return rows
