"""Routes: customers. Start one from a handoff, list them, read one's status and timeline,
and record what the CSM did.

One customer's state comes through the client layer (Temporal); the list, the timeline
and emails are records the worker wrote, read from the database (the list from the
customer projection, so it outlives Temporal's retention), and so is the customer's
CSM, which decides who may act on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.deps import AppServices, Staff
from api.services import Services
from client.errors import UnknownCustomerError
from client.handoffs import UnknownPurposeError, check_purposes
from client.onboarding import CustomerSummary, StartResult
from models import limits
from models.events import OnboardingEvent
from models.handoff import CUSTOMER_ID_PATTERN, CustomerHandoff, Email
from models.migration import OverridesResult
from models.onboarding import TIMELINE_KINDS, EventResult, OnboardingStatus, Stage
from models.overrides import CustomerOverrides, OverridesRequest
from records.customer_lists import (
    MAX_OFFSET,
    MAX_PAGE,
    SUMMARY_COLUMNS,
    Filters,
    Order,
    list_page,
)
from records.playbook_versions import VersionConflict, record_version
from records.reports import (
    EmailRow,
    TimelineRow,
    UnknownCustomer,
    customer_csm,
    customer_emails,
    customer_timeline,
    product_users,
)
from records.tokens import Principal, TokenRole
from records.usage.store import DEFAULT_USERS_LIMIT, ProductUser

router = APIRouter(prefix="/api/customers", tags=["customers"])


def _printable(value: str) -> str:
    # A NUL in a visibility query fails in Temporal's store, not as a bad request.
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError("contains a control character")
    return value


FilterEmail = Annotated[Email, AfterValidator(_printable)]

CustomerId = Annotated[
    str,
    Path(pattern=CUSTOMER_ID_PATTERN, description="The customer's id, as in the handoff"),
]


class Problem(BaseModel):
    """Why a request was refused, in one sentence."""

    detail: str


def problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


Row = TypeVar("Row")
MAX_USERS_LIMIT = 1000
NOT_YOURS = problem("a token whose role cannot do this")
# Another CSM's customer answers as an unknown one: ids cannot be probed.
UNKNOWN = problem("no onboarding was ever started for this customer, or it is another CSM's")
REFUSED = problem("the workflow refused the event (out of order, invalid) or the onboarding ended")
# What a CSM command through the workflow can answer besides success.
COMMAND_REFUSALS: dict[int | str, dict[str, Any]] = {
    status.HTTP_403_FORBIDDEN: NOT_YOURS,
    status.HTTP_404_NOT_FOUND: UNKNOWN,
    status.HTTP_409_CONFLICT: REFUSED,
}


class CustomerDetail(OnboardingStatus):
    """The workflow's status and the emails sent to the customer's people."""

    emails: list[EmailRow]


def forbid_unless_sees(who: Principal, customer_csm: str, customer_id: str) -> None:
    """Another CSM's customer is answered exactly as one never started, so a CSM
    token cannot tell which ids exist."""
    if not who.sees(customer_csm):
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(UnknownCustomerError(customer_id)))


async def authorize(who: Principal, services: Services, customer_id: str) -> None:
    """Let a CSM act only on their own customers (404 when it was never started).

    The customer's row names its CSM; only a customer without one (just started, or
    never) costs a status query, which tells the two apart. An ended customer passes
    here and its command answers 409. Leads and ops see every customer, so they skip
    the check and an unknown customer is reported by the command itself.
    """
    if who.role is not TokenRole.CSM:
        return
    csm = await asyncio.to_thread(customer_csm, services.database, customer_id)
    if csm is None:
        csm = (await services.onboarding.status(customer_id)).csm
    forbid_unless_sees(who, csm, customer_id)


def recorded_by(who: Principal) -> str:
    # Field limit of models.events._Event.recorded_by.
    return (who.csm or who.name)[:200]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Start a customer's onboarding from the sales handoff",
    responses={
        status.HTTP_200_OK: {
            "model": StartResult,
            "description": "already running: nothing started (a repeated start is harmless)",
        },
        status.HTTP_403_FORBIDDEN: problem("a csm token for a customer of another CSM"),
        status.HTTP_409_CONFLICT: problem(
            "this customer's onboarding has already ended, or the server's playbook version "
            "was recorded with other content"
        ),
    },
)
async def start_customer(
    handoff: CustomerHandoff, who: Staff, services: AppServices, response: Response
) -> StartResult:
    if not who.sees(handoff.csm):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a csm token starts only its own customers: the handoff names {handoff.csm} "
            f"as CSM, this token acts for {who.csm}",
        )
    playbook = services.playbook
    try:
        check_purposes(handoff, playbook)
    except UnknownPurposeError as err:
        # The same shape as FastAPI's own 422, so clients read one format.
        raise RequestValidationError(
            [
                {
                    "type": "unknown_purpose",
                    "loc": ("body", "purposes"),
                    "msg": str(err),
                    "input": err.unknown,
                }
            ]
        ) from None
    # Recorded before the start, so a version running a customer is always listed.
    try:
        await asyncio.to_thread(
            record_version, services.database, playbook, services.playbook_source
        )
    except VersionConflict as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    result = await services.onboarding.start(handoff, playbook)
    if result.already_running:
        if who.role is TokenRole.CSM:
            # The running one may be another CSM's: the id is taken, and nothing more is said.
            running = await services.onboarding.status(handoff.customer_id)
            if not who.sees(running.csm):
                raise HTTPException(
                    status.HTTP_409_CONFLICT,
                    f"customer id {handoff.customer_id!r} is already in use: choose another",
                )
        response.status_code = status.HTTP_200_OK
    return result


# What a summary reads from the projection: a page of 1,000 loads only these.
@router.get(
    "",
    summary="List customers (the customer projection), by stage, CSM or trouble, paged",
    response_description="a page by customer id; X-Total-Count says how many match, "
    "Link names the next page",
)
async def list_customers(
    request: Request,
    response: Response,
    who: Staff,
    services: AppServices,
    stage: Stage | None = None,
    csm: Annotated[
        FilterEmail | None,
        Query(description="the CSM's email; a csm token sees only its own"),
    ] = None,
    stalled: Annotated[bool | None, Query(description="only (not) stalled customers")] = None,
    stuck: Annotated[bool | None, Query(description="only customers (not) stuck in setup")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="customers per page")] = MAX_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="customers to skip")] = 0,
) -> list[CustomerSummary]:
    if who.role is TokenRole.CSM:
        if csm is not None and csm != who.csm:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"a csm token lists only its own customers ({who.csm}), not those of {csm}",
            )
        csm = who.csm
    filters = Filters(csm=csm, stage=stage, stalled=stalled, stuck=stuck)
    page = await asyncio.to_thread(
        list_page,
        services.database,
        filters,
        order=Order.ID,
        limit=limit,
        offset=offset,
        columns=SUMMARY_COLUMNS,
    )
    response.headers["X-Total-Count"] = str(page.total)
    if offset + len(page.rows) < page.total:
        following = request.url.include_query_params(offset=offset + len(page.rows), limit=limit)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return [CustomerSummary.from_projection(row) for row in page.rows]


@router.get(
    "/{customer_id}",
    summary="A customer's onboarding status and the emails sent to its people",
    responses={status.HTTP_403_FORBIDDEN: NOT_YOURS, status.HTTP_404_NOT_FOUND: UNKNOWN},
)
async def get_customer(
    customer_id: CustomerId, who: Staff, services: AppServices
) -> CustomerDetail:
    current = await services.onboarding.status(customer_id)
    forbid_unless_sees(who, current.csm, customer_id)
    emails = await asyncio.to_thread(customer_emails, services.database, customer_id=customer_id)
    return CustomerDetail(**dict(current), emails=emails)


@router.get(
    "/{customer_id}/timeline",
    summary="Everything recorded for a customer, oldest first",
    responses={status.HTTP_403_FORBIDDEN: NOT_YOURS, status.HTTP_404_NOT_FOUND: UNKNOWN},
)
async def get_timeline(
    customer_id: CustomerId,
    who: Staff,
    services: AppServices,
    kind: Annotated[
        list[str] | None,
        Query(description="only entries of these kinds (transition, task_opened...)"),
    ] = None,
) -> list[TimelineRow]:
    unknown = sorted(set(kind or ()) - set(TIMELINE_KINDS))
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"unknown timeline kind {unknown[0]!r}: one of {', '.join(TIMELINE_KINDS)}",
        )
    await authorize(who, services, customer_id)
    return await _records_of(
        services,
        customer_id,
        lambda: customer_timeline(services.database, customer_id=customer_id, kinds=kind),
    )


@router.get(
    "/{customer_id}/users",
    summary="The customer's product users and their traits (email, role...), newest first",
    responses={status.HTTP_403_FORBIDDEN: NOT_YOURS, status.HTTP_404_NOT_FOUND: UNKNOWN},
)
async def get_users(
    customer_id: CustomerId,
    who: Staff,
    services: AppServices,
    limit: Annotated[int, Query(ge=1, le=MAX_USERS_LIMIT)] = DEFAULT_USERS_LIMIT,
) -> list[ProductUser]:
    """Users the intake tied to the customer, with the traits of their identify calls
    and of their group calls, as the product's Segment calls sent them (bounded)."""
    await authorize(who, services, customer_id)
    return await _records_of(
        services,
        customer_id,
        lambda: product_users(services.database, customer_id=customer_id, limit=limit),
    )


