"""The sales handoff as a CSV file: a CS team's first contact with Liftoff.

Read as every CSV import reads its file (`cli/csv_file.py`: any encoding Excel writes,
NFKC, unknown columns named with the closest one); takes `role:email` contacts without
a display name. Every problem of every row is reported in one pass, by line number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cli.csv_file import columns_help as csv_columns_help
from cli.csv_file import read_csv_table
from cli.errors import BadInput
from cli.inputs import parse_bool, parse_contact
from models.errors import describe
from models.handoff import CustomerHandoff
from models.playbook import Playbook

# Column -> what it holds, for `liftoff start --help` and the refusals.
CSV_COLUMNS: dict[str, str] = {
    "customer_id": "the customer's id (letters, digits, . _ -), required",
    "name": "the company name, required",
    "csm": "the CSM's email, required",
    "cs_leader": "the CS leader's email, required",
    "seats": "seats contracted, required",
    "contacts": "'role:Name <email>' or 'role:email', separated by ;",
    "quota": "usage quota contracted",
    "time_zone": "IANA time zone, e.g. Asia/Tokyo (default UTC)",
    "locale": "ja or en (default en)",
    "country": "ISO 3166 code whose public holidays are not business days, e.g. JP",
    "purposes": "purpose ids from the playbook, separated by ;",
    "trial_used": "true/false: skips the product training",
    "already_using": "true/false: skips the product training",
    "notes": "what sales wants CS to know",
}
REQUIRED_COLUMNS = ("customer_id", "name", "csm", "cs_leader", "seats")
# The handoff's field names, as the columns that fill them are called.
_COLUMN_OF_FIELD = {
    "seats_contracted": "seats",
    "quota_contracted": "quota",
    "handoff_notes": "notes",
}


@dataclass
class HandoffFile:
    handoffs: list[tuple[int, CustomerHandoff]] = field(default_factory=list)
    # "line N: problem; problem", one per refused row, in file order.
    problems: list[str] = field(default_factory=list)
    encoding: str = "utf_8"


def columns_help() -> str:
    return csv_columns_help(CSV_COLUMNS)


def read_handoff_csv(path: Path, playbook: Playbook) -> HandoffFile:
    """Every row checked; file-level problems (unreadable, bad header) raise BadInput."""
    table = read_csv_table(path, CSV_COLUMNS, REQUIRED_COLUMNS)
    result = HandoffFile(encoding=table.encoding)
    known_purposes = {purpose.id for purpose in playbook.purposes}
    first_line: dict[str, int] = {}
    for row in table.rows:
        line, cells = row.line, row.cells
        problems: list[str] = []
        if row.overflowing:
            problems.append("more values than columns")
        handoff = _handoff_from_row(cells, problems)
        customer_id = cells["customer_id"]
        if customer_id in first_line:
            problems.append(f"customer {customer_id!r} repeats line {first_line[customer_id]}")
        elif customer_id:
            first_line[customer_id] = line
        purposes = [p.strip() for p in cells["purposes"].split(";")]
        unknown = [p for p in purposes if p and p not in known_purposes]
        if unknown:
            problems.append(f"unknown purpose(s) {', '.join(unknown)}")
        if problems:
            result.problems.append(f"line {line}: {'; '.join(problems)}")
        elif handoff is not None:
            result.handoffs.append((line, handoff))
    if not result.handoffs and not result.problems:
        raise BadInput(f"{path}: no customers in the file")
    return result


def _handoff_from_row(cells: dict[str, str], problems: list[str]) -> CustomerHandoff | None:
    """The row's handoff, or None; every problem found is appended to `problems`."""

    def cell(column: str) -> str:
        return cells[column]

    contacts = []
    for spec in cell("contacts").split(";"):
        if spec.strip():
            try:
                contacts.append(parse_contact(spec))
            except BadInput as err:
                problems.append(str(err))
    fields: dict[str, Any] = {
        "customer_id": cell("customer_id"),
        "name": cell("name"),
        "csm": cell("csm"),
        "cs_leader": cell("cs_leader"),
        "contacts": contacts,
        "seats_contracted": cell("seats"),
        "purposes": [p.strip() for p in cell("purposes").split(";") if p.strip()],
        "handoff_notes": cell("notes"),
    }
    for column in ("trial_used", "already_using"):
        try:
            fields[column] = parse_bool(cell(column), column)
        except BadInput as err:
            problems.append(str(err))
    for column, name in (
        ("quota", "quota_contracted"),
        ("time_zone", "time_zone"),
        ("country", "country"),
    ):
        if cell(column):
            fields[name] = cell(column)
    if cell("locale"):
        fields["locale"] = cell("locale").lower()
    try:
        handoff = CustomerHandoff.model_validate(fields)
    except ValidationError as err:
        problems.append(_in_columns(describe(err)))
        return None
    return handoff if not problems else None


def _in_columns(text: str) -> str:
    for name, column in _COLUMN_OF_FIELD.items():
        text = text.replace(f"{name}:", f"{column}:")
    return text
