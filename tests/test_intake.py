"""Usage intake: Segment calls and CSV back-fills reach the weekly measurement.

The storage logic (records/usage/) runs on SQLite and PostgreSQL; the
HTTP endpoints run in-process against the app of `liftoff serve`; the real
`segment-analytics-python` client talks to the intake on a loopback port.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import segment.analytics as segment_analytics
import uvicorn
from fastapi import FastAPI
from pydantic import TypeAdapter
from sqlmodel import col, select
from temporalio.testing import ActivityEnvironment

from activities.measure import MeasureActivities
from api.deps import SESSION_COOKIE
from models.activity_io import MeasureWeeklyUsageInput
from models.onboarding import WeeklyMeasurement
from models.tables import RejectedUsage, UnmatchedUsage, UsageEvent, UsageUser, utc_now
from records.database import Database
from records.sessions import start_session
from records.tokens import TokenRole, authenticate, create_token, revoke_token
from records.usage.csv_import import ingest_usage_csv
from records.usage.rejected import RejectedCount, rejected_summary
from records.usage.segment import (
    MAX_BATCH_BYTES,
    MAX_CALL_BYTES,
    REASON_UNKNOWN_GROUP,
    ingest_calls,
)
from records.usage.store import IntakeError, IntakeReport, ProductUser, customer_users
from records.usage.unmatched import unmatched_summary
from testkit.factories import make_handoff, store_customer
from tests.support.api_harness import ApiHarness

TRAIT = "company_id"
# A week four weeks back, whenever the tests run: its events stay within the intake's
# plausible window (records/usage/store.py), and a call stamped on arrival falls after it.
WEEK_START = utc_now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(weeks=4)
AT = WEEK_START + timedelta(days=1, hours=10)
TOKYO = timezone(timedelta(hours=9))


def utc_text(at: datetime) -> str:
    """An instant as a CSV file writes it: ISO 8601 with a Z."""
    return f"{at:%Y-%m-%dT%H:%M:%S}Z"


AT_TEXT = utc_text(AT)


def add_customer(database: Database, customer_id: str | None = None) -> str:
    customer_id = customer_id or f"cust-{uuid.uuid4().hex[:10]}"
    store_customer(database, make_handoff(customer_id=customer_id))
    return customer_id


def measure(database: Database, customer_id: str, **key_actions: str) -> WeeklyMeasurement:
    return ActivityEnvironment().run(
        MeasureActivities(database).measure_weekly_usage,
        MeasureWeeklyUsageInput(
            customer_id=customer_id,
            week_index=1,
            window_start=WEEK_START,
            window_end=WEEK_START + timedelta(days=7),
            seats_contracted=10,
            key_actions=key_actions,
        ),
    )


def events_of(database: Database, customer_id: str) -> list[UsageEvent]:
    with database.session() as session:
        rows = session.exec(
            select(UsageEvent)
            .where(col(UsageEvent.customer_id) == customer_id)
            .order_by(col(UsageEvent.occurred_at), col(UsageEvent.user_id), col(UsageEvent.id))
        ).all()
    return list(rows)


def unmatched_rows(database: Database) -> list[UnmatchedUsage]:
    with database.session() as session:
        return list(session.exec(select(UnmatchedUsage).order_by(col(UnmatchedUsage.id))).all())


def track(user: str, event: str = "document_scanned", **fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "timestamp": AT.isoformat(),
        "messageId": str(uuid.uuid4()),
        **fields,
    }


def ingest(database: Database, *calls: object) -> IntakeReport:
    return ingest_calls(database, list(calls), customer_trait=TRAIT)


# The storage logic, on SQLite and PostgreSQL


def test_a_track_call_counts_for_the_customer_its_group_id_names(database: Database) -> None:
    acme = add_customer(database)
    report = ingest(
        database,
        track("u1", context={"groupId": acme}, properties={"quantity": 3}),
        track("u2", properties={"groupId": acme}, timestamp=AT.astimezone(TOKYO).isoformat()),
        # Without a timestamp the call happened when it arrived.
        {"type": "track", "userId": "u3", "event": "login", "context": {"groupId": acme}},
    )

    assert (report.received, report.stored, report.rejected, report.unmatched) == (3, 3, [], [])
    stored = events_of(database, acme)
    assert [(e.user_id, e.event, e.quantity) for e in stored[:2]] == [
        ("u1", "document_scanned", 3.0),
        ("u2", "document_scanned", 1.0),
    ]
    assert stored[0].occurred_at == AT and stored[1].occurred_at == AT
    assert stored[2].occurred_at > AT
    week = measure(database, acme, A="document_scanned")
    assert (week.key_actions, week.active_users) == ({"A": 2}, 2)

    # A batch's own context applies to calls that name no group id themselves.
    from_batch = ingest_calls(
        database, [track("u4")], customer_trait=TRAIT, batch_context={"groupId": acme}
    )
    assert from_batch.stored == 1


def test_group_and_identify_calls_tie_users_to_their_customer(database: Database) -> None:
    acme, sakura = add_customer(database), add_customer(database)
    # Calls apply in order: each track call follows the call that tied its user.
    report = ingest(
        database,
        {"type": "group", "userId": "g-user", "groupId": acme, "traits": {"name": "Acme"}},
        track("g-user"),
        {"type": "identify", "userId": "i-user", "traits": {TRAIT: sakura, "email": "i@s.example"}},
        track("i-user"),
        # The reserved `company` trait works through a dotted trait name (below).
        {"type": "identify", "userId": "i-user", "traits": {"plan": "pro"}},
    )
    assert (report.mapped, report.stored, report.unmatched) == (3, 2, [])
    # A later request finds the mapping stored.
    later = ingest(database, track("g-user", "login"), track("i-user", "login"))
    assert later.stored == 2

    assert [e.user_id for e in events_of(database, acme)] == ["g-user", "g-user"]
    assert [e.user_id for e in events_of(database, sakura)] == ["i-user", "i-user"]
    with database.session() as session:
        user = session.get(UsageUser, "i-user")
        assert user is not None
        # Traits of successive identify calls are merged.
        assert user.traits == {TRAIT: sakura, "email": "i@s.example", "plan": "pro"}

    # A user known only by its anonymousId is tied and counted by it.
    anonymous = ingest(
        database,
        {"type": "group", "anonymousId": "anon-1", "groupId": acme},
        {"type": "track", "anonymousId": "anon-1", "event": "login", "timestamp": AT.isoformat()},
    )
    assert (anonymous.mapped, anonymous.stored) == (1, 1)
    assert [e.user_id for e in events_of(database, acme)] == ["anon-1", "g-user", "g-user"]

    # Segment's reserved `company` trait, through a dotted trait name.
    nested = ingest_calls(
        database,
        [{"type": "identify", "userId": "c-user", "traits": {"company": {"id": acme}}}],
        customer_trait="company.id",
    )
    assert nested.mapped == 1
    with database.session() as session:
        mapped = session.get(UsageUser, "c-user")
        assert mapped is not None and mapped.customer_id == acme


def test_identify_traits_wait_for_the_group_call_that_ties_their_user_and_are_kept_bounded(
    database: Database,
) -> None:
    acme = add_customer(database)
    who = {"email": "dana@acme.example", "role": "administrator", "bio": "b" * 5000}
    # Segment's usual order: who the user is, then which account; here two requests apart.
    first = ingest(database, {"type": "identify", "userId": "dana", "traits": who})
    assert len(first.unmatched) == 1  # no customer named yet: kept, not lost
    later = ingest(
        database,
        {"type": "group", "userId": "dana", "groupId": acme, "traits": {"plan": "enterprise"}},
        # In one request too: the identify is taken up by the group call after it.
        {"type": "identify", "userId": "omar", "traits": {"email": "omar@acme.example"}},
        {"type": "group", "userId": "omar", "groupId": acme, "traits": {"plan": "enterprise"}},
        {"type": "identify", "userId": "omar", "traits": {f"t{n}": n for n in range(80)}},
    )
    assert (later.mapped, later.unmatched) == (4, [])

    with database.session() as session:
        dana, omar = session.get(UsageUser, "dana"), session.get(UsageUser, "omar")
    assert dana is not None and omar is not None
    assert dana.customer_id == acme
    assert (dana.traits["email"], dana.traits["role"]) == ("dana@acme.example", "administrator")
    assert dana.traits["bio"] == "b" * 500  # text is cut; the trait is kept
    assert dana.group_traits == {"plan": "enterprise"}
    # At most 50 traits, the newest call's first: the email is no longer among them.
    assert len(omar.traits) == 50 and "t0" in omar.traits and "email" not in omar.traits
    assert unmatched_rows(database) == []


def test_calls_naming_no_customer_are_kept_counted_and_reported(database: Database) -> None:
    acme = add_customer(database)
    ingest(database, {"type": "group", "userId": "mapped", "groupId": acme})
    report = ingest(
        database,
        track("stranger"),
        track("mapped", context={"groupId": "not-a-customer"}),
        {"type": "group", "userId": "u", "groupId": "not-a-customer"},
        {"type": "identify", "userId": "u", "traits": {TRAIT: "nobody"}},
        {"type": "identify", "userId": "u", "traits": {"email": "u@x.example"}},
        track("mapped"),
    )

    assert report.stored == 1 and report.rejected == []
    assert [(u.index, u.type, u.user_id, u.group_id) for u in report.unmatched] == [
        (0, "track", "stranger", None),
        (1, "track", "mapped", "not-a-customer"),
        (2, "group", "u", "not-a-customer"),
        (3, "identify", "u", "nobody"),
        (4, "identify", "u", None),
    ]
    assert "group call or identify call with the company_id trait" in report.unmatched[0].reason
    # An explicit group id is not overridden by the user's mapping.
    assert [e.user_id for e in events_of(database, acme)] == ["mapped"]

    kept = unmatched_rows(database)
    assert len(kept) == 5
    assert kept[1].raw["context"] == {"groupId": "not-a-customer"}
    summary = unmatched_summary(database)
    assert summary.total == 5
    assert {c.reason: c.count for c in summary.by_reason}["group id names no customer"] == 2
    assert [(g.group_id, g.count) for g in summary.by_group_id] == [
        ("not-a-customer", 2),
        ("nobody", 1),
    ]
    assert [r.id for r in summary.recent] == sorted((r.id or 0 for r in kept), reverse=True)
    assert unmatched_summary(database, limit=2).total == 5
    assert len(unmatched_summary(database, limit=2).recent) == 2


def test_usage_sent_before_the_customer_started_is_adopted_when_it_starts_once(
    database: Database, tmp_path: Path
) -> None:
    trial = f"trial-{uuid.uuid4().hex[:8]}"
    without_id = track("u-2", context={"groupId": trial})
    del without_id["messageId"]
    ingest(
        database,
        {"type": "group", "userId": "u-1", "groupId": trial},
        track("u-1", context={"groupId": trial}),
        without_id,
        {"type": "identify", "userId": "u-3", "traits": {TRAIT: trial, "plan": "trial"}},
        track("u-9", context={"groupId": "someone-else"}),
    )
    csv_file = tmp_path / "usage.csv"
    csv_file.write_bytes(
        f"customer_id,user_id,event,occurred_at\n{trial},u-4,login,{AT.isoformat()}\n".encode()
    )
    with csv_file.open("rb") as handle:
        assert len(ingest_usage_csv(database, handle).unmatched) == 1
    assert len(unmatched_rows(database)) == 6

    add_customer(database, trial)
    add_customer(database, trial)  # a retried activity adopts nothing twice

    events = events_of(database, trial)
    assert sorted((e.user_id, e.event) for e in events) == [
        ("u-1", "document_scanned"),
        ("u-2", "document_scanned"),
        ("u-4", "login"),
    ]
    assert all(e.occurred_at == AT for e in events)  # when it happened, not when adopted
    with database.session() as session:
        users = {u.user_id: u for u in session.exec(select(UsageUser)).all()}
    assert users["u-1"].customer_id == trial
    assert users["u-3"].customer_id == trial and users["u-3"].traits["plan"] == "trial"
    # Only what named another customer is still waiting.
    assert [row.group_id for row in unmatched_rows(database)] == ["someone-else"]


def test_a_redelivered_message_is_stored_once(database: Database) -> None:
    acme = add_customer(database)
    call = track("u1", context={"groupId": acme})
    first = ingest(database, call, call)
    again = ingest(database, call)

    assert (first.stored, first.duplicates) == (1, 1)
    assert (again.stored, again.duplicates) == (0, 1)
    assert len(events_of(database, acme)) == 1


def test_a_redelivered_call_naming_no_customer_is_kept_once(
    database: Database, tmp_path: Path
) -> None:
    stranger = track("u1", context={"groupId": "not-yet-a-customer"})
    first = ingest(database, stranger, stranger)
    again = ingest(database, stranger)
    # Each answer still names it, so a client reads the same reply on its retry.
    assert len(first.unmatched) == 2 and len(again.unmatched) == 1
    assert len(unmatched_rows(database)) == 1
    assert unmatched_summary(database).total == 1

    csv_file = tmp_path / "usage.csv"
    csv_file.write_bytes(
        b"customer_id,user_id,event,occurred_at,event_key\n"
        + f"nobody,u-4,login,{AT.isoformat()},import-7\n".encode()
    )
    for _ in range(2):
        with csv_file.open("rb") as handle:
            assert len(ingest_usage_csv(database, handle).unmatched) == 1
    assert len(unmatched_rows(database)) == 2


def test_a_batch_stores_its_good_calls_and_names_the_rejected_ones(database: Database) -> None:
    acme = add_customer(database)
    good = {"context": {"groupId": acme}}
    report = ingest(
        database,
        track("u1", **good),
        {"type": "track", "event": "login", **good},
        track("u2", event="", **good),
        {"type": "launch", "userId": "u3"},
        "not an object",
        track("u4", timestamp="last tuesday", **good),
        track("u5", properties={"groupId": acme, "quantity": "lots"}),
        track("u6", properties={"groupId": acme, "quantity": -2}),
        track("u" * 201, **good),
        track("u\x00", **good),
        track("u7", context="acme"),
        track("u8", **good),
        {"type": "page", "userId": "u9", "name": "Home"},
        # What a database would refuse is refused here, call by call.
        {"type": "identify", "userId": "u10", "traits": {TRAIT: acme, "name": "\ud800"}},
        track("u11", properties={"note": "\udc00"}),
        {"type": "identify", "userId": "u12", "traits": {TRAIT: acme, "score": float("nan")}},
    )

    assert report.received == 16
    assert (report.stored, report.ignored) == (2, 1)
    reasons = {item.index: item.reason for item in report.rejected}
    assert reasons == {
        1: "userId or anonymousId is required",
        2: "event is required for a track call",
        3: "type must be one of track, identify, group, page, screen, alias; got 'launch'",
        4: "a call must be a JSON object, not str",
        5: "timestamp is not ISO 8601: 'last tuesday'",
        6: "properties.quantity is not a number: 'lots'",
        7: "properties.quantity must be a positive number, got -2",
        8: "userId is longer than 200 characters",
        9: "userId contains a NUL character",
        10: "context must be an object, not str",
        13: "traits is not valid Unicode (a lone surrogate)",
        14: "the call is not valid Unicode (a lone surrogate)",
        15: "traits holds NaN or Infinity, which JSON does not allow",
    }
    assert [e.user_id for e in events_of(database, acme)] == ["u1", "u8"]


def nested(levels: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_call_nested_too_deeply_is_rejected_and_none_kept_breaks_the_unmatched_list(
    database: Database,
) -> None:
    acme = add_customer(database)
    report = ingest(
        database,
        track("u1", properties=nested(600)),
        {"type": "identify", "userId": "u2", "traits": nested(40)},
        # Within the bound (the call is one level more): stored, or kept and listed whole.
        track("u3", properties=nested(30)),
        track("u4", context={"groupId": acme}, properties=nested(30)),
    )
    assert [(item.index, item.reason) for item in report.rejected] == [
        (0, "the call is nested more than 32 levels deep"),
        (1, "the call is nested more than 32 levels deep"),
    ]
    assert (report.stored, [item.index for item in report.unmatched]) == (1, [2])

    # A call kept before the bound is shown as an excerpt rather than failing the list.
    with database.session() as session:
        session.add(
            UnmatchedUsage(
                received_at=utc_now(),
                kind="track",
                user_id="kept-before",
                reason=REASON_UNKNOWN_GROUP,
                raw={"properties": nested(600)},
            )
        )
        session.add(
            UsageUser(
                user_id="traits-before",
                customer_id=acme,
                traits={"plan": "pro", "deep": nested(600)},
                updated_at=utc_now(),
            )
        )
        session.commit()
    summary = unmatched_summary(database)
    served = json.loads(summary.model_dump_json())  # as GET /api/intake/unmatched sends it
    shown = {record["user_id"]: record["raw"] for record in served["recent"]}
    assert shown["u3"]["properties"] == nested(30)
    assert shown["kept-before"]["nested_too_deeply"].startswith('{"properties": {"a": {"a": ')
    # Likewise a customer's users (GET /api/customers/<id>/users): the deep trait is left out.
    with database.session() as session:
        users = TypeAdapter(list[ProductUser]).dump_json(customer_users(session, acme))
    assert [user["traits"] for user in json.loads(users)] == [{"plan": "pro"}]


def test_a_quantity_past_the_bound_rejects_its_call_alone(database: Database) -> None:
    acme = add_customer(database)
    good = {"context": {"groupId": acme}}
    report = ingest(
        database,
        track("u1", properties={"quantity": 10**400}, **good),
        track("u2", properties={"quantity": 1e308}, **good),
        track("u3", properties={"quantity": "1e400"}, **good),
        track("u4", properties={"quantity": float("inf")}, **good),
        track("u5", properties={"quantity": 1_000_000_000}, **good),
        track("u6", properties={"quantity": "nan"}, **good),
    )
    assert [(item.index, item.reason.partition(", got")[0]) for item in report.rejected] == [
        (0, "properties.quantity must be at most 1,000,000,000"),
        (1, "properties.quantity must be at most 1,000,000,000"),
        (2, "properties.quantity must be at most 1,000,000,000"),
        (3, "properties.quantity must be at most 1,000,000,000"),
        (5, "properties.quantity must be a positive number"),
    ]
    assert [(e.user_id, e.quantity) for e in events_of(database, acme)] == [("u5", 1e9)]


def test_a_timestamp_outside_the_plausible_window_is_rejected_as_out_of_range(
    database: Database,
) -> None:
    acme = add_customer(database)
    now = utc_now()
    good = {"context": {"groupId": acme}}
    report = ingest(
        database,
        track("u1", timestamp="0001-01-01T00:00:00Z", **good),
        track("u2", timestamp="9999-12-31T23:59:59Z", **good),
        # Year 1 in Tokyo is before datetime's range once in UTC.
        track("u3", timestamp="0001-01-01T00:00:00+09:00", **good),
        track("u4", timestamp=(now - timedelta(days=5 * 366)).isoformat(), **good),
        track("u5", timestamp=(now + timedelta(days=2)).isoformat(), **good),
        # A back-fill of four years' history, and a phone's clock half a day ahead.
        track("u6", timestamp=(now - timedelta(days=4 * 366)).isoformat(), **good),
        track("u7", timestamp=(now + timedelta(hours=12)).isoformat(), **good),
    )
    window = "is not within 5 years before and 1 day after it arrived"
    assert [(item.index, item.reason.endswith(window)) for item in report.rejected] == [
        (0, True),
        (1, True),
        (2, True),
        (3, True),
        (4, True),
    ]
    assert report.rejected[2].reason == (
        f"timestamp is out of range: '0001-01-01T00:00:00+09:00' {window}"
    )
    assert sorted(e.user_id for e in events_of(database, acme)) == ["u6", "u7"]


def test_a_rejected_call_s_reason_quotes_its_input_cut_short(database: Database) -> None:
    acme = add_customer(database)
    good = {"context": {"groupId": acme}}
    report = ingest(
        database,
        {"type": "launch" + "!" * 5000, "userId": "u1"},
        {"type": ["track"] * 5000, "userId": "u1"},
        track("u2", properties={"quantity": "x" * 5000}, **good),
        track("u3", properties={"quantity": -(10**5000)}, **good),
        track("u4", properties={"quantity": "9" * 5000}, **good),
        track("u5", timestamp="2026" + "0" * 5000, **good),
    )
    reasons = [item.reason for item in report.rejected]
    assert len(reasons) == 6
    assert all(len(reason) < 150 for reason in reasons), reasons
    assert reasons[0] == (
        "type must be one of track, identify, group, page, screen, alias; "
        "got 'launch" + "!" * 32 + "…"
    )
    assert (
        reasons[3] == "properties.quantity must be a positive number, got an int too long to show"
    )


def test_rejected_calls_are_kept_for_operators_one_row_per_reason_and_bounded(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = add_customer(database)
    report = ingest(
        database,
        track("u1", context={"groupId": acme}),
        {"type": "track", "event": "login", "writeKey": "the-secret-key"},
        *(track("u2", timestamp=f"day {n}", context={"groupId": acme}) for n in range(30)),
        {"type": "launch" + "!" * 5000, "userId": "u3"},
    )
    assert (report.stored, len(report.rejected)) == (1, 32)

    summary = rejected_summary(database)
    # Every refused call is counted, whatever was kept of it.
    assert summary.total == 32
    assert summary.by_reason[0] == RejectedCount(
        reason="other reasons (too many different ones in one request)", count=12
    )
    rows = {row.reason: row for row in summary.recent}
    # One row per reason per request, at most 20 and one for the rest.
    assert len(rows) == 21
    missing = rows["userId or anonymousId is required"]
    assert (missing.endpoint, missing.calls, missing.first_index) == ("/v1/batch", 1, 1)
    assert '"event": "login"' in missing.excerpt and "the-secret-key" not in missing.excerpt
    assert rows["timestamp is not ISO 8601: 'day 0'"].first_index == 2
    assert all(len(r.reason) <= 300 and len(r.excerpt) <= 1000 for r in summary.recent)

    # Pruned on every write: rows past 30 days and all but the newest rows go.
    monkeypatch.setattr("records.usage.store.REJECTED_KEPT_ROWS", 3)
    with database.session() as session:
        session.add(
            RejectedUsage(
                received_at=utc_now() - timedelta(days=31),
                endpoint="/v1/track",
                reason="old",
                excerpt="",
            )
        )
        session.commit()
    ingest(database, {"type": "track", "userId": "u4"})
    with database.session() as session:
        kept = session.exec(select(RejectedUsage).order_by(col(RejectedUsage.id))).all()
    # The newest three are the 21st row of the first request, the old one, the new one.
    assert [row.reason for row in kept] == [
        "other reasons (too many different ones in one request)",
        "event is required for a track call",
    ]


def test_a_large_batch_is_stored_whole(database: Database) -> None:
    acme = add_customer(database)
    # More rows than one SQLite statement takes parameters for (32,766 / 7 columns).
    count = 5_000
    calls = [track(f"u{n}", context={"groupId": acme}) for n in range(count)]
    calls += [{**calls[0]}]  # a duplicate, far from its first copy
    unkeyed = track("nokey", context={"groupId": acme})
    del unkeyed["messageId"]
    calls += [unkeyed]

    report = ingest(database, *calls)
    assert (report.stored, report.duplicates) == (count + 1, 1)
    assert measure(database, acme).events == count + 1


CSV_HEADER = "customer_id,user_id,event,occurred_at,quantity,event_key\n"


def test_a_csv_back_fill_stores_good_rows_and_reports_the_others(database: Database) -> None:
    acme = add_customer(database)
    text = (
        CSV_HEADER
        + f"{acme},u1,document_scanned,{AT_TEXT},,k-1\n"
        + f"{acme},u2,document_scanned,{AT.astimezone(TOKYO).isoformat()},2,k-2\n"
        + f"{acme},u1,document_scanned,{AT_TEXT},,k-1\n"
        + f"{acme},u3,login,yesterday,,\n"
        + f"ghost,u4,login,{AT_TEXT},,\n"
        + f"{acme},{'x' * 201},login,{AT_TEXT},,\n"
        + f"{acme},u5,login,{utc_text(AT + timedelta(days=1))},,\n"
    )
    report = ingest_usage_csv(database, io.BytesIO(text.encode()))

    assert (report.received, report.stored, report.duplicates) == (7, 3, 1)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (5, "occurred_at is not an ISO 8601 timestamp: 'yesterday'"),
        (7, "user_id is longer than 200 characters"),
    ]
    assert [(u.line, u.group_id, u.reason) for u in report.unmatched] == [
        (6, "ghost", "customer_id names no customer")
    ]
    assert unmatched_rows(database)[0].raw["line"] == 6
    week = measure(database, acme, A="document_scanned")
    assert (week.key_actions, week.active_users) == ({"A": 2}, 3)


def test_a_back_fill_sent_again_stores_and_keeps_none_of_its_rows_twice(
    database: Database,
) -> None:
    acme = add_customer(database)
    # No event_key: two identical lines are two events, each stored once.
    text = CSV_HEADER + f"{acme},u1,login,{AT_TEXT},,\n" * 2 + f"ghost,u2,login,{AT_TEXT},,\n"

    def sent() -> IntakeReport:
        return ingest_usage_csv(database, io.BytesIO(text.encode()))

    first, again = sent(), sent()
    assert (first.stored, first.duplicates, len(first.unmatched)) == (2, 0, 1)
    assert (again.stored, again.duplicates, len(again.unmatched)) == (0, 2, 1)
    assert [e.user_id for e in events_of(database, acme)] == ["u1", "u1"]
    assert len(unmatched_rows(database)) == 1
    # Adopted when its customer starts, the kept row keeps its key.
    add_customer(database, "ghost")
    after_adoption = sent()
    assert (after_adoption.stored, after_adoption.duplicates) == (0, 3)
    assert [e.user_id for e in events_of(database, "ghost")] == ["u2"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"user_id,event\nu1,login\n",
            "not a usage CSV: missing columns: customer_id, occurred_at",
        ),
        (b"", "not a usage CSV: missing columns"),
        (CSV_HEADER.encode() + b"acme,u\x00\xff,login," + AT_TEXT.encode() + b",,\n", "not text"),
    ],
    ids=["missing-columns", "empty", "not-text"],
)
def test_a_file_that_is_not_a_usage_csv_stores_nothing(
    sqlite_database: Database, content: bytes, message: str
) -> None:
    add_customer(sqlite_database, "acme")
    with pytest.raises(IntakeError, match=message):
        ingest_usage_csv(sqlite_database, io.BytesIO(content))
    assert events_of(sqlite_database, "acme") == []


def test_a_back_fill_with_a_cell_past_the_csv_field_limit_names_its_line_and_stores_nothing(
    database: Database,
) -> None:
    add_customer(database, "acme")
    good = "".join(f"acme,u{n},login,{AT_TEXT},,k{n}\r\n" for n in range(3000))
    text = CSV_HEADER + good + f"acme,u,{'x' * 200_000},{AT_TEXT},,big\r\n"
    with pytest.raises(IntakeError) as refused:
        ingest_usage_csv(database, io.BytesIO(text.encode()))
    assert str(refused.value) == "line 3002: a cell is longer than 131,072 characters"
    assert events_of(database, "acme") == []


def test_a_back_fill_with_thousands_of_unknown_columns_is_refused_in_a_short_detail(
    sqlite_database: Database,
) -> None:
    extra = ",".join(f"column_{n}_{'x' * 50}" for n in range(10_000))
    text = CSV_HEADER.rstrip("\n") + "," + extra + "\r\n"
    with pytest.raises(IntakeError) as refused:
        ingest_usage_csv(sqlite_database, io.BytesIO(text.encode()))
    detail = str(refused.value)
    assert detail.startswith("not a usage CSV: unknown column(s) 'column_0_xxx")
    assert "…', " in detail and "and 9,995 more; the columns are customer_id" in detail
    assert len(detail) < 500


def test_a_back_fill_saved_by_japanese_excel_is_read_as_shift_jis(
    database: Database,
) -> None:
    add_customer(database, "acme")
    text = CSV_HEADER + f"acme,山田,請求書スキャン,{AT.astimezone(TOKYO).isoformat()},,jp-1\r\n"
    report = ingest_usage_csv(database, io.BytesIO(text.encode("cp932")))
    assert (report.stored, report.rejected) == (1, [])
    assert [(e.user_id, e.event) for e in events_of(database, "acme")] == [
        ("山田", "請求書スキャン")
    ]


def test_a_back_fill_saved_as_excel_unicode_text_is_read(database: Database) -> None:
    add_customer(database, "acme")
    text = CSV_HEADER.replace(",", "\t") + f"acme\t山田\t請求書スキャン\t{AT_TEXT}\t\tjp-1\r\n"
    report = ingest_usage_csv(database, io.BytesIO(b"\xff\xfe" + text.encode("utf-16-le")))
    assert (report.stored, report.rejected) == (1, [])
    assert [(e.user_id, e.event) for e in events_of(database, "acme")] == [
        ("山田", "請求書スキャン")
    ]


# Over HTTP


def basic(key: str) -> httpx.BasicAuth:
    return httpx.BasicAuth(key, "")


async def test_each_call_endpoint_takes_segment_calls_with_the_write_key(api: ApiHarness) -> None:
    acme = add_customer(api.database)
    key = basic(api.token(TokenRole.INGEST))
    async with api.client() as http:
        identified = await http.post(
            "/v1/identify", auth=key, json={"userId": "u1", "traits": {TRAIT: acme}}
        )
        grouped = await http.post("/v1/group", auth=key, json={"userId": "u2", "groupId": acme})
        tracked = await http.post(
            "/v1/track",
            auth=key,
            json={"userId": "u1", "event": "document_scanned", "timestamp": AT.isoformat()},
        )
        paged = await http.post("/v1/page", auth=key, json={"userId": "u1", "name": "Home"})
        batched = await http.post(
            "/v1/batch",
            auth=key,
            json={"batch": [track("u2"), track("stranger")], "writeKey": "ignored"},
        )

    for response in (identified, grouped, tracked, paged, batched):
        assert response.status_code == 200, response.text
        assert response.json()["success"] is True
    assert identified.json()["mapped"] == grouped.json()["mapped"] == 1
    assert tracked.json() == {
        "success": True,
        "received": 1,
        "stored": 1,
        "duplicates": 0,
        "mapped": 0,
        "ignored": 0,
        "rejected": [],
        "unmatched": [],
        "rejected_count": 0,
        "unmatched_count": 0,
    }
    assert paged.json()["ignored"] == 1
    assert batched.json()["stored"] == 1
    assert batched.json()["unmatched"] == [
        {
            "index": 1,
            "type": "track",
            "user_id": "stranger",
            "reason": batched.json()["unmatched"][0]["reason"],
        }
    ]
    week = measure(api.database, acme, A="document_scanned")
    assert (week.key_actions, week.active_users) == ({"A": 2}, 2)


async def test_only_a_valid_usage_sender_token_is_taken(api: ApiHarness) -> None:
    call = {"userId": "u1", "event": "login"}
    ingest_key, ingest_info = create_token(api.database, name="segment", role=TokenRole.INGEST)
    async with api.client() as http:
        missing = await http.post("/v1/track", json=call)
        wrong = await http.post("/v1/track", json=call, auth=basic("lo_not-a-key"))
        csm = await http.post(
            "/v1/batch",
            json={"batch": []},
            auth=basic(api.token(TokenRole.CSM, "csm@liftoff.example")),
        )
        bearer = await http.post(
            "/v1/batch", json={"batch": []}, headers={"Authorization": f"Bearer {ingest_key}"}
        )
        lead = await http.post(
            "/v1/batch", json={"batch": []}, auth=basic(api.token(TokenRole.LEAD))
        )
        ops = await http.post("/v1/batch", json={"batch": []}, auth=basic(api.token(TokenRole.OPS)))
        revoke_token(api.database, ingest_info.id)
        revoked = await http.post("/v1/batch", json={"batch": []}, auth=basic(ingest_key))
        # A session cookie is no write key: the intake takes no ambient credentials.
        ops_session = start_session(
            api.database,
            authenticate(api.database, api.token(TokenRole.OPS)),  # type: ignore[arg-type]
            lasts=timedelta(hours=1),
        )
        http.cookies.set(SESSION_COOKIE, ops_session)
        cookie = await http.post("/v1/batch", json={"batch": []})

    assert missing.status_code == 401
    assert "HTTP Basic user name" in missing.json()["detail"]
    assert missing.headers["WWW-Authenticate"].startswith("Basic")
    assert wrong.status_code == 401
    assert csm.status_code == 403
    assert csm.json()["detail"] == "a csm token cannot send usage (ingest, ops, lead tokens can)"
    assert (bearer.status_code, lead.status_code, ops.status_code) == (200, 200, 200)
    assert revoked.status_code == 401
    assert revoked.json()["detail"] == "unknown or revoked write key"
    assert cookie.status_code == 401


async def test_bodies_that_are_not_calls_are_refused_with_the_reason(api: ApiHarness) -> None:
    key = basic(api.token(TokenRole.INGEST))
    async with api.client() as http:
        not_json = await http.post("/v1/batch", auth=key, content=b"{batch: [")
        empty = await http.post("/v1/track", auth=key, content=b"")
        not_batch = await http.post("/v1/batch", auth=key, json=[track("u1")])
        not_object = await http.post("/v1/track", auth=key, json=["login"])
        bad_call = await http.post("/v1/track", auth=key, json={"userId": "u1"})
        nan = await http.post(
            "/v1/track", auth=key, content=b'{"userId": "u1", "event": "e", "n": NaN}'
        )
        encoded = await http.post(
            "/v1/track", auth=key, content=b"{}", headers={"Content-Encoding": "br"}
        )
        # What is quoted back is cut short.
        long_encoding = await http.post(
            "/v1/track", auth=key, content=b"{}", headers={"Content-Encoding": "x-" + "x" * 4000}
        )
        long_quantity = await http.post(
            "/v1/track",
            auth=key,
            json={"userId": "u1", "event": "e", "properties": {"quantity": "l" * 30_000}},
        )

    assert not_json.status_code == 400
    assert not_json.json()["detail"].startswith("the body is not JSON")
    assert (empty.status_code, empty.json()["detail"]) == (
        400,
        "the body is empty: send a JSON object",
    )
    assert not_batch.status_code == 400
    assert not_batch.json()["detail"].startswith("not a batch: expected")
    assert not_object.json()["detail"] == "expected a JSON object: one track call"
    # A single call that cannot be taken is a 400 with its reason, not a silent 200.
    assert (bad_call.status_code, bad_call.json()["detail"]) == (
        400,
        "event is required for a track call",
    )
    assert (nan.status_code, nan.json()["detail"]) == (
        400,
        "the body is not JSON: NaN is not a JSON value",
    )
    assert encoded.status_code == 415
    assert long_encoding.json()["detail"] == (
        "Content-Encoding 'x-" + "x" * 36 + "… is not supported: send gzip or no encoding"
    )
    assert long_quantity.json()["detail"] == (
        "properties.quantity is not a number: '" + "l" * 38 + "…"
    )


async def test_requests_over_segments_size_limits_are_refused_with_the_limit(
    api: ApiHarness,
) -> None:
    acme = add_customer(api.database)
    key = basic(api.token(TokenRole.INGEST))
    padding = "x" * MAX_CALL_BYTES
    many = [track(f"u{n}", context={"groupId": acme}) for n in range(MAX_BATCH_BYTES // 150)]
    async with api.client() as http:
        big_batch = await http.post("/v1/batch", auth=key, json={"batch": many})
        big_call = await http.post(
            "/v1/track", auth=key, json={"userId": "u", "event": "e", "properties": {"p": padding}}
        )
        # gzip: the limit holds for what the body inflates to.
        bomb = await http.post(
            "/v1/batch",
            auth=key,
            content=gzip.compress(b'{"batch": ["' + b"x" * MAX_BATCH_BYTES + b'"]}'),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        # One call over 32 KB in a batch within 500 KB is rejected alone.
        mixed = await http.post(
            "/v1/batch",
            auth=key,
            json={"batch": [many[0], {**many[1], "properties": {"p": padding}}, many[2]]},
        )
    assert len(json.dumps({"batch": many})) > MAX_BATCH_BYTES
    assert big_batch.status_code == 413
    assert "at most 500 KB (512000 bytes)" in big_batch.json()["detail"]
    assert big_call.status_code == 413
    assert "at most 32 KB (32768 bytes)" in big_call.json()["detail"]
    assert bomb.status_code == 413
    assert mixed.status_code == 200
    assert mixed.json()["stored"] == 2
    assert mixed.json()["rejected"] == [
        {"index": 1, "reason": "the call is larger than 32 KB (32 KB per call)"}
    ]
    assert len(events_of(api.database, acme)) == 2


async def test_a_batch_s_reply_stays_small_whatever_it_holds(api: ApiHarness) -> None:
    acme = add_customer(api.database)
    key = basic(api.token(TokenRole.INGEST))
    good = [track(f"u{n}", context={"groupId": acme}) for n in range(3)]
    # Within 500 KB of JSON: 5,000 calls are taken, the replies list 100 of each kind.
    rejected = {"batch": [*good, *[1] * 4_997]}
    unmatched = {"batch": [track(f"s{n}") for n in range(150)]}
    # 491 bytes of gzip, 450 KB inflated (within the limit): 150,000 calls.
    swarm = gzip.compress(json.dumps({"batch": [1] * 150_000}).encode())
    async with api.client() as http:
        many_rejected = await http.post("/v1/batch", auth=key, json=rejected)
        many_unmatched = await http.post("/v1/batch", auth=key, json=unmatched)
        too_many = await http.post(
            "/v1/batch",
            auth=key,
            content=swarm,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    assert many_rejected.status_code == 200, many_rejected.text
    reply = many_rejected.json()
    assert (reply["received"], reply["stored"], reply["rejected_count"]) == (5_000, 3, 4_997)
    assert [item["index"] for item in reply["rejected"]] == list(range(3, 103))
    assert len(many_rejected.content) < 10_000
    listed = many_unmatched.json()
    assert (len(listed["unmatched"]), listed["unmatched_count"]) == (100, 150)
    assert too_many.status_code == 413
    assert too_many.json()["detail"] == (
        "a batch may hold at most 5,000 calls: send fewer calls per batch"
    )
    assert len(events_of(api.database, acme)) == 3


async def test_a_gzipped_batch_is_taken(api: ApiHarness) -> None:
    acme = add_customer(api.database)
    body = json.dumps({"batch": [track("u1", context={"groupId": acme})]}).encode()
    async with api.client() as http:
        response = await http.post(
            "/v1/batch",
            auth=basic(api.token(TokenRole.INGEST)),
            content=gzip.compress(body),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 1


async def test_a_truncated_gzip_body_is_refused(api: ApiHarness) -> None:
    acme = add_customer(api.database)
    whole = gzip.compress(json.dumps({"batch": [track("u1", context={"groupId": acme})]}).encode())
    async with api.client() as http:
        # Without its 8-byte trailer (checksum and size) the JSON inflates whole.
        responses = [
            await http.post(
                "/v1/batch",
                auth=basic(api.token(TokenRole.INGEST)),
                content=cut,
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
            for cut in (whole[:-8], whole[:-1])
        ]
    for response in responses:
        assert (response.status_code, response.json()["detail"]) == (
            400,
            "the gzip body is truncated",
        )
    assert events_of(api.database, acme) == []


async def test_a_csv_upload_back_fills_and_reports_its_bad_rows(api: ApiHarness) -> None:
    acme = add_customer(api.database)
    text = (
        CSV_HEADER
        + f"{acme},u1,document_scanned,{AT_TEXT},,k-1\n"
        + f"{acme},u2,document_scanned,{AT_TEXT},zero,k-2\n"
        + f"ghost,u3,login,{AT_TEXT},,\n"
    )
    key = basic(api.token(TokenRole.INGEST))
    async with api.client() as http:
        uploaded = await http.post(
            "/api/usage/csv", auth=key, files={"file": ("usage.csv", text, "text/csv")}
        )
        again = await http.post(
            "/api/usage/csv", auth=key, files={"file": ("usage.csv", text, "text/csv")}
        )
        not_csv = await http.post(
            "/api/usage/csv", auth=key, files={"file": ("notes.txt", b"hello\n", "text/plain")}
        )
        no_file = await http.post("/api/usage/csv", auth=key, data={"other": "x"})
        csm = await http.post(
            "/api/usage/csv",
            auth=basic(api.token(TokenRole.CSM, "csm@liftoff.example")),
            files={"file": ("usage.csv", text, "text/csv")},
        )

    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json() == {
        "success": True,
        "received": 3,
        "stored": 1,
        "duplicates": 0,
        "mapped": 0,
        "ignored": 0,
        "rejected": [{"line": 3, "reason": "quantity is not a number: 'zero'"}],
        "unmatched": [
            {
                "line": 4,
                "type": "csv",
                "user_id": "u3",
                "group_id": "ghost",
                "reason": "customer_id names no customer",
            }
        ],
        "rejected_count": 1,
        "unmatched_count": 1,
    }
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 1)
    assert not_csv.status_code == 400
    assert not_csv.json()["detail"].startswith("not a usage CSV: missing columns: customer_id")
    assert no_file.status_code == 400
    assert csm.status_code == 403
    assert len(events_of(api.database, acme)) == 1


async def test_a_csv_upload_over_the_limit_is_refused_with_the_limit(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("api.routes.usage.MAX_CSV_BYTES", 1024)
    text = CSV_HEADER + f"acme,u1,login,{AT_TEXT},,\n" * 40
    boundary = "liftoff-test"
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="u.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n{text}\r\n--{boundary}--\r\n"
    ).encode()

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(form), 256):
            yield form[start : start + 256]

    key = basic(api.token(TokenRole.INGEST))
    async with api.client() as http:
        declared = await http.post(
            "/api/usage/csv", auth=key, files={"file": ("u.csv", text, "text/csv")}
        )
        # Without a Content-Length the limit holds for what arrives.
        streamed = await http.post(
            "/api/usage/csv",
            auth=key,
            content=chunked(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["detail"].startswith("a CSV upload may be at most 1 KB (1024 bytes)")


async def test_leads_and_ops_see_what_went_unmatched(api: ApiHarness) -> None:
    key = basic(api.token(TokenRole.INGEST))
    async with api.client() as http:
        await http.post(
            "/v1/batch",
            auth=key,
            json={"batch": [track("u1", context={"groupId": "prospect"}), track("u2")]},
        )
        # Kept, a call this deep would fail every read of the list below.
        too_deep = await http.post(
            "/v1/track", auth=key, json={**track("u3"), "properties": nested(600)}
        )
    async with api.as_lead() as lead:
        seen = await lead.get("/api/intake/unmatched", params={"limit": 1})
        bad_limit = await lead.get("/api/intake/unmatched", params={"limit": 0})
    async with api.as_csm() as csm:
        refused = await csm.get("/api/intake/unmatched")
    async with api.client(api.token(TokenRole.INGEST)) as ingest_only:
        ingest_refused = await ingest_only.get("/api/intake/unmatched")

    assert (too_deep.status_code, too_deep.json()["detail"]) == (
        400,
        "the call is nested more than 32 levels deep",
    )
    assert seen.status_code == 200, seen.text
    summary = seen.json()
    assert summary["total"] == 2
    assert sum(count["count"] for count in summary["by_reason"]) == 2
    assert [(g["group_id"], g["count"]) for g in summary["by_group_id"]] == [("prospect", 1)]
    assert [r["user_id"] for r in summary["recent"]] == ["u2"]
    assert bad_limit.status_code == 422
    assert (refused.status_code, ingest_refused.status_code) == (403, 403)


async def test_leads_and_ops_see_what_was_rejected_though_the_sender_never_reads_it(
    api: ApiHarness,
) -> None:
    acme = add_customer(api.database)
    key = basic(api.token(TokenRole.INGEST))
    async with api.client() as http:
        await http.post(
            "/v1/batch", auth=key, json={"batch": [track("u1", context={"groupId": acme})]}
        )
        await http.post("/v1/batch", auth=key, content=b"{batch: [")
        await http.post("/v1/track", auth=key, json={"userId": "u1"})
        await http.post("/api/usage/csv", auth=key, files={"file": ("u.csv", b"user_id\nu1\n")})
    async with api.as_lead() as lead:
        seen = await lead.get("/api/intake/rejected")
    async with api.as_csm() as csm:
        refused = await csm.get("/api/intake/rejected")

    assert seen.status_code == 200, seen.text
    summary = seen.json()
    assert summary["total"] == 3
    assert [(r["endpoint"], r["reason"][:28]) for r in summary["recent"]] == [
        ("/api/usage/csv", "not a usage CSV: missing col"),
        ("/v1/track", "event is required for a trac"),
        ("/v1/batch", "the body is not JSON: Expect"),
    ]
    assert summary["recent"][2]["excerpt"] == '"{batch: ["'
    assert refused.status_code == 403


async def test_no_write_key_in_a_refused_body_reaches_what_operators_read(
    api: ApiHarness,
) -> None:
    key = api.token(TokenRole.INGEST)
    near_the_cut = "x" * 980 + json.dumps({"writeKey": key})
    async with api.client() as http:
        for path, body in [
            # Segment's libraries put the key in the body as well.
            ("/v1/batch", json.dumps({"batch": "x", "writeKey": key})),
            ("/v1/batch", f"writeKey={key}&batch=1"),
            ("/v1/track", json.dumps([{"writeKey": key}])),
            ("/v1/batch", json.dumps({"batch": [[{"writeKey": key}]]})),
            ("/v1/batch", json.dumps({"batch": 1, "key": key})),
            ("/v1/batch", json.dumps({"batch": 1, "writeKey": "a-segment-key"})),
            ("/v1/batch", near_the_cut),
        ]:
            refused = await http.post(path, auth=basic(key), content=body)
            assert refused.status_code in (200, 400), refused.text
    async with api.as_lead() as lead:
        seen = await lead.get("/api/intake/rejected")

    assert seen.status_code == 200, seen.text
    excerpts = [row["excerpt"] for row in seen.json()["recent"]]
    assert len(excerpts) == 7
    assert key not in seen.text and key[:12] not in seen.text
    assert "a-segment-key" not in seen.text
    assert excerpts[-1] == '"{\\"batch\\": \\"x\\", \\"writeKey\\": \\"(hidden)\\"}"'


# The real Segment client, over loopback


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn in a thread, on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            thread.join(0.01)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


async def test_the_segment_python_client_sends_usage_that_counts_in_the_weekly_measurement(
    api: ApiHarness,
) -> None:
    acme = add_customer(api.database)
    errors: list[str] = []
    with served(api.app) as url:
        client = segment_analytics.Client(
            write_key=api.token(TokenRole.INGEST),
            host=url,
            gzip=True,
            max_retries=1,
            on_error=lambda error, batch: errors.append(f"{error} ({len(batch)} calls)"),
        )
        client.identify("dana", {TRAIT: acme, "email": "dana@acme.example"})
        client.identify("omar", {TRAIT: acme})
        client.track("dana", "document_scanned", {"document": "inv-1"}, timestamp=AT)
        client.track("omar", "document_scanned", timestamp=AT + timedelta(hours=1))
        client.track("omar", "login", timestamp=AT)
        client.track("dana", "document_scanned", timestamp=AT + timedelta(days=9))  # next week
        # The client uploads from its own thread; flushing blocks until it has.
        await asyncio.to_thread(client.flush)
        await asyncio.to_thread(client.join)

    assert errors == []
    week = measure(api.database, acme, A="document_scanned")
    assert week.key_actions == {"A": 2}
    assert (week.active_users, week.events) == (2, 3)
    assert week.data_ever_arrived


async def test_the_segment_python_client_s_identify_and_group_traits_are_shown_per_customer(
    api: ApiHarness,
) -> None:
    acme = add_customer(api.database)
    errors: list[str] = []
    with served(api.app) as url:
        client = segment_analytics.Client(
            write_key=api.token(TokenRole.INGEST),
            host=url,
            gzip=True,
            max_retries=1,
            on_error=lambda error, batch: errors.append(f"{error} ({len(batch)} calls)"),
        )
        client.identify("dana", {"email": "dana@acme.example", "role": "administrator"})
        client.group("dana", acme, {"name": "Acme Logistics", "plan": "enterprise"})
        client.identify("omar", {TRAIT: acme, "email": "omar@acme.example", "role": "end_user"})
        await asyncio.to_thread(client.flush)
        await asyncio.to_thread(client.join)
    async with api.as_lead() as lead:
        listed = await lead.get(f"/api/customers/{acme}/users")

    assert errors == []
    assert listed.status_code == 200, listed.text
    users = {user["user_id"]: user for user in listed.json()}
    assert users["dana"]["traits"] == {"email": "dana@acme.example", "role": "administrator"}
    assert users["dana"]["group_traits"] == {"name": "Acme Logistics", "plan": "enterprise"}
    assert (users["omar"]["traits"]["email"], users["omar"]["traits"]["role"]) == (
        "omar@acme.example",
        "end_user",
    )
    assert unmatched_summary(api.database).total == 0
