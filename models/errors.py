"""A pydantic validation error as one line a person can act on."""

from __future__ import annotations

from pydantic import ValidationError

from models.text import shorten


def describe(err: ValidationError, *, tagged: bool = False) -> str:
    """A pydantic error as one readable line: `field: problem; field: problem`.

    `tagged`: the error comes from a discriminated union, whose first location
    part is the event kind, which the user did not type.
    """
    problems = []
    for error in err.errors():
        loc = error["loc"][1:] if tagged else error["loc"]
        where = ".".join(str(part) for part in loc if not isinstance(part, int))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "literal_error" or error["type"] == "enum":
            message = f"{message}, got {shorten(repr(error['input']), 60)}"
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
