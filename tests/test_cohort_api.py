"""The cohort analytics over REST and on the dashboard, on SQLite and PostgreSQL: the
figures, CSM scoping, CSV that says what the JSON says, bounded parameters, the stall
analysis over timeline rows written as the workflow writes them, step emails from the
send ledger and the provider's events, and the Kaplan-Meier SVG in both languages."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from api.app import create_app
from api.services import Services
from client.onboarding import OnboardingClient
from emails.catalogue import step_sample
from emails.mailers import OutboxMailer
from models.activity_io import SendEmailInput
from models.handoff import Role
from models.onboarding import Stage
from models.tables import utc_now
from records.database import Database
from records.email_events import process_events
from records.playbooks import load_playbook
from records.tokens import TokenRole, create_token
from testkit import cohort
from testkit.factories import (
    REPO,
    make_handoff,
    make_mail_activities,
    make_playbook,
    store_customer,
)
from testkit.projections import DAY, insert_projection_rows, projection_row

MINE = "mine@liftoff.example"
THEIRS = "theirs@liftoff.example"
BASE_URL = "http://liftoff.test"
SECONDS = 86_400.0


@pytest.fixture
async def app(database: Database) -> FastAPI:
    # The analytics read only the database: the Temporal client never connects.
    temporal = await Client.connect("127.0.0.1:7233", lazy=True)
    services = Services(
        onboarding=OnboardingClient(temporal, "cohort-analytics-tests"),
        database=database,
        playbook=load_playbook(REPO / "playbooks" / "default.toml"),
    )
    return create_app(services)


def _client(app: FastAPI, database: Database, role: TokenRole, csm: str | None = None) -> Any:
    token, _ = create_token(database, name=f"test {role.value}", role=role, csm=csm)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
async def lead(app: FastAPI, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app, database, TokenRole.LEAD) as client:
        yield client


@pytest.fixture
async def mine(app: FastAPI, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app, database, TokenRole.CSM, MINE) as client:
        yield client


def _book(database: Database) -> None:
    """My five customers of tests/test_cohort_survival.py (onboarded after 10, 30, 50
    days; one in flight for 20, one failed after 40: median 50 days, 95% interval 10 to
    50), a customer not started yet, and three of another CSM's, onboarded in a day:
    counted, they would pull the median to 30 days (S = 5/8 after day 1, 1/2 after day 10,
    first below one half after day 30)."""
    now = utc_now()

    def onboarded(customer_id: str, csm: str, start: float, end: float) -> dict[str, Any]:
        return projection_row(
            customer_id,
            now,
            csm=csm,
            stage="onboarded",
            furthest=5,
            started_at=now - start * DAY,
            ended_at=now - end * DAY,
            stage_since=now - end * DAY,
            onboard_seconds=(start - end) * SECONDS,
            purposes=["A", "B"] if customer_id == "c" else ["A"],
        )

    insert_projection_rows(
        database,
        [
            onboarded("a", MINE, 60, 50),
            projection_row("b", now, csm=MINE, stage="adoption", started_at=now - 20 * DAY),
            onboarded("c", MINE, 90, 60),
            projection_row(
                "d",
                now,
                csm=MINE,
                stage="failed",
                started_at=now - 45 * DAY,
                ended_at=now - 5 * DAY,
                stage_since=now - 5 * DAY,
                locale="ja",
            ),
            onboarded("e", MINE, 51, 1),
            projection_row("f", now, csm=MINE, stage="handoff", started_at=None),
            *(onboarded(f"t{n}", THEIRS, 2 + n, 1 + n) for n in range(3)),
        ],
    )


async def test_time_to_onboard_censors_and_counts_only_the_customers_a_csm_sees(
    database: Database, lead: httpx.AsyncClient, mine: httpx.AsyncClient
) -> None:
    _book(database)
    own = (await mine.get("/api/cohort/time-to-onboard")).json()
    filtered = (await lead.get("/api/cohort/time-to-onboard", params={"csm": MINE})).json()
    everyone = (await lead.get("/api/cohort/time-to-onboard")).json()

    for figure in (own, filtered):
        (group,) = figure["groups"]
        assert (group["customers"], group["events"], group["censored"]) == (5, 3, 2)
        assert group["median_seconds"] == pytest.approx(50 * SECONDS)
        assert group["median_ci_low_seconds"] == pytest.approx(10 * SECONDS)
        assert group["median_ci_high_seconds"] == pytest.approx(50 * SECONDS)
        assert [round(p["survival"], 4) for p in group["curve"]] == [0.8, 0.5333, 0.0]
    (all_groups,) = everyone["groups"]
    assert (all_groups["customers"], all_groups["events"]) == (8, 6)
    assert all_groups["median_seconds"] == pytest.approx(30 * SECONDS)

    by_purpose = (await mine.get("/api/cohort/time-to-onboard", params={"by": "purpose"})).json()
    assert [(g["group"], g["customers"]) for g in by_purpose["groups"]] == [("A", 5), ("B", 1)]
    by_locale = (await mine.get("/api/cohort/time-to-onboard", params={"by": "locale"})).json()
    ja = next(g for g in by_locale["groups"] if g["group"] == "ja")
    assert (ja["events"], ja["median_seconds"], ja["curve"]) == (0, None, [])

    refused = await mine.get("/api/cohort/time-to-onboard", params={"csm": THEIRS})
    assert refused.status_code == 403
    assert "only its own customers" in refused.json()["detail"]


async def test_time_in_stage_reads_running_stays_from_stage_since(
    database: Database, lead: httpx.AsyncClient
) -> None:
    now = utc_now()
    insert_projection_rows(
        database,
        [
            projection_row("k1", now, stage="training", furthest=2, kickoff_seconds=2 * SECONDS),
            projection_row("k2", now, stage="kickoff", stage_since=now - 3 * DAY),
            projection_row("k3", now, stage="failed", furthest=1, kickoff_seconds=4 * SECONDS),
            projection_row("k4", now, stage="failed", furthest=2, kickoff_seconds=6 * SECONDS),
            projection_row("k5", now, stage="adoption", furthest=3, kickoff_seconds=8 * SECONDS),
        ],
    )
    figure = (await lead.get("/api/cohort/time-in-stage", params={"stage": "kickoff"})).json()
    (group,) = figure["groups"]
    assert (figure["stage"], group["events"], group["censored"]) == ("kickoff", 3, 2)
    assert group["median_seconds"] == pytest.approx(6 * SECONDS)
    training = (await lead.get("/api/cohort/time-in-stage", params={"stage": "training"})).json()
    # k1 has been in training for a day (stage_since): at risk, censored, nothing reached.
    (in_training,) = training["groups"]
    assert (in_training["customers"], in_training["censored"]) == (1, 1)
    assert in_training["median_seconds"] is None
    assert in_training["longest_seconds"] == pytest.approx(SECONDS, rel=1e-3)


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def _same(cell: str, value: Any) -> bool:
    if value is None:
        return cell in ("", "not reached")
    if isinstance(value, bool):
        return cell == str(value).lower()
    if isinstance(value, int | float):
        return float(cell) == float(value)
    return cell == str(value)


async def test_every_figure_as_csv_says_what_its_json_says(
    database: Database, lead: httpx.AsyncClient, mine: httpx.AsyncClient
) -> None:
    _book(database)
    path = "/api/cohort/time-to-onboard"
    figure = (await mine.get(path, params={"by": "locale"})).json()
    summary = _csv(await mine.get(path, params={"by": "locale", "format": "csv"}))
    assert [row["group"] for row in summary] == [g["group"] for g in figure["groups"]]
    for row, group in zip(summary, figure["groups"], strict=True):
        for name, cell in row.items():
            assert _same(cell, group[name]), (name, cell, group[name])
    ja = next(row for row in summary if row["group"] == "ja")
    assert (ja["median_seconds"], ja["median_ci_high_seconds"]) == ("not reached", "not reached")

    curve = _csv(await mine.get(path, headers={"Accept": "text/csv"}, params={"table": "curve"}))
    (group,) = (await mine.get(path)).json()["groups"]
    assert len(curve) == len(group["curve"]) == 3
    for row, point in zip(curve, group["curve"], strict=True):
        assert row["group"] == "all"
        for name in ("seconds", "survival", "ci_low", "ci_high", "at_risk", "events"):
            assert _same(row[name], point[name]), (name, row[name], point[name])

    for endpoint in ("escalations", "email-steps", "stall-recovery"):
        rows = (await lead.get(f"/api/cohort/{endpoint}")).json()
        table = _csv(await lead.get(f"/api/cohort/{endpoint}", params={"format": "csv"}))
        assert len(table) == len(rows)
        for row, item in zip(table, rows, strict=True):
            assert all(_same(cell, item[name]) for name, cell in row.items()), (row, item)
    escalations = (await lead.get("/api/cohort/escalations")).json()
    assert {(e["csm"], e["customers"], e["failed"]) for e in escalations} == {
        (MINE, 6, 1),
        (THEIRS, 3, 0),
    }


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("time-to-onboard", {"by": "colour"}, "Input should be 'all', 'start_month'"),
        ("time-in-stage", {"stage": "onboarded"}, "Input should be 'kickoff'"),
        ("time-in-stage", {}, "Field required"),
        ("stalls", {"format": "xml"}, "Input should be 'json' or 'csv'"),
        ("email-steps", {"csm": "not an email"}, "email"),
        ("time-to-onboard", {"table": "everything"}, "Input should be 'summary' or 'curve'"),
    ],
)
async def test_a_parameter_outside_its_fixed_list_is_refused_with_one_sentence(
    lead: httpx.AsyncClient, path: str, params: dict[str, str], says: str
) -> None:
    response = await lead.get(f"/api/cohort/{path}", params=params)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert says in error["msg"]


async def test_the_stall_analysis_finds_the_criterion_failed_and_stalled_customers_miss(
    database: Database, lead: httpx.AsyncClient, mine: httpx.AsyncClient
) -> None:
    """Planted: my three troubled customers all miss key_actions[A] (for 3, 3 and 2
    weeks running); one of them the active-seat ratio in its last week only. Another
    CSM's failed customer misses the active-seat ratio, and my onboarded one had missed
    key actions once: neither counts for me."""
    now = utc_now()
    start = now - 60 * DAY

    def weeks(csm: str, stage: Stage, stalled: bool, missing: list[list[str]]) -> list[Any]:
        snap = cohort.snapshot(
            csm=csm, stage=stage, since=now - DAY, started_at=start, stalled=stalled
        )
        entries: list[Any] = []
        for index, unmet in enumerate(missing, start=1):
            end = start + index * cohort.WEEK
            entries.append(
                (end, "weekly_measurement", cohort.week_verdict(index, end, missing=unmet), snap)
            )
        return entries

    key, seats = "key_actions[A]", "active_seat_ratio"
    cohort.record(database, "f1", weeks(MINE, Stage.FAILED, False, [[], [key], [key], [key]]))
    cohort.record(database, "f2", weeks(MINE, Stage.FAILED, False, [[key], [key], [key, seats]]))
    cohort.record(database, "s1", weeks(MINE, Stage.ADOPTION, True, [[key], [], [key], [key]]))
    cohort.record(database, "ok", weeks(MINE, Stage.ONBOARDED, False, [[key], []]))
    cohort.record(database, "x1", weeks(THEIRS, Stage.FAILED, False, [[seats], [seats]]))
    # Failed before any weekly verdict.
    cohort.record(
        database,
        "f0",
        [(start, "transition", {}, cohort.snapshot(csm=MINE, stage=Stage.FAILED, since=start,
                                                   started_at=start))],
    )  # fmt: skip

    analysis = (await mine.get("/api/cohort/stalls")).json()
    assert (analysis["failed"], analysis["stalled"], analysis["without_verdict"]) == (3, 1, 1)
    top, second = analysis["criteria"]
    assert (top["criterion"], top["customers"], top["failed"], top["stalled"]) == (key, 3, 2, 1)
    assert (top["metric"], top["purpose"], top["share"]) == ("key_actions", "A", 1.0)
    assert (top["median_weeks_missing"], top["longest_weeks_missing"]) == (3, 3)
    assert top["median_days_missing"] == pytest.approx(21.0)
    assert (second["criterion"], second["customers"], second["longest_weeks_missing"]) == (
        seats,
        1,
        1,
    )
    everyone = (await lead.get("/api/cohort/stalls")).json()
    assert {c["criterion"]: c["customers"] for c in everyone["criteria"]} == {key: 3, seats: 2}
    table = _csv(await mine.get("/api/cohort/stalls", params={"format": "csv"}))
    assert [row["criterion"] for row in table] == [key, seats]
    assert float(table[0]["median_weeks_missing"]) == 3.0


def _webhook(database: Database, events: list[dict[str, Any]]) -> None:
    body = json.dumps(events).encode()
    report = process_events(database, body, signature=None, timestamp=None, public_key=None)
    assert report.recorded == len(events), report


async def test_step_emails_count_each_message_once_and_steps_before_a_recovery(
    database: Database, lead: httpx.AsyncClient, tmp_path: Any
) -> None:
    now = utc_now()
    playbook = make_playbook(campaign=True)
    purpose = playbook.purposes[0]
    welcome = next(step for step in purpose.steps if step.id == "welcome")
    mail = make_mail_activities(database, OutboxMailer(tmp_path / "outbox"))
    environment = ActivityEnvironment()
    customers = {"rec": "en", "still": "ja", "before": "en"}
    for customer_id, locale in customers.items():
        store_customer(database, make_handoff(customer_id=customer_id, locale=locale))
        environment.run(
            mail.send_email,
            SendEmailInput(
                ledger_key=f"campaign:{purpose.id}:{welcome.id}:{Role.ADMINISTRATOR.value}",
                customer_id=customer_id,
                template=welcome.template,
                locale=locale,
                to_role=Role.ADMINISTRATOR,
                context=step_sample(purpose, welcome, Role.ADMINISTRATOR, locale).context,
            ),
        )
    admin = "admin@acme.example"
    stamp = int(now.timestamp())

    def event(n: int, customer_id: str, name: str, **extra: Any) -> dict[str, Any]:
        return {
            "sg_event_id": f"ev-{n}",
            "event": name,
            "email": admin,
            "timestamp": stamp + n,
            "customer_id": customer_id,
            "ledger_key": f"campaign:{purpose.id}:{welcome.id}:administrator",
        } | extra

    _webhook(
        database,
        [
            event(1, "rec", "delivered"),
            event(2, "rec", "open"),
            event(3, "rec", "open"),  # opened twice: one message opened
            event(4, "rec", "click"),
            event(5, "still", "delivered"),
            event(6, "still", "open", sg_machine_open=True),  # a privacy proxy, not a person
            event(7, "still", "unsubscribe"),
            event(8, "before", "delivered"),
        ],
    )

    # Stall episodes: "rec" stalled before the email and recovered after it; "still"
    # is stalled yet; "before" recovered before the email went out.
    def stall(customer_id: str, started: float, cleared: float | None) -> list[Any]:
        snap = cohort.snapshot(csm=MINE, stage=Stage.ADOPTION, since=now - 9 * DAY,
                               started_at=now - 30 * DAY, stalled=cleared is None,
                               locale=customers[customer_id])  # fmt: skip
        entries = [(now + timedelta(hours=started), "stall_started", {"episode": 1}, snap)]
        if cleared is not None:
            at = now + timedelta(hours=cleared)
            entries.append((at, "stall_cleared", {"episode": 1}, snap))
        return entries

    cohort.record(database, "rec", stall("rec", -1, 1))
    cohort.record(database, "still", stall("still", -1, None))
    cohort.record(database, "before", stall("before", -3, -2))

    steps = (await lead.get("/api/cohort/email-steps")).json()
    assert steps == [
        {"step": "A:welcome", "role": "administrator", "locale": "en", "sent": 2,
         "delivered": 2, "opened": 1, "clicked": 1, "opted_out": 0},
        {"step": "A:welcome", "role": "administrator", "locale": "ja", "sent": 1,
         "delivered": 1, "opened": 0, "clicked": 0, "opted_out": 1},
    ]  # fmt: skip
    recovery = (await lead.get("/api/cohort/stall-recovery")).json()
    assert recovery == [{"step": "A:welcome", "sent_in_stall": 2, "recovered": 1}]
    page = await lead.get("/cohort/analytics/emails", params={"lang": "ja"})
    assert page.status_code == 200
    assert "ステップメール" in page.text and "配信停止" in page.text
    assert page.text.count('data-step="A:welcome"') == 3  # en, ja, and its recovery row


async def test_the_analytics_page_draws_the_curves_in_english_and_japanese(
    database: Database, app: FastAPI
) -> None:
    _book(database)
    token, _ = create_token(database, name="lead", role=TokenRole.LEAD)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as browser:
        signed_in = await browser.post("/login", data={"token": token, "next": "/"})
        assert signed_in.status_code == 303, signed_in.text
        en = await browser.get("/cohort/analytics", params={"by": "locale", "lang": "en"})
        ja = await browser.get("/cohort/analytics", params={"by": "locale", "lang": "ja"})
        refused = await browser.get("/cohort/analytics", params={"by": "colour"})
    assert en.status_code == ja.status_code == 200
    for page, words in (
        (en, ["Time to onboard", ">days<", "share not yet through", "not reached", "95% interval"]),
        (ja, ["オンボーディング完了までの期間", ">日<", "未完了の割合", "未到達", "95%信頼区間"]),
    ):
        svg = page.text.split('id="time-to-onboard-chart"', 1)[1].split("</svg>", 1)[0]
        assert svg.count('class="km-line km-') == 2  # en and ja
        assert 'class="km-band km-' in svg
        for word in words:
            assert word in page.text, word
        assert words[1] in svg and words[2] in svg
    assert "/api/cohort/time-to-onboard?format=csv&amp;by=locale" in en.text
    assert refused.status_code == 400
    assert "start_month" in refused.text
