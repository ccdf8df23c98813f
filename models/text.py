"""Free text that people type: refused when it carries control characters.

A NUL cannot be stored in PostgreSQL text, so a customer started with one would
leave its first database write retrying forever; other control characters only
corrupt what CSMs read. Tabs and line breaks stay allowed.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models import limits

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def shorten(text: str, width: int = 40) -> str:
    """Input echoed in an error, cut to `width` characters: a message stays one
    readable line however much was sent."""
    return text if len(text) <= width else text[: width - 1] + "…"


def refuse_control_characters(value: Any) -> Any:
    """For `model_validator(mode="before")`: checks every string in the raw input."""
    if isinstance(value, str):
        found = _CONTROL.search(value)
        if found:
            raise ValueError(f"text must not contain control character {found.group()!r}")
    elif isinstance(value, dict):
        for item in value.values():
            refuse_control_characters(item)
    elif isinstance(value, list | tuple):
        for item in value:
            refuse_control_characters(item)
    return value


class ReasonedRequest(BaseModel):
    """A change someone asks of a customer's workflow: who asks and why, each bounded
    and free of control characters."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=limits.LINE_CHARS)
    requested_by: str = Field(min_length=1, max_length=limits.NAME_CHARS)

    @field_validator("reason", "requested_by", mode="before")
    @classmethod
    def _plain_text(cls, value: object) -> object:
        return refuse_control_characters(value)
