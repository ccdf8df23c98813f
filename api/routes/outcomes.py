"""Routes: outcomes from outside and the analysis of them.

Leads and ops write renewals, churn and health scores (one row or a list of up to
`OUTCOME_ROWS_PER_REQUEST`; bigger back-fills use the CSV import) and read the
analysis; a CSM reads the outcomes and health of their own customers. A row naming a
customer Liftoff never onboarded refuses the whole request with the ids named, so a
client fixes its mapping instead of losing rows quietly.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from analytics.outcomes import CSV_HEADER, OutcomeAnalysis, csv_rows
from api.dashboard.i18n import Locale
from api.dashboard.outcomes import conclusions, read_outcomes
from api.deps import AppServices, Staff, require
from api.routes.customers import NOT_YOURS, UNKNOWN, forbid_unless_sees, problem
from api.routes.playbook_versions import NOT_RECORDED, check_known
from models import limits
from models.handoff import CUSTOMER_ID_PATTERN
from models.outcomes import HealthScoreIn, OutcomeEventIn, StoreReport
from records.outcomes import (
    DEFAULT_HEALTH_LIMIT,
    HealthScoreRow,
    OutcomeEventRow,
    UnknownCustomers,
    customer_health,
    customer_outcomes,
    store_health_scores,
    store_outcome_events,
    unknown_customers,
)
from records.reports import customer_csm
from records.tokens import Principal, TokenRole

router = APIRouter(tags=["outcomes"])

Writer = Annotated[Principal, Depends(require(TokenRole.LEAD, TokenRole.OPS))]
MAX_ROWS = limits.OUTCOME_ROWS_PER_REQUEST
MAX_HEALTH_LIMIT = 5_000
OutcomeBody = Annotated[
    OutcomeEventIn | Annotated[list[OutcomeEventIn], Field(min_length=1, max_length=MAX_ROWS)],
    Body(description=f"one event, or a list of up to {MAX_ROWS}"),
]
HealthBody = Annotated[
    HealthScoreIn | Annotated[list[HealthScoreIn], Field(min_length=1, max_length=MAX_ROWS)],
    Body(description=f"one score, or a list of up to {MAX_ROWS}"),
]
CustomerQuery = Annotated[
    str, Query(pattern=CUSTOMER_ID_PATTERN, description="the customer's id, as in the handoff")
]
VersionQuery = Annotated[
    str | None,
    Query(
        max_length=limits.VERSION_CHARS,
        # A NUL is refused here, not by PostgreSQL.
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="one playbook version's customers (default: every version's)",
    ),
]
WRITE_REFUSALS: dict[int | str, dict[str, Any]] = {
    status.HTTP_403_FORBIDDEN: problem("a csm or ingest token: only leads and ops write"),
    status.HTTP_422_UNPROCESSABLE_CONTENT: problem(
        "a row is invalid, or names a customer Liftoff never onboarded: nothing stored"
    ),
}
READ_REFUSALS: dict[int | str, dict[str, Any]] = {
    status.HTTP_403_FORBIDDEN: NOT_YOURS,
    status.HTTP_404_NOT_FOUND: UNKNOWN,
}


async def _store(write: Any, services: AppServices, rows: list[Any]) -> StoreReport:
    try:
        report: StoreReport = await asyncio.to_thread(write, services.database, rows)
    except UnknownCustomers as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    return report


@router.post(
    "/api/outcomes",
    summary="Store renewals, churn, expansions and contractions (a re-sent row changes nothing)",
    responses=WRITE_REFUSALS,
)
async def post_outcomes(body: OutcomeBody, who: Writer, services: AppServices) -> StoreReport:
    rows = body if isinstance(body, list) else [body]
    return await _store(store_outcome_events, services, rows)


@router.post(
    "/api/health-scores",
    summary="Store health scores from a feed (a re-sent score changes nothing)",
    responses=WRITE_REFUSALS,
)
async def post_health_scores(body: HealthBody, who: Writer, services: AppServices) -> StoreReport:
    rows = body if isinstance(body, list) else [body]
    return await _store(store_health_scores, services, rows)


async def _visible(who: Principal, services: AppServices, customer_id: str) -> None:
    """A customer Liftoff knows, and one the asker may read; another CSM's customer
    answers as an unknown one."""
    unknown = await asyncio.to_thread(unknown_customers, services.database, [customer_id])
    if unknown:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown customer {customer_id!r}")
    if who.role is TokenRole.CSM:
        csm = await asyncio.to_thread(customer_csm, services.database, customer_id)
        forbid_unless_sees(who, csm or "", customer_id)


@router.get(
    "/api/outcomes",
    summary="A customer's renewals, churn, expansions and contractions, oldest first",
    responses=READ_REFUSALS,
)
async def get_outcomes(
    customer_id: CustomerQuery, who: Staff, services: AppServices
) -> list[OutcomeEventRow]:
    await _visible(who, services, customer_id)
    return await asyncio.to_thread(customer_outcomes, services.database, customer_id)


@router.get(
    "/api/health-scores",
    summary="A customer's health scores, newest first",
    responses=READ_REFUSALS,
)
async def get_health_scores(
    customer_id: CustomerQuery,
    who: Staff,
    services: AppServices,
    limit: Annotated[int, Query(ge=1, le=MAX_HEALTH_LIMIT)] = DEFAULT_HEALTH_LIMIT,
) -> list[HealthScoreRow]:
    await _visible(who, services, customer_id)
    return await asyncio.to_thread(customer_health, services.database, customer_id, limit=limit)


class OutcomeAnalysisOut(BaseModel):
    """The figures of `analytics.outcomes.OutcomeAnalysis`, and its conclusion in words."""

    conclusion: dict[Locale, str]
    analysis: dict[str, Any]


async def _analysis(services: AppServices, playbook_version: str | None) -> OutcomeAnalysis:
    if playbook_version is not None:
        await asyncio.to_thread(check_known, services, playbook_version)
    today = datetime.now(UTC).date()
    found = await asyncio.to_thread(read_outcomes, services.database, playbook_version, today)
    return found.analysis


def _jsonable(analysis: OutcomeAnalysis) -> dict[str, Any]:
    figures = asdict(analysis)
    for horizon, criteria in zip(figures["horizons"], analysis.horizons, strict=True):
        for row, found in zip(horizon["criteria"], criteria.criteria, strict=True):
            row["criterion"]["label"] = found.criterion.label
    return figures


@router.get(
    "/api/outcomes/analysis",
    summary="Churn and health 6 and 12 months after onboarding, by outcome and criterion",
    responses={
        status.HTTP_403_FORBIDDEN: problem("only leads and ops read the analysis"),
        status.HTTP_404_NOT_FOUND: NOT_RECORDED,
    },
)
async def get_analysis(
    who: Writer, services: AppServices, playbook_version: VersionQuery = None
) -> OutcomeAnalysisOut:
    analysis = await _analysis(services, playbook_version)
    return OutcomeAnalysisOut(conclusion=conclusions(analysis), analysis=_jsonable(analysis))


@router.get(
    "/api/outcomes/analysis.csv",
    summary="The same figures as CSV, one figure a row",
    response_class=Response,
    responses={
        status.HTTP_200_OK: {"content": {"text/csv": {}}},
        status.HTTP_403_FORBIDDEN: problem("only leads and ops read the analysis"),
        status.HTTP_404_NOT_FOUND: NOT_RECORDED,
    },
)
async def get_analysis_csv(
    who: Writer, services: AppServices, playbook_version: VersionQuery = None
) -> Response:
    analysis = await _analysis(services, playbook_version)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(analysis))
    name = f"outcomes-{playbook_version or 'all'}-{analysis.as_of.isoformat()}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_safe(name)}"'},
    )


def _safe(name: str) -> str:
    # A version is free text in the playbook: the header takes only plain ASCII.
    return "".join(
        char if char.isascii() and (char.isalnum() or char in "._-") else "_" for char in name
    )
