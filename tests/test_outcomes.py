"""Outcomes from outside: the CSV imports read Excel's files and report every bad row by
line, a re-import changes nothing, the REST doors refuse in one sentence, and the
analysis finds what was planted, concludes nothing where nothing was, and says when too
few customers leave it unable to conclude."""

from __future__ import annotations

import csv
import io
import math
from datetime import date, timedelta
from pathlib import Path

import pytest

from analytics.outcomes import (
    MIN_GROUP,
    CustomerFacts,
    Proportion,
    Verdict,
    analyse,
    mean,
    mean_difference,
    proportion,
    rate_difference,
)
from api.dashboard.outcomes import conclusions
from cli.main import main
from models.onboarding import Stage
from records.database import Database
from records.outcomes import customer_health, customer_outcomes, outcome_facts
from testkit.factories import make_handoff, store_customer
from testkit.outcomes import NO_RELATIONSHIP, SEATS_DRIVE_OUTCOMES, write_outcome_cohort
from tests.support.api_harness import CSM, OTHER_CSM, ApiHarness

AS_OF = date(2026, 12, 1)
HEALTH_HEADER = "customer_id,scored_on,score,source\r\n"


def _use(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))


def _customers(database: Database, *ids: str, csm: str = CSM) -> None:
    for customer_id in ids:
        store_customer(database, make_handoff(customer_id=customer_id, csm=csm))


# CSV imports


@pytest.mark.parametrize(
    ("note", "stored"),
    [
        ("顧客満足度調査", "顧客満足度調査"),
        # Half-width kana are stored full-width, as every imported cell is (NFKC).
        ("ｶﾌﾞｼｷｶﾞｲｼｬ 山田商事", "カブシキガイシャ 山田商事"),
    ],
    ids=["kanji", "half-width-kana"],
)
def test_a_short_shift_jis_file_is_read_as_japanese_not_korean(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    note: str,
    stored: str,
) -> None:
    # The detector alone told these as cp949 and stored Hangul in their place.
    _customers(database, "fuji")
    _use(database, monkeypatch)
    path = tmp_path / "outcomes.csv"
    path.write_bytes(
        f"customer_id,kind,occurred_on,note\r\nfuji,renewed,2026/3/1,{note}\r\n".encode("cp932")
    )

    assert main(["outcomes", "import", str(path)]) == 0
    [renewal] = customer_outcomes(database, "fuji")
    assert renewal.note == stored


