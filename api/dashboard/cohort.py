"""The cohort a CS leader looks at: the funnel by stage and the time spent in each.

Read from the customer projection (`records/customer_lists.cohort`), which the
workflow's own timeline writes keep, so every customer counts, including those whose
workflow Temporal has long forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from api.dashboard.data import visible_filters
from records import customer_lists
from records.customer_lists import Cohort
from records.database import Database
from records.tokens import Principal, TokenRole


@dataclass(frozen=True)
class CohortPage:
    cohort: Cohort
    # The CSMs a lead may narrow to; empty for a CSM, who sees only their own.
    csms: list[str]


def cohort_page(
    database: Database, who: Principal, csm_filter: str | None, now: datetime
) -> CohortPage:
    figures = customer_lists.cohort(database, visible_filters(who, csm_filter), now)
    csms = [] if who.role is TokenRole.CSM else customer_lists.csms(database)
    return CohortPage(figures, csms)
