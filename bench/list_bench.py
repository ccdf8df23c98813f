"""List, cohort and cohort analytics figures for `make bench`: p50/p95 per page with
10,000 customers.

The customer projection is filled directly (testkit/projections.py: a synthetic book
of business over 40 CSMs, most customers ended), then each page is asked for
REQUESTS times through the app `liftoff serve` runs, in-process (httpx's ASGI
transport): the "my customers" page for a lead (everyone) and for one CSM, the cohort
for a lead, and GET /api/customers (its default page of 1,000, and a filtered one).
The cohort analytics endpoints are asked over the same book, with the weekly verdicts,
stall episodes and step emails testkit/cohort.py derives from it. Nothing reaches
Temporal: the lists read only the database.

SQLite: a file in a temporary directory. PostgreSQL: the server the tests use, in a
schema of its own, dropped afterwards; skipped, with the reason, when it does not answer.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from api.app import create_app
from api.deps import SESSION_COOKIE
from api.services import Services
from client.onboarding import OnboardingClient
from models.tables import utc_now
from records.database import Database
from records.playbooks import load_playbook
from records.sessions import start_session
from records.tokens import TokenRole, authenticate, create_token
from testkit import postgres
from testkit.cohort import insert_activity, synthetic_activity
from testkit.projections import insert_projection_rows, synthetic_cohort

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "playbooks" / "default.toml"
DEFAULT_CUSTOMERS = 10_000
REQUESTS = 40
# Asked before the clock starts: the first request pays for imports and caches.
WARM_UP = 3
GOAL_P95_MS = 300.0
BASE_URL = "http://liftoff.bench"
UNUSED_TEMPORAL_ADDRESS = "127.0.0.1:7233"
ONE_CSM = "csm-07@liftoff.example"
BULK_LOADED = (
    "customer_projections",
    "timeline_entries",
    "contacts",
    "email_ledger",
    "email_events",
)

# (label, who asks, path)
PAGES = (
    ("dashboard: all customers (lead)", "lead", "/"),
    ("dashboard: my customers (one CSM)", "csm", "/"),
    ("dashboard: cohort (lead)", "lead", "/cohort"),
    ("REST: GET /api/customers (1,000 a page)", "lead", "/api/customers"),
    ("REST: stalled in adoption", "lead", "/api/customers?stage=adoption&stalled=true"),
    # Cohort analytics (analytics/, records/cohort_analytics.py), over the same book with
    # its weekly verdicts, stall episodes and step emails (testkit/cohort.py).
    ("REST: time to onboard by purpose", "lead", "/api/cohort/time-to-onboard?by=purpose"),
    (
        "REST: time in adoption by start month",
        "lead",
        "/api/cohort/time-in-stage?stage=adoption&by=start_month",
    ),
    ("REST: time to onboard CSV (one CSM)", "csm", "/api/cohort/time-to-onboard?format=csv"),
    ("REST: stalls (missing criteria)", "lead", "/api/cohort/stalls"),
    ("REST: escalations per CSM", "lead", "/api/cohort/escalations"),
    ("REST: email steps", "lead", "/api/cohort/email-steps"),
    ("REST: stall recovery by step", "lead", "/api/cohort/stall-recovery"),
    ("dashboard: cohort analytics (lead)", "lead", "/cohort/analytics?by=seats_band"),
    ("dashboard: step emails (lead)", "lead", "/cohort/analytics/emails"),
)


@dataclass
class PageFigures:
    label: str
    p50_ms: float
    p95_ms: float


@dataclass
class ListFigures:
    database: str
    customers: int = 0
    pages: list[PageFigures] = field(default_factory=list)
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ListReport:
    sqlite: ListFigures
    postgresql: ListFigures

    def to_json(self) -> dict[str, Any]:
        return {"sqlite": self.sqlite.to_json(), "postgresql": self.postgresql.to_json()}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure_lists(database: Database, name: str, customers: int) -> ListFigures:
    database.migrate()
    now = utc_now()
    book = synthetic_cohort(customers, now)
    insert_projection_rows(database, book)
    insert_activity(database, synthetic_activity(book, now))
    if database.dialect == "postgresql":
        # Planner statistics, as autovacuum gathers them soon after a bulk load: without
        # them PostgreSQL plans the analytics' joins for empty tables.
        with database.engine.begin() as connection:
            connection.exec_driver_sql(f"ANALYZE {', '.join(BULK_LOADED)}")
    tokens = {
        "lead": create_token(database, name="bench lead", role=TokenRole.LEAD)[0],
        "csm": create_token(database, name="bench csm", role=TokenRole.CSM, csm=ONE_CSM)[0],
    }
    # Signed in as the dashboard signs people in: a session id in the cookie.
    sessions = {}
    for who, token in tokens.items():
        principal = authenticate(database, token)
        if principal is None:
            raise RuntimeError("the bench's own token did not authenticate")
        sessions[who] = start_session(database, principal, lasts=timedelta(hours=1))
    temporal = await Client.connect(UNUSED_TEMPORAL_ADDRESS, lazy=True)
    services = Services(
        onboarding=OnboardingClient(temporal, "bench-lists"),
        database=database,
        playbook=load_playbook(PLAYBOOK),
    )
    app = create_app(services)
    # As `liftoff serve` does (api/server.py): long-lived objects out of full collections.
    gc.freeze()
    figures = ListFigures(name, customers)
    for label, who, path in PAGES:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE_URL,
            cookies={SESSION_COOKIE: sessions[who]},
        ) as http:
            times = []
            for n in range(WARM_UP + REQUESTS):
                started = time.perf_counter()
                response = await http.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}: {response.text}")
                if n >= WARM_UP:
                    times.append(elapsed)
        figures.pages.append(PageFigures(label, statistics.median(times), _percentile(times, 0.95)))
    return figures


def run_list_bench(customers: int = DEFAULT_CUSTOMERS) -> ListReport:
    if customers < 1:
        raise ValueError(f"customers must be at least 1, not {customers}")
    with tempfile.TemporaryDirectory(prefix="liftoff-list-bench-") as scratch:
        database = Database(f"sqlite:///{Path(scratch) / 'lists.db'}")
        try:
            on_sqlite = asyncio.run(measure_lists(database, "SQLite", customers))
        finally:
            database.dispose()
    reason = postgres.unreachable()
    if reason is not None:
        on_postgres = ListFigures("PostgreSQL", skipped=reason)
    else:
        with postgres.fresh_schema("bench") as database:
            on_postgres = asyncio.run(measure_lists(database, "PostgreSQL", customers))
    return ListReport(on_sqlite, on_postgres)


def format_list_report(report: ListReport) -> str:
    lines = [
        f"Lists and cohort from the customer projection: {REQUESTS} requests per page after",
        f"{WARM_UP} not timed, the app in-process (httpx ASGI transport); goal p95 < "
        f"{GOAL_P95_MS:.0f} ms.",
        "",
    ]
    width = max(len(label) for label, _, _ in PAGES) + 2
    for figures in (report.sqlite, report.postgresql):
        if figures.skipped is not None:
            lines.append(f"{figures.database}: skipped: {figures.skipped}")
            continue
        lines.append(
            f"{figures.database}, {figures.customers:,} customers"
            f"{'':{width - len(figures.database) - len(f'{figures.customers:,}') - 12}}"
            f"{'p50 ms':>9} {'p95 ms':>9}"
        )
        for page in figures.pages:
            lines.append(f"  {page.label:{width - 2}}{page.p50_ms:9.1f} {page.p95_ms:9.1f}")
    return "\n".join(lines)
