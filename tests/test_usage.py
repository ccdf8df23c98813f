"""Usage intake from the CLI: single events and CSV files, with duplicates and bad rows."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlmodel import col, select

from cli.main import main
from models.tables import UsageEvent
from records.csv_text import SNIFF_BYTES, csv_number
from records.database import Database
from records.usage.csv_import import import_usage_csv, ingest_usage_csv
from records.usage.events import event_values, record_usage_event, store_event_rows
from testkit.factories import make_handoff, store_customer

# Event times within the intake's plausible window whenever the tests run.
WEEK_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)
DAY = f"{WEEK_AGO:%Y-%m-%d}"
NEXT_DAY = f"{WEEK_AGO + timedelta(days=1):%Y-%m-%d}"


def add_customer(database: Database, customer_id: str) -> None:
    store_customer(database, make_handoff(customer_id=customer_id))


def stored_events(database: Database, customer_id: str) -> list[UsageEvent]:
    with database.session() as session:
        rows = session.exec(
            select(UsageEvent)
            .where(col(UsageEvent.customer_id) == customer_id)
            .order_by(col(UsageEvent.occurred_at), col(UsageEvent.user_id))
        ).all()
    return list(rows)


def test_same_event_key_is_stored_once(database: Database) -> None:
    at = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    first = record_usage_event(
        database, customer_id="acme", user_id="u1", event="login", occurred_at=at, event_key="e-1"
    )
    again = record_usage_event(
        database, customer_id="acme", user_id="u1", event="login", occurred_at=at, event_key="e-1"
    )
    unkeyed = [
        record_usage_event(
            database, customer_id="acme", user_id="u1", event="login", occurred_at=at
        )
        for _ in range(2)
    ]

    assert (first, again) == (True, False)
    # Without a key there is nothing to deduplicate by: both are kept.
    assert unkeyed == [True, True]
    assert len(stored_events(database, "acme")) == 3


def test_a_batch_mixing_keyed_and_unkeyed_events_is_stored_in_its_order(
    database: Database,
) -> None:
    at = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

    def row(user: str, key: str | None) -> dict[str, object]:
        return event_values(
            customer_id="acme",
            user_id=user,
            event="login",
            occurred_at=at,
            quantity=1.0,
            event_key=key,
            received_at=at,
        )

    batch = [row("a", None), row("b", None), row("k", "e-1"), row("c", None)]
    batch += [row("k-again", "e-1"), row("d", None), row("e", None)]

    assert store_event_rows(database, batch) == (6, 1)
    with database.session() as session:
        users = session.exec(
            select(UsageEvent.user_id)
            .where(col(UsageEvent.customer_id) == "acme")
            .order_by(col(UsageEvent.id))
        ).all()
    assert list(users) == ["a", "b", "k", "c", "d", "e"]


def test_csv_import_stores_good_rows_and_reports_each_bad_line(
    database: Database, tmp_path: Path
) -> None:
    add_customer(database, "acme")
    csv_file = tmp_path / "usage.csv"
    csv_file.write_text(
        "customer_id,user_id,event,occurred_at,quantity,event_key\n"
        f"acme,u1,login,{DAY}T09:00:00,,k1\n"  # naive: UTC
        f"acme,u2,document_processed,{DAY}T18:00:00+09:00,2.5,k2\n"
        "acme,u3,login,yesterday,,k3\n"
        f"ghost,u1,login,{DAY}T09:00:00Z,,k4\n"
        f"acme,u1,document_processed,{NEXT_DAY}T09:00:00Z,-1,k5\n"
        f"acme,,login,{NEXT_DAY}T09:00:00Z,,k6\n"
        f"acme,u1,login,{DAY}T09:00:00Z,,k1\n"  # same key as line 2
        f"acme,u4,login,{NEXT_DAY}T09:00:00Z,,\n",
        encoding="utf-8",
    )

    report = import_usage_csv(database, csv_file)

    assert report.stored == 3
    assert report.duplicates == 1
    assert [line for line, _ in report.rejected] == [4, 5, 6, 7]
    reasons = dict(report.rejected)
    assert "occurred_at" in reasons[4]
    assert reasons[5] == "unknown customer"
    assert "quantity" in reasons[6]
    assert reasons[7] == "user_id is empty"
    events = stored_events(database, "acme")
    assert [(e.user_id, e.event, e.quantity) for e in events] == [
        ("u1", "login", 1.0),
        ("u2", "document_processed", 2.5),
        ("u4", "login", 1.0),
    ]
    nine_utc = datetime.fromisoformat(f"{DAY}T09:00:00+00:00")
    assert events[0].occurred_at == nine_utc
    assert events[1].occurred_at == nine_utc
    assert stored_events(database, "ghost") == []


def test_reimporting_a_keyed_file_stores_nothing_new(database: Database, tmp_path: Path) -> None:
    add_customer(database, "acme")
    csv_file = tmp_path / "usage.csv"
    csv_file.write_text(
        "customer_id,user_id,event,occurred_at,event_key\n"
        f"acme,u1,login,{DAY}T09:00:00Z,k1\n"
        f"acme,u2,login,{DAY}T10:00:00Z,k2\n",
        encoding="utf-8",
    )

    first = import_usage_csv(database, csv_file)
    second = import_usage_csv(database, csv_file)

    assert (first.stored, first.duplicates) == (2, 0)
    assert (second.stored, second.duplicates) == (0, 2)
    assert len(stored_events(database, "acme")) == 2


def test_reimporting_a_file_without_event_keys_stores_nothing_twice(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_customer(database, "acme")
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    at = WEEK_AGO.isoformat()
    header = "customer_id,user_id,event,occurred_at,quantity\n"
    # Two identical lines are two events: a day's export can hold both.
    pages = f"acme,u1,pages,{at},2\n" * 2 + f"acme,u2,pages,{at},1\n"
    csv_file = tmp_path / "usage.csv"
    csv_file.write_text(header + pages + "acme,u3,pages,yesterday,1\n", encoding="utf-8")

    def imported() -> str:
        main(["usage", "import", str(csv_file)])
        return capsys.readouterr().out

    def pages_by_user() -> dict[str, float]:
        totals: dict[str, float] = {}
        for event in stored_events(database, "acme"):
            totals[event.user_id] = totals.get(event.user_id, 0) + event.quantity
        return totals

    assert imported() == f"{csv_file}: 3 stored, 0 already stored, 1 rejected\n"
    assert pages_by_user() == {"u1": 4, "u2": 1}
    assert imported() == f"{csv_file}: 0 stored, 3 already stored, 1 rejected\n"
    assert pages_by_user() == {"u1": 4, "u2": 1}
    # The bad row fixed, and the first line's values written another way: the same event.
    in_tokyo = WEEK_AGO.astimezone(timezone(timedelta(hours=9))).isoformat()
    csv_file.write_text(
        header
        + f"acme,u1,pages,{in_tokyo},2.0\n"
        + f"acme,u1,pages,{at},2\n"
        + f"acme,u2,pages,{at},1\n"
        + f"acme,u3,pages,{at},1\n",
        encoding="utf-8",
    )
    assert imported() == f"{csv_file}: 1 stored, 3 already stored, 0 rejected\n"
    assert pages_by_user() == {"u1": 4, "u2": 1, "u3": 1}


def test_csv_without_required_columns_is_rejected_as_a_whole(
    sqlite_database: Database, tmp_path: Path
) -> None:
    csv_file = tmp_path / "usage.csv"
    csv_file.write_text("customer,user,event\nacme,u1,login\n", encoding="utf-8")

    report = import_usage_csv(sqlite_database, csv_file)

    assert report.stored == 0
    assert report.rejected == [
        (
            1,
            "missing columns: customer_id, user_id, occurred_at; unknown column(s) "
            "'customer' (did you mean 'customer_id'?), 'user' (did you mean 'user_id'?); "
            "the columns are customer_id, user_id, event, occurred_at, quantity, event_key",
        )
    ]


def test_a_misspelt_optional_column_is_refused_not_dropped(
    sqlite_database: Database, tmp_path: Path
) -> None:
    # Read silently, "quantitiy" would count every row as a quantity of 1.
    csv_file = tmp_path / "usage.csv"
    csv_file.write_text(
        f"customer_id,user_id,event,occurred_at,quantitiy\nacme,u1,pages,{DAY}T10:00:00Z,40\n",
        encoding="utf-8",
    )

    report = import_usage_csv(sqlite_database, csv_file)

    assert report.stored == 0
    assert "'quantitiy' (did you mean 'quantity'?)" in report.rejected[0][1]


def test_rows_a_database_would_refuse_are_rejected_and_the_rest_stored(
    database: Database, tmp_path: Path
) -> None:
    add_customer(database, "acme")
    csv_file = tmp_path / "usage.csv"
    csv_file.write_text(
        "customer_id,user_id,event,occurred_at\n"
        "acme,u1,login,0001-01-01T00:00:00+05:00\n"  # before year 1 in UTC
        f"acme,{'u' * 201},login,{DAY}T09:00:00Z\n"
        f"acme,u\x002,login,{DAY}T09:00:00Z\n"
        f"acme,u3,login,{DAY}T09:00:00Z\n",
        encoding="utf-8",
    )

    report = import_usage_csv(database, csv_file)

    reasons = dict(report.rejected)
    assert reasons.keys() == {2, 3, 4}
    assert "out of range" in reasons[2]
    assert reasons[3] == "user_id is longer than 200 characters"
    assert reasons[4] == "user_id contains a NUL character"
    assert [e.user_id for e in stored_events(database, "acme")] == ["u3"]


def test_a_rejected_row_echoes_only_the_start_of_its_cell(
    sqlite_database: Database, tmp_path: Path
) -> None:
    add_customer(sqlite_database, "acme")
    csv_file = tmp_path / "usage.csv"
    csv_file.write_text(
        "customer_id,user_id,event,occurred_at,quantity\r\n"
        f"acme,u1,login,{'2025' * 25_000},\r\n"
        f"acme,u1,login,{DAY}T09:00:00Z,{'9' * 100_000}x\r\n",
        encoding="utf-8",
    )

    report = import_usage_csv(sqlite_database, csv_file)

    assert report.rejected == [
        (2, f"occurred_at is not an ISO 8601 timestamp: '{'2025' * 9}202…'"),
        (3, f"quantity is not a number: '{'9' * 39}…'"),
    ]


def test_a_shift_jis_usage_file_from_japanese_excel_is_imported(
    database: Database, tmp_path: Path
) -> None:
    add_customer(database, "sakura")
    csv_file = tmp_path / "usage.csv"
    csv_file.write_bytes(
        (
            "customer_id,user_id,event,occurred_at,quantity,event_key\r\n"
            f"sakura,山田太郎,請求書スキャン,{DAY}T09:00:00+09:00,1,k1\r\n"
            f"sakura,佐藤花子,ログイン,{DAY}T10:00:00+09:00,,k2\r\n"
        ).encode("cp932")
    )

    report = import_usage_csv(database, csv_file)

    assert (report.stored, report.rejected) == (2, [])
    events = stored_events(database, "sakura")
    assert [(e.user_id, e.event) for e in events] == [
        ("山田太郎", "請求書スキャン"),
        ("佐藤花子", "ログイン"),
    ]


def test_excel_unicode_text_usage_is_imported(database: Database, tmp_path: Path) -> None:
    # Excel's "Unicode Text (*.txt)": UTF-16 LE after a BOM, tabs between cells, CRLF.
    add_customer(database, "sakura")
    csv_file = tmp_path / "usage.txt"
    csv_file.write_bytes(
        b"\xff\xfe"
        + (
            "customer_id\tuser_id\tevent\toccurred_at\tquantity\tevent_key\r\n"
            f"sakura\t山田太郎\t請求書スキャン\t{DAY}T09:00:00+09:00\t2.5\tk1\r\n"
            f"sakura\t佐藤花子\tログイン, 初回\t{DAY}T10:00:00+09:00\t\tk2\r\n"
        ).encode("utf-16-le")
    )

    report = import_usage_csv(database, csv_file)

    assert (report.stored, report.rejected) == (2, [])
    events = stored_events(database, "sakura")
    assert [(e.user_id, e.event, e.quantity) for e in events] == [
        ("山田太郎", "請求書スキャン", 2.5),
        ("佐藤花子", "ログイン, 初回", 1.0),
    ]


def test_a_large_unicode_text_file_is_told_from_a_sample_ending_inside_a_character(
    sqlite_database: Database, tmp_path: Path
) -> None:
    add_customer(sqlite_database, "sakura")
    header = "customer_id\tuser_id\tevent\toccurred_at\r\n"
    row = f"sakura\t山田\tログイン\t{DAY}T09:00:00+09:00\r\n"
    rows = (SNIFF_BYTES // 2 - 100 - len(header)) // len(row)
    # Pad so that an emoji (a surrogate pair, 4 bytes) straddles the sniffed first MB.
    pad = SNIFF_BYTES // 2 - 2 - len(header) - rows * len(row) - len("sakura\t")
    text = header + row * rows + f"sakura\t{'x' * pad}😀\tログイン\t{DAY}T09:00:00Z\r\n"
    data = b"\xff\xfe" + text.encode("utf-16-le")
    assert data[SNIFF_BYTES - 2 : SNIFF_BYTES + 2].decode("utf-16-le") == "😀"
    csv_file = tmp_path / "usage.txt"
    csv_file.write_bytes(data)

    report = import_usage_csv(sqlite_database, csv_file)

    assert (report.stored, report.rejected) == (rows + 1, [])


def test_a_file_that_is_not_text_is_refused_in_one_sentence(
    sqlite_database: Database, tmp_path: Path
) -> None:
    csv_file = tmp_path / "usage.csv"
    csv_file.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\xa3\xff\x9c\x00binary")

    report = import_usage_csv(sqlite_database, csv_file)

    assert report.stored == 0
    [(line, reason)] = report.rejected
    assert line == 1 and "not text" in reason and "CSV UTF-8" in reason


def test_a_cell_past_the_csv_field_limit_is_one_line_exit_2_and_stores_nothing(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_customer(database, "sakura")
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    good = "".join(f"sakura,山田{n},ログイン,{DAY}T09:00:00+09:00,,k{n}\r\n" for n in range(3000))
    csv_file = tmp_path / "usage.csv"
    csv_file.write_bytes(
        (
            "customer_id,user_id,event,occurred_at,quantity,event_key\r\n"
            + good
            + f"sakura,佐藤,{'x' * 200_000},{DAY}T09:00:00+09:00,,big\r\n"
        ).encode("cp932")
    )

    assert main(["usage", "import", str(csv_file)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"{csv_file}: line 3002: a cell is longer than 131,072 characters; nothing stored\n"
    )
    assert "0 stored" in captured.out
    assert stored_events(database, "sakura") == []


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["nosuch", "--user", "u-17"], "usage not recorded: unknown customer"),
        (["sakura", "--user", "u" * 100_000], "user_id is longer than"),
        (["sakura", "--user", "u\x00-17"], "user_id contains a NUL character"),
        (["sakura", "--user", "u-17", "--quantity", "inf"], "quantity must be a positive number"),
    ],
)
def test_usage_record_checks_what_a_usage_import_checks(
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    said: str,
) -> None:
    # It had stored every one of these.
    add_customer(database, "sakura")
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))

    assert main(["usage", "record", *argv, "--event", "document_scanned"]) == 2
    captured = capsys.readouterr()
    assert said in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == ""
    assert stored_events(database, "sakura") == []
    assert main(["usage", "record", "sakura", "--user", "u-17", "--event", "scan"]) == 0
    assert len(stored_events(database, "sakura")) == 1


def test_a_usage_row_outside_the_plausible_window_or_past_the_quantity_bound_is_rejected(
    database: Database,
) -> None:
    # The bounds a Segment call meets (records/usage/store.py), for the CSV's rows too.
    add_customer(database, "acme")
    now = datetime.now(UTC)
    rows = [
        ("u1", "0001-01-01T00:00:00Z", ""),
        ("u2", (now + timedelta(days=400)).isoformat(), ""),
        ("u3", now.isoformat(), "1e308"),
        ("u4", (now - timedelta(days=4 * 366)).isoformat(), "3"),
    ]
    text = "customer_id,user_id,event,occurred_at,quantity\n" + "".join(
        f"acme,{user},login,{at},{quantity}\n" for user, at, quantity in rows
    )
    report = ingest_usage_csv(database, io.BytesIO(text.encode()))

    reasons = [item.reason for item in report.rejected]
    assert [reason.split(":")[0] for reason in reasons] == [
        "occurred_at is out of range",
        "occurred_at is out of range",
        "quantity must be at most 1,000,000,000, got '1e308'",
    ]
    assert "is not within 5 years before and 1 day after it arrived" in reasons[1]
    assert [event.user_id for event in stored_events(database, "acme")] == ["u4"]


def test_a_semicolon_file_s_decimal_comma_is_read_and_an_ambiguous_quantity_refused(
    database: Database, tmp_path: Path
) -> None:
    # As Excel saves CSV where the decimal mark is a comma.
    add_customer(database, "acme")
    at = WEEK_AGO.isoformat()
    csv_file = tmp_path / "usage.csv"
    csv_file.write_text(
        "customer_id;user_id;event;occurred_at;quantity\n"
        f"acme;u1;pages;{at};1,5\n"
        f"acme;u2;pages;{at};1.234,5\n"
        f"acme;u3;pages;{at};1.234\n"
        f"acme;u4;pages;{at};2.5\n",
        encoding="utf-8",
    )

    report = import_usage_csv(database, csv_file)

    assert report.rejected == [
        (
            4,
            "quantity is ambiguous: '1.234' reads as 1.234 or as 1234; write it without a "
            "thousands separator, or as 1.2340 if it is a fraction",
        )
    ]
    assert [(e.user_id, e.quantity) for e in stored_events(database, "acme")] == [
        ("u1", 1.5),
        ("u2", 1234.5),
        ("u4", 2.5),
    ]


@pytest.mark.parametrize(
    ("delimiter", "cell", "read"),
    [
        (";", "1,5", 1.5),
        (";", "1.234,5", 1234.5),
        (";", "1.234.567", 1234567),  # a decimal mark comes once
        (";", "0,125", 0.125),  # no thousands group starts with 0
        (";", "1,2345", 1.2345),
        (";", "1.5", 1.5),  # pandas writes points between semicolons
        ("\t", "1,5", 1.5),
        ("\t", "1,234.5", 1234.5),
        (",", "1,234", 1234),  # quoted in the file; a comma file's decimal mark is a point
        (",", "1,234.5", 1234.5),
        (",", "1.234", 1.234),
    ],
)
def test_a_quantity_reads_by_the_decimal_mark_its_file_s_delimiter_allows(
    delimiter: str, cell: str, read: float
) -> None:
    assert csv_number(cell, delimiter) == read


@pytest.mark.parametrize(
    ("delimiter", "cell", "reason"),
    [
        (";", "1.234", "is ambiguous: '1.234' reads as 1.234 or as 1234; "),
        ("\t", "12,345", "is ambiguous: '12,345' reads as 12.345 or as 12345; "),
        (",", "1,5", "is not a number: '1,5' (in a comma-delimited file the decimal mark is a "),
        (";", "1,2,3", "is not a number: '1,2,3'"),
    ],
)
def test_a_quantity_that_reads_two_ways_or_none_is_refused_quoting_it(
    delimiter: str, cell: str, reason: str
) -> None:
    with pytest.raises(ValueError) as refused:
        csv_number(cell, delimiter)
    assert str(refused.value).startswith(reason)
