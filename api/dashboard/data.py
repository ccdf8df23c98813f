"""What the pages read: the customers a person sees, each with its workflow's status.

Visibility (`OnboardingClient.list`) names the customers; the status query gives
each one's state. That is one query per customer (N+1), fine for the tens of
customers a CSM or a small team carries; a larger cohort would want the flags and
dates as search attributes instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from client.errors import LiftoffClientError
from client.onboarding import CustomerSummary, OnboardingClient
from models.onboarding import Due, OnboardingStatus, OpenTask, Stage
from records.tokens import Principal, TokenRole

log = logging.getLogger("liftoff.dashboard")

# Status queries in flight at once for one page.
STATUS_CONCURRENCY = 8
# A query waits for a worker: a customer whose worker is gone must not hold up the page.
STATUS_TIMEOUT_SECONDS = 5.0

# Errors that make one customer's status unavailable without failing the page.
STATUS_ERRORS = (
    TimeoutError,
    LiftoffClientError,
    RPCError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)


@dataclass(frozen=True)
class CustomerView:
    """One customer as visibility lists it, with its status when the query answered."""

    summary: CustomerSummary
    status: OnboardingStatus | None

    @property
    def customer_id(self) -> str:
        return self.summary.customer_id

    @property
    def name(self) -> str:
        return self.status.customer_name if self.status else self.summary.customer_id

    @property
    def csm(self) -> str | None:
        return self.status.csm if self.status else self.summary.csm

    @property
    def stage(self) -> Stage | None:
        return self.status.state.stage if self.status else self.summary.stage

    @property
    def stage_since(self) -> datetime | None:
        return self.status.state.stage_since if self.status else None

    @property
    def stuck(self) -> bool:
        # The status is read after visibility, so it is the fresher of the two.
        return self.status.state.setup.stuck if self.status else self.summary.setup_stuck

    @property
    def stalled(self) -> bool:
        return self.status.state.stall.stalled if self.status else self.summary.stalled

    @property
    def next_due(self) -> Due | None:
        return self.status.next_due if self.status else None

    @property
    def open_tasks(self) -> list[OpenTask]:
        return self.status.state.open_tasks if self.status else []

    @property
    def attention(self) -> bool:
        return self.stuck or self.stalled


async def visible_summaries(
    onboarding: OnboardingClient, who: Principal, csm_filter: str | None
) -> tuple[list[CustomerSummary], list[str]]:
    """The customers `who` sees (narrowed to one CSM for a lead or ops), and the CSMs
    to offer in the filter (empty for a CSM, who sees only their own)."""
    if who.role is TokenRole.CSM:
        found = await onboarding.list(csm=who.csm or "")
        return [s for s in found if who.sees(s.csm)], []
    found = [s for s in await onboarding.list() if who.sees(s.csm)]
    csms = sorted({s.csm for s in found if s.csm})
    if csm_filter:
        wanted = csm_filter.strip().lower()
        found = [s for s in found if (s.csm or "") == wanted]
    return found, csms


async def with_status(
    onboarding: OnboardingClient, summaries: Sequence[CustomerSummary], *, ended_too: bool
) -> list[CustomerView]:
    """Each summary with its status. A customer that has ended is queried only when
    `ended_too`: its workflow is closed, so a worker replays its history to answer."""
    limit = asyncio.Semaphore(STATUS_CONCURRENCY)

    async def one(summary: CustomerSummary) -> CustomerView:
        ended = summary.workflow_status != "running"
        if ended and not ended_too:
            return CustomerView(summary, None)
        async with limit:
            try:
                async with asyncio.timeout(STATUS_TIMEOUT_SECONDS):
                    found = await onboarding.status(summary.customer_id)
                return CustomerView(summary, found)
            except STATUS_ERRORS as err:
                log.warning(
                    "status unavailable",
                    extra={"customer_id": summary.customer_id, "error": str(err)},
                )
                return CustomerView(summary, None)

    return list(await asyncio.gather(*(one(summary) for summary in summaries)))
