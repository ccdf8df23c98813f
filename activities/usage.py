"""Usage intake for the CLI until an HTTP intake exists: one event, or a CSV file.

An event_key makes a redelivered event harmless: the second copy is counted as a
duplicate and not stored.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from pydantic import BaseModel, Field
from sqlalchemy import insert
from sqlmodel import col, select

from activities.database import Database, insert_ignore
from models.tables import Customer, UsageEvent, utc_now

REQUIRED_COLUMNS = ("customer_id", "user_id", "event", "occurred_at")
OPTIONAL_COLUMNS = ("quantity", "event_key")
# Rows stored per transaction: large files neither hold one huge transaction
# nor pay a commit per row.
IMPORT_BATCH_SIZE = 500


class UsageImportReport(BaseModel):
    stored: int = 0
    duplicates: int = 0
    # (line number in the file, reason); line 1 is the header.
    rejected: list[tuple[int, str]] = Field(default_factory=list)


def parse_instant(value: str) -> datetime:
    """ISO 8601; a timestamp without an offset is taken as UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _event_values(
    *,
    customer_id: str,
    user_id: str,
    event: str,
    occurred_at: datetime,
    quantity: float,
    event_key: str | None,
    received_at: datetime,
) -> dict[str, object]:
    return {
        "customer_id": customer_id,
        "user_id": user_id,
        "event": event,
        "occurred_at": occurred_at,
        "quantity": quantity,
        "event_key": event_key or None,
        "received_at": received_at,
    }


def record_usage_event(
    database: Database,
    *,
    customer_id: str,
    user_id: str,
    event: str,
    occurred_at: datetime,
    quantity: float = 1.0,
    event_key: str | None = None,
) -> bool:
    """Store one usage event; False when an event with the same event_key is already stored."""
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    values = _event_values(
        customer_id=customer_id,
        user_id=user_id,
        event=event,
        occurred_at=occurred_at,
        quantity=quantity,
        event_key=event_key,
        received_at=utc_now(),
    )
    stored, _ = _store_batch(database, [values])
    return stored == 1


# The columns' sizes in the usage_events table.
_COLUMN_LIMITS = {"customer_id": 64, "user_id": 200, "event": 200, "event_key": 200}


def parse_usage_row(row: dict[str, str | None], known: set[str]) -> dict[str, object] | str:
    """The row's values, or the reason it is rejected."""
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
        return f"occurred_at is not an ISO 8601 timestamp: {fields['occurred_at']!r}"
    except OverflowError:
        # An instant in year 1 or 9999 that UTC cannot hold.
        return f"occurred_at is out of range: {fields['occurred_at']!r}"
    quantity = 1.0
    if fields.get("quantity"):
        try:
            quantity = float(fields["quantity"])
        except ValueError:
            return f"quantity is not a number: {fields['quantity']!r}"
        if not math.isfinite(quantity) or quantity <= 0:
            return f"quantity must be a positive number, got {fields['quantity']!r}"
    return _event_values(
        customer_id=fields["customer_id"],
        user_id=fields["user_id"],
        event=fields["event"],
        occurred_at=occurred_at,
        quantity=quantity,
        event_key=fields.get("event_key") or None,
        received_at=utc_now(),
    )


def _store_batch(database: Database, batch: list[dict[str, object]]) -> tuple[int, int]:
    """Store a batch in file order; returns (stored, duplicates)."""
    stored = 0
    with database.session() as session:
        for values in batch:
            if values["event_key"] is None:
                session.exec(insert(UsageEvent).values(values))
                stored += 1
            else:
                # Row by row: a key repeated inside the batch counts as a duplicate too.
                stored += insert_ignore(session, UsageEvent, values, ["event_key"])
    return stored, len(batch) - stored


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
        stored, duplicates = _store_batch(database, batch)
        report.stored += stored
        report.duplicates += duplicates
        batch.clear()

    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        try:
            for line, parsed in iter_usage_csv(handle):
                if isinstance(parsed, str):
                    report.rejected.append((line, parsed))
                elif parsed["customer_id"] not in known:
                    report.rejected.append((line, "unknown customer"))
                else:
                    batch.append(parsed)
                    if len(batch) >= IMPORT_BATCH_SIZE:
                        store()
        except UsageCsvError as err:
            report.rejected.append((1, str(err)))
            return report
    if batch:
        store()
    return report


class UsageCsvError(ValueError):
    """A file that is not a usage CSV: its header lacks a required column."""


def iter_usage_csv(handle: TextIO) -> Iterator[tuple[int, dict[str, object] | str]]:
    """Each data row of a usage CSV: its line number, and its values or why it is rejected.

    The parsing and validation of `import_usage_csv`, except that whether the
    customer exists is left to the caller: the HTTP intake keeps rows of unknown
    customers as unmatched instead of rejecting them. Raises UsageCsvError on the
    first step when a required column is missing.
    """
    reader = csv.DictReader(handle)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise UsageCsvError(f"missing columns: {', '.join(missing)}")
    reader.fieldnames = header
    for row in reader:
        # The row's own customer passes parse_usage_row's check; the caller decides.
        customer_id = (row.get("customer_id") or "").strip()
        yield reader.line_num, parse_usage_row(row, {customer_id})
