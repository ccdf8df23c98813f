"""The sales handoff as a CSV file: a CS team's first contact with Liftoff.

Takes what spreadsheets write: UTF-8 with or without a BOM, Shift_JIS from
Japanese Excel (any encoding `records.csv_text` can tell), full-width digits and
letters (NFKC), `role:email` contacts without a display name. Refuses what would
silently lose data: a column it does not know is named with the closest known one.
Every problem of every row is reported in one pass, by line number.
"""

from __future__ import annotations

import csv
import difflib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cli.errors import BadInput
from cli.inputs import describe, parse_bool, parse_contact
from models.handoff import CustomerHandoff
from models.playbook import Playbook
from records.csv_text import UndecodableText, decode_csv_bytes

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
# A handoff file is a list of customers, not a data dump.
MAX_FILE_BYTES = 10 * 1024 * 1024


@dataclass
class HandoffFile:
    handoffs: list[tuple[int, CustomerHandoff]] = field(default_factory=list)
    # "line N: problem; problem", one per refused row, in file order.
    problems: list[str] = field(default_factory=list)
    encoding: str = "utf_8"


def columns_help() -> str:
    width = max(len(name) for name in CSV_COLUMNS)
    lines = [f"  {name:<{width}}  {text}" for name, text in CSV_COLUMNS.items()]
    return "CSV columns (a header row names them, in any order):\n" + "\n".join(lines)


def read_handoff_csv(path: Path, playbook: Playbook) -> HandoffFile:
    """Every row checked; file-level problems (unreadable, bad header) raise BadInput."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise BadInput(f"{path}: {err.strerror or err}") from None
    if len(data) > MAX_FILE_BYTES:
        raise BadInput(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it")
    try:
        decoded = decode_csv_bytes(data)
    except UndecodableText as err:
        raise BadInput(f"{path}: {err}") from None
    reader = csv.DictReader(decoded.text.splitlines())
    header = [_normal(name).lower() for name in reader.fieldnames or []]
    _check_header(path, header)
    reader.fieldnames = header
    result = HandoffFile(encoding=decoded.encoding)
    known_purposes = {purpose.id for purpose in playbook.purposes}
    first_line: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            problems: list[str] = []
            if None in row:
                problems.append("more values than columns")
            handoff = _handoff_from_row(row, problems)
            customer_id = _normal(row.get("customer_id") or "")
            if customer_id in first_line:
                problems.append(f"customer {customer_id!r} repeats line {first_line[customer_id]}")
            elif customer_id:
                first_line[customer_id] = line
            purposes = [p.strip() for p in _normal(row.get("purposes") or "").split(";")]
            unknown = [p for p in purposes if p and p not in known_purposes]
            if unknown:
                problems.append(f"unknown purpose(s) {', '.join(unknown)}")
            if problems:
                result.problems.append(f"line {line}: {'; '.join(problems)}")
            elif handoff is not None:
                result.handoffs.append((line, handoff))
    except csv.Error as err:
        raise BadInput(f"{path}: line {reader.line_num} is not valid CSV: {err}") from None
    if not result.handoffs and not result.problems:
        raise BadInput(f"{path}: no customers in the file")
    return result


def _check_header(path: Path, header: list[str]) -> None:
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, CSV_COLUMNS, n=1, cutoff=0.5)
            hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
        raise BadInput(
            f"{path}: unknown column(s) {', '.join(hints)}; "
            f"the columns are {', '.join(CSV_COLUMNS)}"
        )
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise BadInput(f"{path}: missing column(s) {', '.join(missing)}")


def _normal(text: str) -> str:
    # Full-width digits and letters, as Japanese input methods type them, read as ASCII.
    return unicodedata.normalize("NFKC", text).strip()


def _handoff_from_row(row: dict[str, Any], problems: list[str]) -> CustomerHandoff | None:
    """The row's handoff, or None; every problem found is appended to `problems`."""

    def cell(column: str) -> str:
        value = row.get(column)
        return _normal(value) if isinstance(value, str) else ""

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
    for column, name in (("quota", "quota_contracted"), ("time_zone", "time_zone")):
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
