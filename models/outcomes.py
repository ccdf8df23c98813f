"""What happened to customers after onboarding, as other systems report it: renewals,
churn, expansions and contractions (from the CRM or billing), and health scores (from
the CS platform). The same models check a REST body and a CSV row.

Each row has a natural key, so sending it again changes nothing: an event is one
customer's kind on one day; a score is one customer's score on one day from one source.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models import limits
from models.handoff import CUSTOMER_ID_PATTERN
from models.text import refuse_control_characters

# Outside these, a date is a typo (a two-digit year, a serial number from Excel).
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2099, 12, 31)
# Japanese Excel writes dates as 2026/3/1; ISO 8601 is 2026-03-01.
_DAY = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_CURRENCY = r"^[A-Z]{3}$"


class OutcomeKind(StrEnum):
    """What the contract did. `churned` is the one the analysis counts as lost."""

    RENEWED = "renewed"
    CHURNED = "churned"
    EXPANDED = "expanded"
    CONTRACTED = "contracted"


def _day(value: Any) -> Any:
    if isinstance(value, str):
        found = _DAY.match(value.strip())
        if found:
            try:
                return date(*(int(part) for part in found.groups()))
            except ValueError as err:
                raise ValueError(f"{value.strip()!r} is not a date: {err}") from None
    return value


def _in_range(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"{value.isoformat()} is outside {EARLIEST_DATE.year}–{LATEST_DATE.year}")
    return value


class OutsideRow(BaseModel):
    """A row from another system about one customer Liftoff onboarded."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        return refuse_control_characters(data)

    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)


class OutcomeEventIn(OutsideRow):
    """A renewal, churn, expansion or contraction of one customer's contract."""

    kind: OutcomeKind
    occurred_on: date = Field(description="the day it took effect (YYYY-MM-DD)")
    # Annual recurring revenue after the event, in `currency`; informational only.
    arr: float | None = Field(default=None, ge=0, le=1e12, allow_inf_nan=False)
    currency: str | None = Field(default=None, pattern=_CURRENCY, description="ISO 4217, e.g. JPY")
    source: str = Field(
        default="", max_length=limits.OUTCOME_SOURCE_CHARS, description="e.g. salesforce"
    )
    note: str = Field(default="", max_length=limits.NOTE_CHARS)

    _day = field_validator("occurred_on", mode="before")(_day)
    _range = field_validator("occurred_on")(_in_range)

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().upper() or None
        return value

    @model_validator(mode="after")
    def _arr_has_currency(self) -> OutcomeEventIn:
        if self.arr is not None and self.currency is None:
            raise ValueError("arr needs its currency (ISO 4217, e.g. JPY)")
        if self.arr is None and self.currency is not None:
            raise ValueError("currency is given without arr")
        return self


class HealthScoreIn(OutsideRow):
    """One customer's health score on one day, from one source (0 worst, 100 best)."""

    scored_on: date = Field(description="the day of the score (YYYY-MM-DD)")
    score: float = Field(ge=0, le=100, allow_inf_nan=False)
    source: str = Field(
        min_length=1, max_length=limits.OUTCOME_SOURCE_CHARS, description="e.g. gainsight"
    )

    _day = field_validator("scored_on", mode="before")(_day)
    _range = field_validator("scored_on")(_in_range)


class StoreReport(BaseModel):
    """What a write did: rows new to the database, and rows it already held."""

    stored: int = 0
    already_stored: int = 0
