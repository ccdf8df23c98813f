"""What the lists and the cohort read: the customer projection, narrowed to what the
signed-in person may see. Only one customer's page asks Temporal (its status query).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.onboarding import Due, DueKind, Stage
from models.tables import CustomerProjection
from records.customer_lists import Filters
from records.tokens import Principal, TokenRole

# A query waits for a worker: a customer whose worker is gone must not hold up the page.
STATUS_TIMEOUT_SECONDS = 5.0
# Customers per page in the "my customers" lists.
LIST_PAGE_SIZE = 100


def visible_filters(who: Principal, csm_filter: str | None) -> Filters:
    """A CSM sees their own customers; a lead or ops everyone, or one CSM's."""
    if who.role is TokenRole.CSM:
        return Filters(csm=who.csm or "")
    wanted = csm_filter.strip().lower() if csm_filter else None
    return Filters(csm=wanted or None)


@dataclass(frozen=True)
class ListedCustomer:
    """One row of a list, as the projection keeps it."""

    row: CustomerProjection

    @property
    def customer_id(self) -> str:
        return self.row.customer_id

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def csm(self) -> str:
        return self.row.csm

    @property
    def stage(self) -> Stage | None:
        try:
            return Stage(self.row.stage)
        except ValueError:  # a stage name from a newer version of Liftoff
            return None

    @property
    def stage_since(self) -> datetime | None:
        return self.row.stage_since

    @property
    def stuck(self) -> bool:
        return self.row.setup_stuck

    @property
    def stalled(self) -> bool:
        return self.row.stalled

    @property
    def paused(self) -> bool:
        return self.row.paused

    @property
    def paused_since(self) -> datetime | None:
        return self.row.paused_since

    @property
    def pause_reason(self) -> str:
        return self.row.pause_reason or ""

    @property
    def next_due(self) -> Due | None:
        if self.row.next_due_kind is None or self.row.next_due_at is None:
            return None
        try:
            return Due(kind=DueKind(self.row.next_due_kind), at=self.row.next_due_at)
        except ValueError:
            return None

    @property
    def open_tasks(self) -> int:
        return self.row.open_tasks

    @property
    def started_at(self) -> datetime | None:
        return self.row.started_at

    @property
    def ended_at(self) -> datetime | None:
        return self.row.ended_at