async def _records_of(
    services: Services, customer_id: str, read: Callable[[], list[Row]]
) -> list[Row]:
    """A customer's rows from the database; none yet when the worker has not stored the
    customer it just started (a status query tells "not yet" from "never")."""
    try:
        return await asyncio.to_thread(read)
    except UnknownCustomer:
        await services.onboarding.status(customer_id)
        return []


@router.post(
    "/{customer_id}/events",
    summary="Record what happened (kickoff, training, meeting, review...) as the CLI does",
    responses=COMMAND_REFUSALS,
)
async def record_event(
    customer_id: CustomerId,
    event: Annotated[OnboardingEvent, Body()],
    who: Staff,
    services: AppServices,
) -> EventResult:
    """One event, as `kind` names it, sent to the workflow's `record_event` update. Its
    validator's refusal comes back as 409 with the reason; nothing changed then.
    `recorded_by` defaults to the token's CSM (or name)."""
    await authorize(who, services, customer_id)
    if event.recorded_by is None:
        event = event.model_copy(update={"recorded_by": recorded_by(who)})
    return await services.onboarding.record(customer_id, event)


class OverridesBody(BaseModel):
    """A customer's overrides, whole (an empty object clears them), and why."""

    model_config = ConfigDict(extra="forbid")

    overrides: CustomerOverrides
    reason: str = Field(min_length=1, max_length=limits.LINE_CHARS)


@router.put(
    "/{customer_id}/overrides",
    summary="Adjust the playbook for one customer: thresholds, timers, measurement, "
    "deadline, steps to skip",
    responses=COMMAND_REFUSALS,
)
async def put_overrides(
    customer_id: CustomerId, body: OverridesBody, who: Staff, services: AppServices
) -> OverridesResult:
    """The customer's overrides become exactly these (the CSM of the customer, a lead or
    ops), sent to the workflow's `set_overrides` update and recorded on the timeline
    with the reason and the token's CSM (or name). What the customer's playbook cannot
    take comes back as 409 with the reason; nothing changed then."""
    await authorize(who, services, customer_id)
    request = OverridesRequest(
        overrides=body.overrides, reason=body.reason, requested_by=recorded_by(who)
    )
    return await services.onboarding.set_overrides(customer_id, request)
