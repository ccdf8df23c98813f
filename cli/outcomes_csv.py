"""Outcomes and health scores as CSV files, as a CRM or a CS platform exports them.

Read like the handoff CSV (`cli/csv_file.py`): any encoding Excel writes, NFKC,
unknown columns named with the closest one, every problem of every row reported by
line. A row repeating another's natural key in the same file is refused, as the
handoff refuses a repeated customer.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import ValidationError

from cli.csv_file import read_csv_table
from cli.errors import BadInput
from models.errors import describe
from models.outcomes import HealthScoreIn, OutcomeEventIn, OutcomeKind, OutsideRow

OUTCOME_COLUMNS: dict[str, str] = {
    "customer_id": "the customer's id in Liftoff, required",
    "kind": f"{', '.join(k.value for k in OutcomeKind)}, required",
    "occurred_on": "the day it took effect, YYYY-MM-DD (or 2026/3/1), required",
    "arr": "annual recurring revenue after it, a number (needs currency)",
    "currency": "ISO 4217 code of arr, e.g. JPY",
    "source": "the system it came from, e.g. salesforce",
    "note": "anything worth keeping with it",
}
OUTCOME_REQUIRED = ("customer_id", "kind", "occurred_on")
HEALTH_COLUMNS: dict[str, str] = {
    "customer_id": "the customer's id in Liftoff, required",
    "scored_on": "the day of the score, YYYY-MM-DD (or 2026/3/1), required",
    "score": "0 (worst) to 100 (best), required",
    "source": "the feed it came from, e.g. gainsight, required",
}
HEALTH_REQUIRED = ("customer_id", "scored_on", "score", "source")

Row = TypeVar("Row", bound=OutsideRow)


@dataclass
class OutsideFile(Generic[Row]):
    rows: list[tuple[int, Row]] = field(default_factory=list)
    # Each refused row's line and its problems.
    refused: dict[int, str] = field(default_factory=dict)
    encoding: str = "utf_8"

    @property
    def problems(self) -> list[str]:
        """ "line N: problem; problem", one per refused row, in file order."""
        return [f"line {line}: {reason}" for line, reason in sorted(self.refused.items())]

    def refuse(self, lines: dict[int, str]) -> None:
        """Move the rows on these lines to the refused ones, with the reason given."""
        self.refused |= lines
        self.rows = [(line, row) for line, row in self.rows if line not in lines]


def _read(
    path: Path,
    columns: dict[str, str],
    required: tuple[str, ...],
    model: type[Row],
    key: Callable[[Row], Hashable],
    what: str,
) -> OutsideFile[Row]:
    table = read_csv_table(path, columns, required)
    result: OutsideFile[Row] = OutsideFile(encoding=table.encoding)
    first_line: dict[Hashable, int] = {}
    for row in table.rows:
        problems = ["more values than columns"] if row.overflowing else []
        # An empty optional cell takes the model's default.
        given = {name: value for name, value in row.cells.items() if value}
        try:
            parsed = model.model_validate(given)
        except ValidationError as err:
            problems.append(describe(err))
            parsed = None
        if parsed is not None:
            if key(parsed) in first_line:
                problems.append(f"repeats line {first_line[key(parsed)]}")
            else:
                first_line[key(parsed)] = row.line
        if problems:
            result.refused[row.line] = "; ".join(problems)
        elif parsed is not None:
            result.rows.append((row.line, parsed))
    if not result.rows and not result.refused:
        raise BadInput(f"{path}: no {what} in the file")
    return result


def read_outcomes_csv(path: Path) -> OutsideFile[OutcomeEventIn]:
    return _read(
        path,
        OUTCOME_COLUMNS,
        OUTCOME_REQUIRED,
        OutcomeEventIn,
        lambda e: (e.customer_id, e.kind, e.occurred_on),
        "outcome events",
    )


def read_health_csv(path: Path) -> OutsideFile[HealthScoreIn]:
    return _read(
        path,
        HEALTH_COLUMNS,
        HEALTH_REQUIRED,
        HealthScoreIn,
        lambda s: (s.customer_id, s.scored_on, s.source),
        "health scores",
    )
