"""The CLI refuses bad input with one line and exit code 2, before reaching Temporal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import starter
from models.handoff import Role
from settings import REPO

DEMO_PLAYBOOK = str(REPO / "playbooks" / "demo.toml")
VALID_START = [
    "start",
    "--customer-id",
    "acme",
    "--name",
    "Acme Logistics",
    "--csm",
    "csm@liftoff.example",
    "--leader",
    "leader@liftoff.example",
    "--seats",
    "10",
    "--playbook",
    DEMO_PLAYBOOK,
]
CSV_HEADER = (
    "customer_id,name,csm,cs_leader,contacts,seats,quota,time_zone,locale,purposes,"
    "trial_used,already_using,notes\n"
)
GOOD_ROW = (
    "acme,Acme,csm@x.example,lead@x.example,"
    '"administrator:Omar Reyes <omar@acme.example>;end_user:Lin <lin@acme.example>",'
    "10,1000,Asia/Tokyo,ja,A;B,true,false,from sales\n"
)


@pytest.fixture(autouse=True)
def no_temporal(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every test here must stop before connecting: reaching Temporal means input got through."""
    connects: list[str] = []

    async def refuse(settings: Any) -> Any:
        connects.append(settings.temporal_address)
        raise AssertionError("the CLI tried to reach Temporal with input it should refuse")

    monkeypatch.setattr(starter, "connect_client", refuse)
    return connects


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = starter.main(list(argv))
    except SystemExit as exit:  # argparse refusals
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(result: tuple[int, str, str], *fragments: str) -> str:
    code, out, err = result
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err
    return err


def test_malformed_date_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    err = assert_refused(run(capsys, "kickoff", "acme", "--held-on", "2026-13-01"), "held_on")
    assert "kickoff_held" not in err  # the user never typed the event's tag


def test_unknown_role_names_the_allowed_roles(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(
        run(capsys, *VALID_START, "--contact", "boss:Taro Yamada <taro@acme.example>"),
        "bad role 'boss'",
        *(role.value for role in Role),
    )


@pytest.mark.parametrize(
    "spec", ["Taro Yamada taro@acme.example", "administrator:Taro <not-an-email>", "end_user:<>"]
)
def test_bad_contact_spec_is_refused(capsys: pytest.CaptureFixture[str], spec: str) -> None:
    assert_refused(run(capsys, *VALID_START, "--contact", spec), "contact")


def test_handoff_problems_are_all_reported(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*VALID_START, "--seats", "0", "--locale", "fr", "--time-zone", "Mars/Olympus"]
    assert_refused(run(capsys, *argv), "seats_contracted", "locale", "unknown time zone")


def test_unknown_purpose_is_refused_with_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(run(capsys, *VALID_START, "--purpose", "Z"), "unknown purpose", "A, B, C")


def test_start_without_required_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(run(capsys, "start", "--name", "Acme"), "--customer-id", "--csm", "--seats")


def test_argparse_errors_are_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(run(capsys, "meeting", "acme", "--kind", "lunch", "--request"), "--kind")
    assert_refused(run(capsys, "review", "acme", "--held-on", "2026-01-01"), "--confirmed")
    assert_refused(run(capsys, "frobnicate"), "frobnicate")


def test_training_needs_a_date_or_a_skip_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(run(capsys, "training", "acme"), "--held-on", "--skip")
    assert_refused(run(capsys, "training", "acme", "--skip"), "--reason")


def test_nps_must_be_email_and_score(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["review", "acme", "--held-on", "2026-01-10", "--confirmed"]
    assert_refused(run(capsys, *base, "--nps", "dana@acme.example=11"), "dana@acme.example=11")
    assert_refused(run(capsys, *base, "--nps", "dana@acme.example"), "email=score")


def test_usage_time_must_be_iso(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["usage", "record", "acme", "--user", "u1", "--event", "login", "--at", "yesterday"]
    assert_refused(run(capsys, *argv), "ISO 8601")


def test_csv_reports_every_bad_row_by_line_and_starts_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_temporal: list[str]
) -> None:
    rows = (
        GOOD_ROW
        + "beta,Beta,csm@x.example,lead@x.example,,ten,,,,,,,\n"
        + 'gamma,Gamma,csm@x.example,lead@x.example,"chief:G <g@gamma.example>",3,,,,,,,\n'
        + "acme,Acme again,csm@x.example,lead@x.example,,5,,,,,,,\n"
        + "delta,Delta,csm@x.example,lead@x.example,,5,,,,Z,maybe,,\n"
    )
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text(CSV_HEADER + rows, encoding="utf-8")

    err = assert_refused(
        run(capsys, "start", "--csv", str(csv_file), "--playbook", DEMO_PLAYBOOK),
        "nothing started",
        "line 3: seats_contracted",
        "line 4: bad role 'chief'",
        "line 5: customer 'acme' repeats line 2",
        "line 6: trial_used",
    )
    assert "line 2" not in err.replace("repeats line 2", "")
    assert no_temporal == []


def test_csv_missing_columns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text("customer_id,name\nacme,Acme\n", encoding="utf-8")
    assert_refused(
        run(capsys, "start", "--csv", str(csv_file)), "missing column(s) csm, cs_leader, seats"
    )


def test_csv_rows_parse_into_handoffs(tmp_path: Path) -> None:
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text(CSV_HEADER + GOOD_ROW, encoding="utf-8")
    playbook = starter.read_playbook(Path(DEMO_PLAYBOOK))

    [handoff] = starter.read_handoff_csv(csv_file, playbook)

    assert handoff.customer_id == "acme"
    assert [c.role for c in handoff.contacts] == [Role.ADMINISTRATOR, Role.END_USER]
    assert handoff.purposes == ["A", "B"]
    assert (handoff.locale, handoff.time_zone, handoff.trial_used) == ("ja", "Asia/Tokyo", True)
    assert handoff.quota_contracted == 1000


def test_playbook_validate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "playbook", "validate", DEMO_PLAYBOOK)
    assert code == 0
    assert out.startswith("ok: demo-compressed demo.1, 6 purposes")

    broken = tmp_path / "broken.toml"
    text = (REPO / "playbooks" / "demo.toml").read_text(encoding="utf-8")
    broken.write_text(text.replace('deadline = "180s"', 'deadline = "60s"'), encoding="utf-8")
    assert_refused(run(capsys, "playbook", "validate", str(broken)), "momentum_after")
    assert_refused(run(capsys, "playbook", "validate", str(tmp_path / "none.toml")), "no such")


def test_events_built_from_arguments() -> None:
    args = starter.build_parser().parse_args(
        [
            "review",
            "acme",
            "--held-on",
            "2026-01-10",
            "--not-confirmed",
            "--feature-request",
            "CSV export",
            "--nps",
            "Dana@Acme.example=7",
        ]
    )
    event = starter.event_from_args(args)
    assert event.kind == "completion_review_held"
    assert event.success_confirmed is False
    assert event.feature_requests == ["CSV export"]
    assert [(a.email, a.score) for a in event.nps] == [("dana@acme.example", 7)]
