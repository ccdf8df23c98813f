"""Usage intake figures for `make bench`: events ingested per second through POST /v1/batch.

The app `liftoff serve` runs (create_app), called in-process through httpx's
ASGI transport, so the figure covers the write key check, reading and parsing
the body, mapping users to customers and the database writes, but not the
network. One sender posts one batch after another; each batch holds
BATCH_CALLS track calls, each with its own messageId, from users tied to their
customers by group calls sent first (not timed): track calls from a Segment
library rarely carry a group id, so this is the common path. The bodies are
encoded before the clock starts; encoding them is the sender's work.

SQLite: a file in a temporary directory. PostgreSQL: the server the tests use
(testkit/postgres.py: 127.0.0.1:5432, database test, or LIFTOFF_TEST_POSTGRES_URL),
in a schema of its own that is dropped afterwards; skipped, with the reason, when
it does not answer.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select
from temporalio.client import Client

from api.app import create_app
from api.services import Services
from client.onboarding import OnboardingClient
from models.tables import UsageEvent, utc_now
from records.database import Database
from records.playbooks import load_playbook
from records.tokens import TokenRole, create_token
from testkit import postgres
from testkit.factories import make_handoff, store_customer

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "playbooks" / "default.toml"
DEFAULT_EVENTS = 10_000
BATCH_CALLS = 100
CUSTOMERS = 10
USERS_PER_CUSTOMER = 20
EVENT_NAMES = ("document_scanned", "login", "invoice_approved")
BASE_URL = "http://liftoff.bench"
# The intake never reaches Temporal; the app only needs a client object to be built.
UNUSED_TEMPORAL_ADDRESS = "127.0.0.1:7233"


@dataclass
class IntakeFigures:
    database: str
    events: int = 0
    batches: int = 0
    seconds: float = 0.0
    # Usage events in the database afterwards: equals `events` when nothing was lost.
    stored: int = 0
    # Why this database was not measured; None when it was.
    skipped: str | None = None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_second": self.events_per_second}


@dataclass
class IntakeReport:
    sqlite: IntakeFigures
    postgresql: IntakeFigures

    def to_json(self) -> dict[str, Any]:
        return {"sqlite": self.sqlite.to_json(), "postgresql": self.postgresql.to_json()}


def _batches(events: int) -> list[int]:
    return [min(BATCH_CALLS, events - start) for start in range(0, events, BATCH_CALLS)]


def _bodies(users: list[str], events: int) -> list[bytes]:
    """The timed batches, encoded: track calls spread over every user, an hour apart."""
    start = utc_now() - timedelta(days=1)
    bodies = []
    sent = 0
    for size in _batches(events):
        calls = []
        for _ in range(size):
            calls.append(
                {
                    "type": "track",
                    "userId": users[sent % len(users)],
                    "event": EVENT_NAMES[sent % len(EVENT_NAMES)],
                    "properties": {"quantity": 1},
                    "timestamp": (start + timedelta(seconds=sent)).isoformat(),
                    "messageId": str(uuid.uuid4()),
                }
            )
            sent += 1
        bodies.append(json.dumps({"batch": calls}).encode())
    return bodies


def _add_customers(database: Database) -> dict[str, list[str]]:
    """Customers, and the product users of each."""
    users: dict[str, list[str]] = {}
    for n in range(CUSTOMERS):
        handoff = make_handoff(customer_id=f"bench-{n}")
        store_customer(database, handoff)
        users[handoff.customer_id] = [
            f"{handoff.customer_id}-u{k}" for k in range(USERS_PER_CUSTOMER)
        ]
    return users


async def _post(http: httpx.AsyncClient, body: bytes, expected: int) -> None:
    response = await http.post(
        "/v1/batch", content=body, headers={"Content-Type": "application/json"}
    )
    if response.status_code != 200:
        raise RuntimeError(f"/v1/batch answered {response.status_code}: {response.text}")
    report = response.json()
    taken = report["stored"] + report["mapped"]
    if taken != expected:
        raise RuntimeError(f"/v1/batch took {taken} of {expected} calls: {response.text}")


async def measure_intake(database: Database, name: str, events: int) -> IntakeFigures:
    database.migrate()
    users = _add_customers(database)
    token, _ = create_token(database, name="bench", role=TokenRole.INGEST)
    temporal = await Client.connect(UNUSED_TEMPORAL_ADDRESS, lazy=True)
    services = Services(
        onboarding=OnboardingClient(temporal, "bench-intake"),
        database=database,
        playbook=load_playbook(PLAYBOOK),
    )
    app = create_app(services)
    groups = [
        {"type": "group", "userId": user, "groupId": customer_id}
        for customer_id, members in users.items()
        for user in members
    ]
    everyone = [user for members in users.values() for user in members]
    bodies = _bodies(everyone, events)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, auth=(token, "")
    ) as http:
        # Ties every user to a customer; also warms the app up. Not timed.
        await _post(http, json.dumps({"batch": groups}).encode(), len(groups))
        started = time.perf_counter()
        for body, size in zip(bodies, _batches(events), strict=True):
            await _post(http, body, size)
        seconds = time.perf_counter() - started
    with database.session() as session:
        stored = session.exec(select(func.count()).select_from(UsageEvent)).one()
    return IntakeFigures(name, events, len(bodies), seconds, int(stored))


def run_intake_bench(events: int = DEFAULT_EVENTS) -> IntakeReport:
    if events < 1:
        raise ValueError(f"events must be at least 1, not {events}")
    with tempfile.TemporaryDirectory(prefix="liftoff-intake-bench-") as scratch:
        database = Database(f"sqlite:///{Path(scratch) / 'intake.db'}")
        try:
            on_sqlite = asyncio.run(measure_intake(database, "SQLite", events))
        finally:
            database.dispose()
    reason = postgres.unreachable()
    if reason is not None:
        on_postgres = IntakeFigures("PostgreSQL", skipped=reason)
    else:
        with postgres.fresh_schema("bench") as database:
            on_postgres = asyncio.run(measure_intake(database, "PostgreSQL", events))
    return IntakeReport(on_sqlite, on_postgres)


def format_intake_report(report: IntakeReport) -> str:
    rows: list[tuple[str, str]] = []
    notes: list[str] = []
    for figures in (report.sqlite, report.postgresql):
        label = f"usage events ingested per second via /v1/batch ({figures.database})"
        if figures.skipped is not None:
            rows.append((label, "skipped"))
            notes.append(f"{figures.database} skipped: {figures.skipped}")
            continue
        rows += [
            (label, f"{figures.events_per_second:,.0f}"),
            (
                f"  events sent / stored, in {figures.batches} batches",
                f"{figures.events} / {figures.stored}",
            ),
            ("  time per batch (ms)", f"{figures.seconds / figures.batches * 1000:.2f}"),
        ]
    width = max(len(label) for label, _ in rows)
    lines = [
        f"Usage intake: POST /v1/batch of {BATCH_CALLS} track calls each (users tied to",
        f"{CUSTOMERS} customers by earlier group calls), one sender, the app in-process",
        "(httpx ASGI transport); SQLite in a temporary directory, PostgreSQL in a",
        "schema of its own.",
        "",
    ]
    lines += [f"{label:{width}}  {value:>12}" for label, value in rows]
    lines += [f"Note: {note}" for note in notes]
    return "\n".join(lines)
