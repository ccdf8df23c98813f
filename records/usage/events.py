"""One usage event stored, or a batch in file order; an event_key stores it once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from models.tables import UsageEvent, utc_now
from records.database import Database, insert_ignore


def parse_instant(value: str) -> datetime:
    """ISO 8601; a timestamp without an offset is taken as UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def event_values(
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
    values = event_values(
        customer_id=customer_id,
        user_id=user_id,
        event=event,
        occurred_at=occurred_at,
        quantity=quantity,
        event_key=event_key,
        received_at=utc_now(),
    )
    stored, _ = store_event_rows(database, [values])
    return stored == 1


def store_event_rows(database: Database, batch: list[dict[str, object]]) -> tuple[int, int]:
    """Store a batch in file order; returns (stored, duplicates). An event whose
    event_key was stored before, or came earlier in the batch, is a duplicate."""
    stored = 0
    run: list[dict[str, object]] = []
    with database.session() as session:

        def store_run() -> None:
            # Each run of events with a key, or without, in one statement executed for
            # many rows: a CSV import keys every row, and a round trip per row was slow.
            nonlocal stored
            if not run:
                return
            if run[0]["event_key"] is None:
                session.execute(insert(UsageEvent), run)
                stored += len(run)
            else:
                stored += insert_ignore(session, UsageEvent, run, ["event_key"])
            run.clear()

        for values in batch:
            if run and (run[0]["event_key"] is None) != (values["event_key"] is None):
                store_run()
            run.append(values)
        store_run()
    return stored, len(batch) - stored
