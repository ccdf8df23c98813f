"""The cohort a CS leader looks at: the funnel by stage and the time spent in each.

Read from the customer projection (`records/customer_lists.cohort`), which the
workflow's own timeline writes keep, so every customer counts, including those whose
workflow Temporal has long forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from analytics.nps import NpsGroup, nps_by
from api.dashboard.data import visible_filters
from models.handoff import Role
from models.playbook import Touchpoint
from records import customer_lists
from records.customer_lists import Cohort
from records.database import Database
from records.projections import SEATS_BANDS
from records.surveys import NpsBy, nps_facts
from records.tokens import Principal, TokenRole


@dataclass(frozen=True)
class CohortPage:
    cohort: Cohort
    # The CSMs a lead may narrow to; empty for a CSM, who sees only their own.
    csms: list[str]
    # NPS by role, touchpoint and seats band, of the same customers.
    nps: dict[NpsBy, list[NpsGroup]]


def cohort_page(
    database: Database, who: Principal, csm_filter: str | None, now: datetime
) -> CohortPage:
    figures = customer_lists.cohort(database, visible_filters(who, csm_filter), now)
    csms = [] if who.role is TokenRole.CSM else customer_lists.csms(database)
    nps = {by: nps_groups(database, who, csm_filter, by) for by in NpsBy}
    return CohortPage(figures, csms, nps)


# Every group shown, answered or not, in the journey's and the bands' order.
_GROUP_ORDER: dict[NpsBy, list[str]] = {
    NpsBy.ROLE: [role.value for role in Role],
    NpsBy.TOUCHPOINT: [touchpoint.value for touchpoint in Touchpoint],
    NpsBy.SEATS_BAND: [band for _, band in SEATS_BANDS] + [f"{SEATS_BANDS[-1][0] + 1}+"],
}


def nps_groups(
    database: Database, who: Principal, csm_filter: str | None, by: NpsBy
) -> list[NpsGroup]:
    """NPS of the customers this person sees (a CSM: their own), one row per group."""
    facts = nps_facts(database, visible_filters(who, csm_filter), by)
    return nps_by(facts, _GROUP_ORDER[by])
