"""Routes: a lead's commands on every ongoing customer of a playbook version.

The cohort is read from the customer projection; the command goes to each customer's
workflow in turn, which judges it as it would one CSM's (an already paused customer
answers with its refusal), and every customer's answer comes back.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from api.dashboard.i18n import LOCALES, Translator
from api.dashboard.review import CSV_HEADER, csv_rows, markdown, review_report, suggestion_figures
from api.deps import AppServices, require
from api.routes.cohort import CSV_ANSWER, csv_response
from api.routes.customers import NOT_YOURS, recorded_by
from client.onboarding import EachResult
from models import limits
from models.events import OnboardingEvent, Paused, Resumed
from models.migration import MigrationPlan, MigrationRequest
from models.playbook import Playbook, PlaybookError
from models.playbook_diff import differences
from records.customer_lists import Filters, customer_ids
from records.playbook_versions import check_recorded, find_version, list_versions
from records.tokens import Principal, TokenRole

router = APIRouter(prefix="/api/playbook-versions", tags=["playbook versions"])

# A lead (or ops) acts on a whole cohort; a CSM acts on their own customers only.
Lead = Annotated[Principal, Depends(require(TokenRole.LEAD, TokenRole.OPS))]
Version = Annotated[str, Path(min_length=1, max_length=limits.VERSION_CHARS)]
NOT_RECORDED: dict[str, Any] = {"description": "no such version recorded"}


async def _to_each(
    services: AppServices, who: Principal, cohort: Filters, event: OnboardingEvent
) -> list[EachResult]:
    if event.recorded_by is None:
        event = event.model_copy(update={"recorded_by": recorded_by(who)})
    if cohort.playbook_version is not None:
        await asyncio.to_thread(check_known, services, cohort.playbook_version)
    ids = await asyncio.to_thread(customer_ids, services.database, cohort)
    return await services.onboarding.record_each(ids, event)


def check_known(services: AppServices, version: str) -> None:
    """404 for a version never recorded nor followed (`check_recorded`)."""
    try:
        check_recorded(services.database, version)
    except PlaybookError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None


@router.post(
    "/{version}/pause",
    summary="Pause every ongoing customer on this playbook version (leads and ops)",
    responses={403: NOT_YOURS, 404: NOT_RECORDED},
)
async def pause_version(
    version: Version, event: Annotated[Paused, Body()], who: Lead, services: AppServices
) -> list[EachResult]:
    """`{"reason": ..., "resume_on": "YYYY-MM-DD"}` (the date optional) to each customer
    not already paused; each answers with its result or its refusal."""
    cohort = Filters(ended=False, paused=False, playbook_version=version)
    return await _to_each(services, who, cohort, event)


@router.post(
    "/{version}/resume",
    summary="Resume every paused customer on this playbook version (leads and ops)",
    responses={403: NOT_YOURS, 404: NOT_RECORDED},
)
async def resume_version(version: Version, who: Lead, services: AppServices) -> list[EachResult]:
    cohort = Filters(ended=False, paused=True, playbook_version=version)
    return await _to_each(services, who, cohort, Resumed())


class VersionOut(BaseModel):
    version: str
    name: str
    content_hash: str
    source: str
    first_used_at: datetime
    ongoing: int
    ended: int


@router.get("", summary="Every playbook version recorded, with its customers (leads and ops)")
async def versions(who: Lead, services: AppServices) -> list[VersionOut]:
    rows = await asyncio.to_thread(list_versions, services.database)
    return [VersionOut(**vars(row)) for row in rows]


def _recorded(services: AppServices, version: str) -> Playbook:
    try:
        return find_version(services.database, version)
    except PlaybookError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None


class DiffOut(BaseModel):
    old: str
    new: str
    differences: list[str]


@router.get(
    "/{old}/diff/{new}",
    summary="What changes from one recorded version to another, in words (leads and ops)",
)
async def diff(old: Version, new: Version, who: Lead, services: AppServices) -> DiffOut:
    before = await asyncio.to_thread(_recorded, services, old)
    after = await asyncio.to_thread(_recorded, services, new)
    return DiffOut(old=old, new=new, differences=differences(before, after))


class MigrationIn(BaseModel):
    """Which customers move: listed by id, every ongoing one on a version, or all."""

    model_config = ConfigDict(extra="forbid")

    customers: list[Annotated[str, Field(min_length=1, max_length=limits.CUSTOMER_ID_CHARS)]] = (
        Field(default_factory=list, max_length=limits.MIGRATION_CUSTOMERS)
    )
    from_version: str | None = Field(default=None, min_length=1, max_length=limits.VERSION_CHARS)
    all: bool = False
    dry_run: bool = True
    reason: str = Field(min_length=1, max_length=limits.LINE_CHARS)

    @model_validator(mode="after")
    def _one_selection(self) -> MigrationIn:
        if sum([bool(self.customers), self.from_version is not None, self.all]) != 1:
            raise ValueError("name customers, or a from_version, or all: exactly one")
        return self


@router.post(
    "/{version}/migrate",
    summary="Preview (dry_run, the default) or apply moving customers to this recorded "
    "version (leads and ops)",
    responses={403: NOT_YOURS, 404: NOT_RECORDED},
)
async def migrate(
    version: Version, body: MigrationIn, who: Lead, services: AppServices
) -> list[MigrationPlan]:
    """Each customer answers with its plan (timers re-based, steps added, dropped or
    already sent, criteria whose verdict changes) or why it cannot move; the others
    go ahead. Applying records who and why on each customer's timeline."""
    playbook = await asyncio.to_thread(_recorded, services, version)
    try:
        request = MigrationRequest(
            playbook=playbook, reason=body.reason, requested_by=recorded_by(who)
        )
    except ValidationError as err:
        raise RequestValidationError(err.errors()) from None
    if body.customers:
        ids = list(dict.fromkeys(body.customers))
    else:
        if body.from_version is not None:
            await asyncio.to_thread(check_known, services, body.from_version)
        cohort = Filters(ended=False, playbook_version=body.from_version)
        ids = await asyncio.to_thread(customer_ids, services.database, cohort)
    return await services.onboarding.migrate_each(ids, request, dry_run=body.dry_run)


class ReviewFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    MD = "md"


def _file_name(version: str) -> str:
    return "review-" + re.sub(r"[^A-Za-z0-9._-]", "_", version)


@router.get(
    "/{version}/review",
    summary="The playbook review report of this version (leads and ops): JSON, CSV or Markdown",
    responses={**CSV_ANSWER, 404: NOT_RECORDED},
)
async def review(
    version: Version,
    who: Lead,
    services: AppServices,
    format: Annotated[ReviewFormat, Query(description="json, csv or md")] = ReviewFormat.JSON,
    lang: Annotated[str, Query(pattern="^(en|ja)$", description="md: en or ja")] = "en",
) -> Any:
    """Funnel, time to onboard, stalls, email steps, NPS by role, the outcome analysis
    and a suggestion per completion criterion with the figures behind it."""
    await asyncio.to_thread(check_known, services, version)
    now = datetime.now(UTC)
    report = await asyncio.to_thread(review_report, services.database, version, now, now.date())
    if format is ReviewFormat.CSV:
        return csv_response(CSV_HEADER, csv_rows(report), _file_name(version))
    t = Translator("ja" if lang == "ja" else "en")
    if format is ReviewFormat.MD:
        return Response(
            markdown(report, t),
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{_file_name(version)}.md"'},
        )
    c = report.cohort
    return {
        "version": version,
        "finished": report.finished,
        "onboarded": c.onboarded,
        "failed": c.failed,
        "cancelled": c.cancelled,
        "active": c.active,
        "task": None
        if report.task is None
        else {
            "assignee": report.task.assignee,
            "state": report.task.state,
            "opened_at": report.task.opened_at,
        },
        "suggestions": [
            {
                "criterion": s.criterion,
                "action": s.action.value,
                "reason": {loc: Translator(loc)(f"reason_{s.reason.value}") for loc in LOCALES},
                "figures": suggestion_figures(s),
                "met": s.met,
                "not_met": s.not_met,
                "churn_met": s.churn_met,
                "churn_not_met": s.churn_not_met,
                "churn_difference": [
                    s.churn_difference.value,
                    s.churn_difference.low,
                    s.churn_difference.high,
                    s.churn_difference.verdict.value,
                ],
                "health_lift": [
                    s.health_lift.value,
                    s.health_lift.low,
                    s.health_lift.high,
                    s.health_lift.verdict.value,
                ],
                "troubled_share": s.troubled_share,
            }
            for s in report.suggestions
        ],
        "csv": f"/api/playbook-versions/{version}/review?format=csv",
        "markdown": f"/api/playbook-versions/{version}/review?format=md",
    }
