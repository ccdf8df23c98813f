"""Routes: a lead's commands on every ongoing customer of a playbook version.

The cohort is read from the customer projection; the command goes to each customer's
workflow in turn, which judges it as it would one CSM's (an already paused customer
answers with its refusal), and every customer's answer comes back.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path

from api.deps import AppServices, require
from api.routes.customers import NOT_YOURS, recorded_by
from client.onboarding import EachResult
from models import limits
from models.events import OnboardingEvent, Paused, Resumed
from records.customer_lists import Filters, customer_ids
from records.tokens import Principal, TokenRole

router = APIRouter(prefix="/api/playbook-versions", tags=["playbook versions"])

# A lead (or ops) acts on a whole cohort; a CSM acts on their own customers only.
Lead = Annotated[Principal, Depends(require(TokenRole.LEAD, TokenRole.OPS))]
Version = Annotated[str, Path(min_length=1, max_length=limits.VERSION_CHARS)]


async def _to_each(
    services: AppServices, who: Principal, cohort: Filters, event: OnboardingEvent
) -> list[EachResult]:
    if event.recorded_by is None:
        event = event.model_copy(update={"recorded_by": recorded_by(who)})
    ids = await asyncio.to_thread(customer_ids, services.database, cohort)
    return await services.onboarding.record_each(ids, event)


@router.post(
    "/{version}/pause",
    summary="Pause every ongoing customer on this playbook version (leads and ops)",
    responses={403: NOT_YOURS},
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
    responses={403: NOT_YOURS},
)
async def resume_version(version: Version, who: Lead, services: AppServices) -> list[EachResult]:
    cohort = Filters(ended=False, paused=True, playbook_version=version)
    return await _to_each(services, who, cohort, Resumed())
