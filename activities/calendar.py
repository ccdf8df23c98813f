"""Public holidays, fetched by an activity so a workflow keeps the table it was given.

The `holidays` package is data that changes between releases; computing it inside
the workflow would let an upgrade change a replayed history's timers.
"""

from __future__ import annotations

from datetime import date

import holidays
from temporalio import activity

from models.activity_io import PublicHolidaysInput


def public_holidays_of(country: str, years: list[int]) -> dict[date, str]:
    """Each public holiday of `country` (ISO 3166 alpha-2) in `years`, with its name."""
    return dict(holidays.country_holidays(country, years=years))


@activity.defn
async def public_holidays(input: PublicHolidaysInput) -> list[date]:
    return sorted(public_holidays_of(input.country, input.years))
