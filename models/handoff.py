"""What sales hands over when a customer signs: the input of one onboarding."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from models import limits
from models.countries import known_country
from models.text import refuse_control_characters

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

Locale = Literal["ja", "en"]


def _check_email(value: str) -> str:
    value = value.strip()
    if len(value) > limits.EMAIL_CHARS:
        raise ValueError(f"an email address has at most {limits.EMAIL_CHARS} characters")
    if not value.isprintable():
        # A lone surrogate (no UTF-8 carries it) or a control character: nothing can send
        # to it, and storing or serializing it fails further on.
        raise ValueError("an email address holds only printable characters")
    if not _EMAIL.match(value):
        raise ValueError(f"not an email address: {value!r}")
    return value.lower()


# The format shows in the API's OpenAPI schema (and lets schema-driven tests make valid ones).
Email = Annotated[
    str, AfterValidator(_check_email), WithJsonSchema({"type": "string", "format": "email"})
]


class Role(StrEnum):
    """The layers of a customer's organisation that get different content."""

    DECISION_MAKER = "decision_maker"
    ADMINISTRATOR = "administrator"
    END_USER = "end_user"


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: str = Field(min_length=1, max_length=limits.NAME_CHARS)
    role: Role


class CustomerHandoff(BaseModel):
    """A contracted customer as sales hands it to customer success."""

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        return refuse_control_characters(data)

    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)
    name: str = Field(min_length=1, max_length=limits.NAME_CHARS)
    csm: Email
    cs_leader: Email
    contacts: list[Contact] = Field(default_factory=list, max_length=limits.CONTACTS)
    # Bounded so what is stored fits every database's integer and float.
    seats_contracted: int = Field(gt=0, le=10_000_000)
    quota_contracted: float | None = Field(default=None, gt=0, le=1e15)
    time_zone: str = Field(default="UTC", max_length=limits.ZONE_CHARS)
    locale: Locale = "en"
    purposes: list[Annotated[str, Field(max_length=limits.PURPOSE_ID_CHARS)]] = Field(
        default_factory=list, max_length=limits.LIST_ITEMS
    )
    trial_used: bool = False
    already_using: bool = False
    handoff_notes: str = Field(default="", max_length=limits.HANDOFF_NOTES_CHARS)
    contracted_on: date | None = None
    # Overrides the playbook's measurement weekday (0 = Monday) for this customer.
    measurement_weekday: int | None = Field(default=None, ge=0, le=6)
    # ISO 3166 alpha-2: whose public holidays are not business days for this customer.
    # Unset: the playbook's campaign.holiday_calendars by locale, as before.
    country: str | None = Field(default=None, max_length=2)

    @field_validator("country", mode="before")
    @classmethod
    def _known_country(cls, value: Any) -> Any:
        if isinstance(value, str):
            return known_country(value) if value.strip() else None
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone: {value!r}") from None
        return value

    @field_validator("purposes")
    @classmethod
    def _unique_purposes(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))