def test_a_shift_jis_outcomes_file_is_stored_once_and_importing_it_again_changes_nothing(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _customers(database, "sakura", "fuji")
    _use(database, monkeypatch)
    # As Japanese Excel saves it: cp932, slashes in dates, full-width digits and letters.
    text = (
        "customer_id,kind,occurred_on,arr,currency,source,note\r\n"
        "sakura,renewed,2026/3/1,１２０００００,ｊｐｙ,salesforce,更新しました\r\n"
        "fuji,churned,2026-04-30,,,salesforce,予算削減のため解約\r\n"
    )
    path = tmp_path / "outcomes.csv"
    path.write_bytes(text.encode("cp932"))

    assert main(["outcomes", "import", str(path), "--json"]) == 0
    assert '"stored": 2' in capsys.readouterr().out
    [renewal] = customer_outcomes(database, "sakura")
    assert (renewal.kind, renewal.occurred_on, renewal.arr, renewal.currency) == (
        "renewed",
        date(2026, 3, 1),
        1_200_000,
        "JPY",
    )
    assert renewal.note == "更新しました"
    [churn] = customer_outcomes(database, "fuji")
    assert (churn.kind, churn.note) == ("churned", "予算削減のため解約")

    assert main(["outcomes", "import", str(path)]) == 0
    assert "0 outcome event(s) stored, 2 already stored" in capsys.readouterr().out
    assert len(customer_outcomes(database, "sakura")) == 1
    assert len(customer_outcomes(database, "fuji")) == 1


def test_a_note_written_on_several_lines_in_excel_is_kept_as_written(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _customers(database, "sakura", "fuji")
    _use(database, monkeypatch)
    # Excel's "CSV UTF-8": CRLF between rows, Alt+Enter a bare LF inside a quoted cell.
    # U+2028 and U+0085 are text inside a cell, not line breaks.
    text = (
        "customer_id,kind,occurred_on,note\r\n"
        'sakura,renewed,2026-03-01,"更新しました\n担当: 山田\n次回は来年"\r\n'
        'fuji,renewed,2026-03-01,"a\u2028b\u0085c"\r\n'
        "fuji,renewd,2026-04-01,\r\n"
    )
    path = tmp_path / "outcomes.csv"
    path.write_bytes(text.encode("utf-8-sig"))

    assert main(["outcomes", "import", str(path), "--skip-invalid"]) == 2
    # Line numbers count the file's lines: the note took three.
    assert "line 6: kind:" in capsys.readouterr().err
    [renewal] = customer_outcomes(database, "sakura")
    assert renewal.note == "更新しました\n担当: 山田\n次回は来年"
    [other] = customer_outcomes(database, "fuji")
    assert other.note == "a\u2028b\u0085c"


def _excel_unicode_text(text: str) -> bytes:
    """What Excel's "Unicode Text (*.txt)" writes: UTF-16 LE after its BOM."""
    return b"\xff\xfe" + text.encode("utf-16-le")


def test_excel_unicode_text_and_semicolon_files_are_imported(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _customers(database, "sakura", "fuji")
    _use(database, monkeypatch)
    outcomes = tmp_path / "outcomes.txt"
    outcomes.write_bytes(
        _excel_unicode_text(
            "customer_id\tkind\toccurred_on\tarr\tcurrency\tnote\r\n"
            "sakura\trenewed\t2026/3/1\t1200000\tJPY\t更新しました, 担当: 山田\r\n"
            'fuji\tchurned\t2026/4/30\t\t\t"予算削減\tのため"\r\n'
        )
    )
    health = tmp_path / "health.txt"
    health.write_bytes(
        _excel_unicode_text(
            "customer_id\tscored_on\tscore\tsource\r\nsakura\t2026/3/1\t80\tgainsight\r\n"
        )
    )
    # Excel's "CSV UTF-8" where the decimal mark is a comma: semicolons between cells.
    semicolons = tmp_path / "health-semicolons.csv"
    semicolons.write_bytes(
        (HEALTH_HEADER.replace(",", ";") + "fuji;2026/3/1;55;顧客満足度調査\r\n").encode(
            "utf-8-sig"
        )
    )

    assert main(["outcomes", "import", str(outcomes)]) == 0
    assert main(["health", "import", str(health)]) == 0
    assert main(["health", "import", str(semicolons)]) == 0
    capsys.readouterr()
    [renewal] = customer_outcomes(database, "sakura")
    assert (renewal.arr, renewal.currency, renewal.note) == (
        1_200_000,
        "JPY",
        "更新しました, 担当: 山田",
    )
    [churn] = customer_outcomes(database, "fuji")
    assert (churn.kind, churn.note) == ("churned", "予算削減\tのため")
    assert [(s.scored_on, s.score) for s in customer_health(database, "sakura")] == [
        (date(2026, 3, 1), 80.0)
    ]
    assert [(s.score, s.source) for s in customer_health(database, "fuji")] == [
        (55.0, "顧客満足度調査")
    ]


def test_a_misspelt_column_is_refused_with_the_closest_name_and_nothing_is_stored(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _customers(database, "sakura")
    _use(database, monkeypatch)
    path = tmp_path / "health.csv"
    path.write_text("custmer_id,scored_on,score,source\r\nsakura,2026-03-01,80,gainsight\r\n")

    assert main(["health", "import", str(path)]) == 2
    error = capsys.readouterr().err
    assert "unknown column(s) 'custmer_id' (did you mean 'customer_id'?)" in error
    assert customer_health(database, "sakura") == []


def test_errors_echo_only_the_start_of_what_the_file_holds(
    sqlite_database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _customers(sqlite_database, "sakura")
    _use(sqlite_database, monkeypatch)
    columns = tmp_path / "columns.csv"
    columns.write_text(
        "customer_id,kind,occurred_on," + ",".join(f"col{n}" for n in range(10_000)) + "\r\n"
    )
    kind = tmp_path / "kind.csv"
    kind.write_text(f"customer_id,kind,occurred_on\r\nsakura,{'r' * 100_000},2026-03-01\r\n")

    assert main(["outcomes", "import", str(columns)]) == 2
    error = capsys.readouterr().err
    assert "'col4', and 9,995 more; the columns are" in error and len(error) < 500
    assert main(["outcomes", "import", str(kind)]) == 2
    error = capsys.readouterr().err
    assert f"got '{'r' * 58}…" in error and len(error) < 500


def test_every_bad_row_is_reported_by_line_and_one_stores_none_unless_skipped(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _customers(database, "sakura")
    _use(database, monkeypatch)
    path = tmp_path / "health.csv"
    path.write_bytes(
        (
            HEALTH_HEADER
            + "sakura,2026-03-01,80,gainsight\r\n"  # line 2: good
            + "sakura,2026-04-01,150,gainsight\r\n"  # line 3: score out of range
            + "ghost,2026-03-01,50,gainsight\r\n"  # line 4: no such customer
            + "sakura,2026-13-01,50,gainsight\r\n"  # line 5: no 13th month
            + "sakura,2026-03-01,70,gainsight\r\n"  # line 6: line 2's key again
        ).encode("utf-8-sig")
    )

    assert main(["health", "import", str(path)]) == 2
    error = capsys.readouterr().err
    assert "nothing stored" in error
    for expected in (
        "line 3: score: Input should be less than or equal to 100",
        "line 4: unknown customer 'ghost'",
        "line 5: scored_on: '2026-13-01' is not a date",
        "line 6: repeats line 2",
    ):
        assert expected in error, error
    assert "line 2:" not in error
    assert customer_health(database, "sakura") == []

    assert main(["health", "import", str(path), "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert "1 health score(s) valid, 4 refused; nothing stored" in captured.out
    assert customer_health(database, "sakura") == []

    assert main(["health", "import", str(path), "--skip-invalid"]) == 2
    captured = capsys.readouterr()
    assert "1 health score(s) stored, 0 already stored, 4 refused" in captured.out
    assert captured.err.count("liftoff: not stored: line") == 4
    assert [(s.scored_on, s.score) for s in customer_health(database, "sakura")] == [
        (date(2026, 3, 1), 80.0)
    ]


# REST


async def test_rest_writes_are_for_leads_and_ops_and_refuse_unknown_customers_by_name(
    api: ApiHarness,
) -> None:
    _customers(api.database, "sakura")
    score = {"customer_id": "sakura", "scored_on": "2026-03-01", "score": 80, "source": "gs"}
    async with api.client() as anonymous:
        for path in ("/api/health-scores", "/api/outcomes"):
            assert (await anonymous.post(path, json=score)).status_code == 401
    async with api.as_csm() as csm, api.as_lead() as lead:
        refused = await csm.post("/api/health-scores", json=score)
        assert refused.status_code == 403
        assert refused.json()["detail"] == "csm tokens cannot do this (allowed: lead, ops)"

        ghost = {**score, "customer_id": "ghost"}
        unknown = await lead.post("/api/health-scores", json=[score, ghost])
        assert unknown.status_code == 422
        assert unknown.json()["detail"] == "unknown customer id(s) 'ghost': nothing stored"
        assert customer_health(api.database, "sakura") == []

        first = await lead.post("/api/health-scores", json=score)
        again = await lead.post("/api/health-scores", json=[score])
        assert first.json() == {"stored": 1, "already_stored": 0}
        assert again.json() == {"stored": 0, "already_stored": 1}

        too_many = await lead.post("/api/health-scores", json=[score] * 1001)
        assert too_many.status_code == 422

        churn = {"customer_id": "sakura", "kind": "churned", "occurred_on": "2026-05-01"}
        no_currency = await lead.post("/api/outcomes", json={**churn, "arr": 1000})
        assert no_currency.status_code == 422
        assert "arr needs its currency" in no_currency.text
        stored = await lead.post("/api/outcomes", json=churn)
        assert stored.json() == {"stored": 1, "already_stored": 0}


async def test_a_csm_reads_the_outcomes_of_their_own_customers_only(api: ApiHarness) -> None:
    _customers(api.database, "sakura", csm=CSM)
    _customers(api.database, "fuji", csm=OTHER_CSM)
    async with api.as_lead() as lead:
        for customer_id in ("sakura", "fuji"):
            row = {"customer_id": customer_id, "kind": "renewed", "occurred_on": "2026-05-01"}
            assert (await lead.post("/api/outcomes", json=row)).status_code == 200
    async with api.as_csm(CSM) as csm:
        own = await csm.get("/api/outcomes", params={"customer_id": "sakura"})
        assert [(e["kind"], e["occurred_on"]) for e in own.json()] == [("renewed", "2026-05-01")]
        other = await csm.get("/api/outcomes", params={"customer_id": "fuji"})
        assert other.status_code == 404
        assert "fuji" in other.json()["detail"]
        health = await csm.get("/api/health-scores", params={"customer_id": "nobody"})
        assert health.status_code == 404
        assert health.json()["detail"] == "unknown customer 'nobody'"
        analysis = await csm.get("/api/outcomes/analysis")
        assert analysis.status_code == 403


async def test_leads_read_the_analysis_as_json_csv_and_a_page_in_both_languages(
    api: ApiHarness,
) -> None:
    write_outcome_cohort(api.database, SEATS_DRIVE_OUTCOMES, count=120, as_of=AS_OF, version="3")
    async with api.as_lead() as lead:
        found = (await lead.get("/api/outcomes/analysis", params={"playbook_version": "3"})).json()
        table = await lead.get("/api/outcomes/analysis.csv", params={"playbook_version": "3"})
        page_en = await lead.get("/cohort/outcomes", params={"playbook_version": "3"})
        page_ja = await lead.get("/cohort/outcomes", params={"playbook_version": "3", "lang": "ja"})
    assert found["conclusion"]["en"].startswith(
        "customers onboarded under playbook version 3 churned"
    )
    assert "解約率" in found["conclusion"]["ja"]
    assert found["analysis"]["customers"] == 120
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert table.headers["content-type"].startswith("text/csv")
    headline = next(
        r
        for r in rows
        if (r["months"], r["subject"], r["measure"])
        == ("12", "failed_vs_onboarded", "churn_difference")
    )
    assert headline["verdict"] == "conclusive" and float(headline["value"]) > 0
    assert found["conclusion"]["en"] in page_en.text.replace("&#39;", "'")
    assert found["conclusion"]["ja"] in page_ja.text
    assert "<svg" in page_en.text and 'data-outcome="failed"' in page_en.text
    async with api.as_csm() as csm:
        assert (await csm.get("/cohort/outcomes")).status_code == 403


# The analysis


def test_the_analysis_finds_that_failed_customers_churn_more_and_are_less_healthy(
    database: Database,
) -> None:
    write_outcome_cohort(database, SEATS_DRIVE_OUTCOMES, count=200, as_of=AS_OF)

    analysis = analyse(outcome_facts(database, playbook_version="1"), as_of=AS_OF)

    year = analysis.horizon(12)
    groups = {g.outcome: g for g in year.groups}
    assert sum(g.ended for g in groups.values()) == 200
    # Planted: onboarded 10% churn and health 75; failed mostly 40% and 40.
    assert groups[Stage.ONBOARDED].churn.rate is not None
    assert groups[Stage.FAILED].churn.rate is not None
    assert 0.03 < groups[Stage.ONBOARDED].churn.rate < 0.2
    assert 0.25 < groups[Stage.FAILED].churn.rate < 0.45
    headline = analysis.headline
    assert headline is not None
    assert headline.churn_difference.verdict is Verdict.CONCLUSIVE
    assert (headline.churn_difference.low or 0) > 0
    assert headline.health_ratio.verdict is Verdict.CONCLUSIVE
    assert 1.3 < (headline.health_ratio.value or 0) < 2.1
    # The seats criterion drives both; meeting it at completion separates them.
    seats = next(k for k in year.criteria if k.criterion.metric == "active_seat_ratio")
    assert seats.criterion.weeks == 2 and seats.criterion.threshold == 0.6
    assert seats.churn_lift.verdict is Verdict.CONCLUSIVE and (seats.churn_lift.low or 0) > 1
    assert seats.health_lift.verdict is Verdict.CONCLUSIVE
    # Every customer agreed a goal: nothing to compare it with.
    goals = next(k for k in year.criteria if k.criterion.metric == "goals_agreed")
    assert goals.churn_not_met.n == 0 and goals.churn_lift.verdict is Verdict.TOO_FEW
    said = conclusions(analysis)
    assert "churned" in said["en"] and "less than failed ones" in said["en"]
    assert said["en"].count(": conclusive") == 2
    assert said["ja"].count("結論できる") == 2


def test_where_nothing_was_planted_nothing_is_concluded(sqlite_database: Database) -> None:
    write_outcome_cohort(sqlite_database, NO_RELATIONSHIP, count=200, as_of=AS_OF)

    analysis = analyse(outcome_facts(sqlite_database, playbook_version="1"), as_of=AS_OF)

    for horizon in analysis.horizons:
        for compared in horizon.comparisons:
            assert compared.churn_difference.verdict is Verdict.NOT_CONCLUSIVE
            assert compared.health_ratio.verdict is Verdict.NOT_CONCLUSIVE
        for criterion in horizon.criteria:
            for estimate in (criterion.churn_lift, criterion.health_lift):
                assert estimate.verdict is not Verdict.CONCLUSIVE, criterion.criterion.label
    said = conclusions(analysis)
    assert said["en"].count(": not conclusive") == 2
    assert said["ja"].count("結論できない") == 2


def test_intervals_match_a_case_computed_by_hand() -> None:
    # Wilson, 3 of 10: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.959964.
    three = proportion(3, 10)
    assert (three.rate, round(three.low or 0, 4), round(three.high or 0, 4)) == (
        0.3,
        0.1078,
        0.6032,
    )
    one = proportion(1, 10)
    assert (round(one.low or 0, 4), round(one.high or 0, 4)) == (0.0179, 0.4042)
    # Newcomb: d ∓ sqrt((p1 - l1)² + (u2 - p2)²) and d + sqrt((u1 - p1)² + (p2 - l2)²).
    difference = rate_difference(three, one)
    low = 0.2 - math.sqrt((0.3 - 0.107791) ** 2 + (0.404165 - 0.1) ** 2)
    high = 0.2 + math.sqrt((0.603222 - 0.3) ** 2 + (0.1 - 0.017876) ** 2)
    assert difference.value == pytest.approx(0.2)
    assert difference.low == pytest.approx(low, abs=1e-4)
    assert difference.high == pytest.approx(high, abs=1e-4)
    # t interval of 70, 80, 75: 75 ± t(0.975, 2) · 5/√3, t = 4.302653.
    health = mean([70, 80, 75])
    assert health.low == pytest.approx(75 - 4.302653 * 5 / math.sqrt(3), abs=1e-4)
    assert health.high == pytest.approx(75 + 4.302653 * 5 / math.sqrt(3), abs=1e-4)
    # Welch, 70 80 75 against 40 50 45: 30 ± t(0.975, 4) · sqrt(25/3 + 25/3), t = 2.776445.
    welch = mean_difference([70, 80, 75], [40, 50, 45])
    assert welch.value == pytest.approx(30)
    assert welch.low == pytest.approx(30 - 2.776445 * math.sqrt(50 / 3), abs=1e-4)
    # Ten customers a group is the least the verdict rests on.
    assert difference.verdict is Verdict.NOT_CONCLUSIVE
    assert rate_difference(Proportion(3, 9, 3 / 9, 0, 1), one).verdict is Verdict.TOO_FEW


def _ended(
    customer_id: str,
    outcome: Stage,
    ended_on: date,
    *,
    churned_on: tuple[date, ...] = (),
    health: tuple[tuple[date, float], ...] = (),
) -> CustomerFacts:
    return CustomerFacts(customer_id, outcome, ended_on, churned_on=churned_on, health=health)


def test_too_few_customers_are_named_and_no_conclusion_is_drawn() -> None:
    long_ago = AS_OF - timedelta(days=500)
    customers = [
        *(
            _ended(
                f"on-{n}",
                Stage.ONBOARDED,
                long_ago,
                health=((long_ago + timedelta(days=365), 80.0),),
            )
            for n in range(5)
        ),
        *(
            _ended(f"f-{n}", Stage.FAILED, long_ago, churned_on=(long_ago + timedelta(days=30),))
            for n in range(4)
        ),
        # Ended three months ago: a year on is not known yet, and it is not counted.
        _ended("recent", Stage.FAILED, AS_OF - timedelta(days=90)),
    ]

    analysis = analyse(customers, as_of=AS_OF, playbook_version="2")

    failed = next(g for g in analysis.horizon(12).groups if g.outcome is Stage.FAILED)
    assert (failed.ended, failed.churn.count, failed.churn.n, failed.not_yet) == (5, 4, 4, 1)
    headline = analysis.headline
    assert headline is not None
    assert headline.churn_difference.verdict is Verdict.TOO_FEW
    assert headline.health_ratio.verdict is Verdict.TOO_FEW
    said = conclusions(analysis)
    assert said["en"] == (
        "churn within 12 months under playbook version 2: too few customers to conclude "
        f"(5 onboarded and 4 failed observed; at least {MIN_GROUP} of each needed); "
        "health 12 months on: too few scores to conclude "
        f"(5 onboarded and 0 failed scored; at least {MIN_GROUP} of each needed)"
    )
    assert "件数不足で結論できません" in said["ja"]


def test_analysis_reads_only_the_asked_version_and_ended_customers(database: Database) -> None:
    write_outcome_cohort(database, NO_RELATIONSHIP, count=12, as_of=AS_OF, version="1", prefix="a")
    write_outcome_cohort(database, NO_RELATIONSHIP, count=7, as_of=AS_OF, version="2", prefix="b")
    _customers(database, "still-onboarding")

    assert len(outcome_facts(database, playbook_version="1")) == 12
    assert len(outcome_facts(database, playbook_version="2")) == 7
    every = outcome_facts(database, playbook_version=None)
    assert len(every) == 19
    measured = [f for f in every if f.outcome is not Stage.CANCELLED]
    assert measured and all(len(f.criteria_met) == 4 for f in measured)
    assert all(f.ended_on < AS_OF - timedelta(days=390) for f in every)
