"""Usage from CSV files: `liftoff usage import` and the HTTP back-fill upload.

Columns: customer_id, user_id, event, occurred_at, and optionally quantity
(default 1, its decimal mark read as records/csv_text.py says) and event_key. An
event_key makes a redelivered row harmless; a row without one is keyed by its values
and its place among the file's identical rows, so importing a file again stores none
of its rows twice."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TextIO

from pydantic import BaseModel, Field
from sqlmodel import col, select

from models.tables import Customer, utc_now
from models.text import shorten
from records.csv_text import (
    SNIFF_BYTES,
    UndecodableText,
    csv_delimiter,
    csv_number,
    sniff_encoding,
    unknown_columns,
)
from records.database import Database
from records.usage.events import event_values, parse_instant, store_event_rows
from records.usage.rejected import rejected_rows
from records.usage.store import (
    MAX_CUSTOMER_ID,
    MAX_EVENT,
    MAX_MESSAGE_ID,
    MAX_QUANTITY,
    MAX_USER_ID,
    OUTSIDE_WINDOW,
    IntakeError,
    IntakeReport,
    PendingWrites,
    RejectedItem,
    UnmatchedItem,
    plausible_event_time,
    write_pending,
)

# A CSV back-fill upload; larger files are split, or imported with `liftoff usage import`.
MAX_CSV_BYTES = 50 * 1024 * 1024

REQUIRED_COLUMNS = ("customer_id", "user_id", "event", "occurred_at")
OPTIONAL_COLUMNS = ("quantity", "event_key")
# Rows stored per transaction: large files neither hold one huge transaction
# nor pay a commit per row.
ROWS_PER_TRANSACTION = 500
CSV_KIND = "csv"
CSV_ENDPOINT = "/api/usage/csv"
REASON_UNKNOWN_CSV_CUSTOMER = "customer_id names no customer"


class UsageImportReport(BaseModel):
    stored: int = 0
    duplicates: int = 0
    # (line number in the file, reason); line 1 is the header.
    rejected: list[tuple[int, str]] = Field(default_factory=list)


_COLUMN_LIMITS = {
    "customer_id": MAX_CUSTOMER_ID,
    "user_id": MAX_USER_ID,
    "event": MAX_EVENT,
    "event_key": MAX_MESSAGE_ID,
}


def parse_usage_row(
    row: dict[str, str | None], known: set[str], *, delimiter: str = ","
) -> dict[str, object] | str:
    """The row's values, or the reason it is rejected. The file's `delimiter` tells how
    a quantity's decimal mark reads; a value Liftoff wrote itself reads as a comma file's."""
    fields = {key: (value or "").strip() for key, value in row.items() if key is not None}
    if None in row:
        return "more values than columns"
    for name in REQUIRED_COLUMNS:
        if not fields.get(name):
            return f"{name} is empty"
    for name, limit in _COLUMN_LIMITS.items():
        value = fields.get(name, "")
        if len(value) > limit:
            return f"{name} is longer than {limit} characters"
        if "\x00" in value:
            # PostgreSQL text cannot hold it: the whole batch would fail.
            return f"{name} contains a NUL character"
    if fields["customer_id"] not in known:
        return "unknown customer"
    try:
        occurred_at = parse_instant(fields["occurred_at"])
    except ValueError:
        return f"occurred_at is not an ISO 8601 timestamp: {shorten(fields['occurred_at'])!r}"
    except OverflowError:
        # An instant in year 1 or 9999 that UTC cannot hold.
        return f"occurred_at is out of range: {shorten(fields['occurred_at'])!r}"
    received_at = utc_now()
    if not plausible_event_time(occurred_at, received_at):
        return f"occurred_at is out of range: {shorten(fields['occurred_at'])!r} {OUTSIDE_WINDOW}"
    quantity = 1.0
    if fields.get("quantity"):
        try:
            quantity = csv_number(fields["quantity"], delimiter)
        except ValueError as err:
            return f"quantity {err}"
        if not math.isfinite(quantity) or quantity <= 0:
            return f"quantity must be a positive number, got {shorten(fields['quantity'])!r}"
        if quantity > MAX_QUANTITY:
            return f"quantity must be at most {MAX_QUANTITY:,}, got {shorten(fields['quantity'])!r}"
    return event_values(
        customer_id=fields["customer_id"],
        user_id=fields["user_id"],
        event=fields["event"],
        occurred_at=occurred_at,
        quantity=quantity,
        event_key=fields.get("event_key") or None,
        received_at=received_at,
    )


def import_usage_csv(database: Database, path: Path | str) -> UsageImportReport:
    """Import usage events from a CSV file with a header row.

    Columns: customer_id, user_id, event, occurred_at, and optionally quantity
    (default 1) and event_key. Good rows are stored even when others are rejected.
    """
    report = UsageImportReport()
    with database.session() as session:
        known = set(session.exec(select(col(Customer.customer_id))).all())
    batch: list[dict[str, object]] = []

    def store() -> None:
        stored, duplicates = store_event_rows(database, batch)
        report.stored += stored
        report.duplicates += duplicates
        batch.clear()

    with Path(path).open("rb") as raw:
        try:
            encoding, delimiter = _sniff(raw.read(SNIFF_BYTES))
        except UndecodableText as err:
            report.rejected.append((1, str(err)))
            return report
        raw.seek(0)
        # As the HTTP upload does: a file that breaks off half way stores none of it.
        unreadable = _unreadable(raw, encoding, delimiter)
        if unreadable:
            line, reason = unreadable
            report.rejected.append((line, f"{reason}; nothing stored"))
            return report
    with Path(path).open(newline="", encoding=encoding) as handle:
        reader = iter_usage_csv(handle, delimiter)
        try:
            for line, parsed in reader:
                if isinstance(parsed, str):
                    report.rejected.append((line, parsed))
                elif parsed["customer_id"] not in known:
                    report.rejected.append((line, "unknown customer"))
                else:
                    batch.append(parsed)
                    if len(batch) >= ROWS_PER_TRANSACTION:
                        store()
        except UsageCsvError as err:
            report.rejected.append((1, str(err)))
            return report
    if batch:
        store()
    return report


class UsageCsvError(ValueError):
    """A file that is not a usage CSV: its header lacks a required column."""


def iter_usage_csv(handle: TextIO, delimiter: str) -> Iterator[tuple[int, dict[str, object] | str]]:
    """Each data row of a usage CSV: its line number, and its values (each with an
    event_key, `_row_key`'s where the row has none) or why it is rejected.

    The parsing and validation of `import_usage_csv`, except that whether the
    customer exists is left to the caller: the HTTP intake keeps rows of unknown
    customers as unmatched instead of rejecting them. Raises UsageCsvError on the
    first step when a required column is missing.
    """
    reader = csv.DictReader(handle, delimiter=delimiter)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    problems = [
        f"missing columns: {', '.join(missing)}" if missing else None,
        unknown_columns(header, REQUIRED_COLUMNS + OPTIONAL_COLUMNS),
    ]
    if any(problems):
        raise UsageCsvError("; ".join(problem for problem in problems if problem))
    reader.fieldnames = header
    # A digest per distinct row, some 100 bytes each, held while the file is read.
    identical: Counter[str] = Counter()
    for row in reader:
        # The row's own customer passes parse_usage_row's check; the caller decides.
        customer_id = (row.get("customer_id") or "").strip()
        parsed = parse_usage_row(row, {customer_id}, delimiter=delimiter)
        if not isinstance(parsed, str) and parsed["event_key"] is None:
            parsed["event_key"] = _row_key(parsed, identical)
        yield reader.line_num, parsed


# Rows without an event_key that agree in these are told apart by their order alone.
_ROW_KEY_VALUES = ("customer_id", "user_id", "event", "occurred_at", "quantity")


def _row_key(values: Mapping[str, object], identical: Counter[str]) -> str:
    """The event_key of a row without one: a digest of its values as read (an instant in
    UTC, 1 and 1.0 alike) and which of the file's rows with those values it is, counted
    in `identical`. A file imported again keys each row as before, while two identical
    lines of one file are two events."""
    said = json.dumps([values[name] for name in _ROW_KEY_VALUES], default=str)
    digest = hashlib.blake2b(said.encode(), digest_size=16).hexdigest()
    identical[digest] += 1
    return f"csv:{digest}:{identical[digest]}"


# CSV back-fills


def _sniff(sample: bytes) -> tuple[str, str]:
    """The encoding and the delimiter of a file, told from its first bytes."""
    encoding = sniff_encoding(sample)
    return encoding, csv_delimiter(sample.decode(encoding, errors="replace"))


def _not_text(encoding: str) -> str:
    name = "UTF-16" if "16" in encoding else "UTF-8" if encoding.startswith("utf") else encoding
    return f"the file stops being {name} text here; save it as CSV UTF-8"


def _unreadable(handle: IO[bytes], encoding: str, delimiter: str) -> tuple[int, str] | None:
    """The line where the file stops being readable as CSV and why; None when it reads
    to its end. Read once before anything is stored, so a broken file stores nothing."""
    text = io.TextIOWrapper(handle, encoding=encoding, newline="")
    reader = csv.reader(text, delimiter=delimiter)
    try:
        for _ in reader:
            pass
    except UnicodeDecodeError:
        return reader.line_num + 1, _not_text(encoding)
    except csv.Error as err:
        # The limit keeps one endless quoted cell from filling memory.
        if "field limit" in str(err):
            return reader.line_num, f"a cell is longer than {csv.field_size_limit():,} characters"
        return reader.line_num, f"not valid CSV ({err})"
    finally:
        text.detach()  # leaves the caller's file open
    return None


def ingest_usage_csv(database: Database, handle: IO[bytes]) -> IntakeReport:
    """Import a usage CSV (the columns of `liftoff usage import`) from a seekable binary file.

    Good rows are stored even when others are rejected; rows naming no customer
    are kept as unmatched. A file that is not CSV text (UTF-8, or the encoding a
    spreadsheet saved it in) with the required columns raises IntakeError before
    anything is stored.
    """
    handle.seek(0)
    try:
        encoding, delimiter = _sniff(handle.read(SNIFF_BYTES))
    except UndecodableText as err:
        raise IntakeError(str(err)) from None
    handle.seek(0)
    unreadable = _unreadable(handle, encoding, delimiter)
    if unreadable:
        line, reason = unreadable
        raise IntakeError(f"line {line}: {reason}")
    handle.seek(0)
    received_at = utc_now()
    report = IntakeReport()
    with database.session() as session:
        known = set(session.exec(select(col(Customer.customer_id))).all())

    writes = PendingWrites()

    def flush() -> None:
        nonlocal writes
        with database.session() as session:
            write_pending(session, writes, report)
        writes = PendingWrites()

    text = io.TextIOWrapper(handle, encoding=encoding, newline="")
    try:
        for line, parsed in iter_usage_csv(text, delimiter):
            report.received += 1
            if isinstance(parsed, str):
                report.rejected.append(RejectedItem(line=line, reason=parsed))
                continue
            values = {**parsed, "received_at": received_at}
            customer_id = str(values["customer_id"])
            if customer_id in known:
                (writes.keyed if values["event_key"] else writes.unkeyed).append(values)
            else:
                report.unmatched.append(
                    UnmatchedItem(
                        line=line,
                        type=CSV_KIND,
                        user_id=str(values["user_id"]),
                        group_id=customer_id,
                        reason=REASON_UNKNOWN_CSV_CUSTOMER,
                    )
                )
                writes.unmatched.append(
                    {
                        "received_at": received_at,
                        "kind": CSV_KIND,
                        "user_id": values["user_id"],
                        "group_id": customer_id,
                        "reason": REASON_UNKNOWN_CSV_CUSTOMER,
                        "raw": _csv_raw(line, parsed),
                        "event_key": values["event_key"] or None,
                    }
                )
            pending = len(writes.keyed) + len(writes.unkeyed) + len(writes.unmatched)
            if pending >= ROWS_PER_TRANSACTION:
                flush()
        # Kept for operators too, one row per reason (the uploader sees every line).
        writes.rejected = rejected_rows(CSV_ENDPOINT, received_at, report.rejected)
        flush()
    except UsageCsvError as err:
        raise IntakeError(f"not a usage CSV: {err}") from None
    finally:
        text.detach()
    return report


def _csv_raw(line: int, values: Mapping[str, object]) -> dict[str, Any]:
    raw: dict[str, Any] = {"line": line}
    for name in ("customer_id", "user_id", "event", "occurred_at", "quantity", "event_key"):
        value = values.get(name)
        raw[name] = value.isoformat() if isinstance(value, datetime) else value
    return raw
