"""The CLI refuses bad input with one line and exit code 2, before reaching Temporal."""

from __future__ import annotations

import email
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from cli import connections, handoff_csv, inputs
from cli.main import main
from cli.parser import build_parser
from client.onboarding import StartResult
from models.events import EVENT_MODELS
from models.handoff import Role
from models.onboarding import OnboardingState, OnboardingStatus
from models.playbook import Touchpoint
from models.tables import EmailEvent, EmailLedgerEntry
from records.database import Database
from records.playbooks import load_playbook
from records.reports import customer_emails
from settings import REPO
from starter import READER_LEFT_EXIT

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

    monkeypatch.setattr(connections, "connect_client", refuse)
    return connects


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
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


def test_every_event_kind_has_a_recording_command_that_sends_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sent = [kind for kinds in inputs.COMMAND_KINDS.values() for kind in kinds]
    assert sorted(sent) == sorted(EVENT_MODELS)
    for command in inputs.COMMAND_KINDS:
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([command, "--help"])
        assert exit_info.value.code == 0, command


def test_a_misspelt_timeline_kind_lists_the_kinds_as_they_are_typed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["timeline", "acme", "--kind", "weekly_measurment"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "'weekly_measurement'" in error and "'kickoff_held'" in error
    assert "TimelineKind" not in error
    kinds = build_parser().parse_args(["timeline", "acme", "--kind", "weekly_measurement"]).kind
    assert kinds == ["weekly_measurement"]


def test_pause_needs_one_customer_or_a_playbook_version_and_a_real_date(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert_refused(run(capsys, "pause", "--reason", "x"), "CUSTOMER or --playbook-version")
    assert_refused(run(capsys, "resume", "acme", "--playbook-version", "1"), "not both")
    assert_refused(run(capsys, "pause", "acme"), "--reason")
    assert_refused(
        run(capsys, "pause", "acme", "--reason", "x", "--until", "2026-02-30"), "resume_on"
    )
    long_reason = "x" * 501
    assert_refused(run(capsys, "pause", "acme", "--reason", long_reason), "reason")


def test_an_unknown_stage_is_refused_naming_the_stages(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(run(capsys, "list", "--stage", "bogus"), "bogus", "kickoff", "completion_review")


def test_an_unknown_timeline_kind_is_refused_naming_the_kinds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert_refused(run(capsys, "timeline", "acme", "--kind", "bogus"), "bogus", "transition")


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


def test_an_unknown_country_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert_refused(run(capsys, *VALID_START, "--country", "XX"), "country", "unknown country 'XX'")
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text(
        CSV_HEADER.replace("notes\n", "notes,country\n")
        + GOOD_ROW.replace("from sales\n", "from sales,Japan\n"),
        encoding="utf-8",
    )
    err = assert_refused(
        run(capsys, "start", "--csv", str(csv_file), "--playbook", DEMO_PLAYBOOK),
        "line 2",
        "country: unknown country 'Japan'",
    )
    assert "ISO 3166" in err


def test_a_csv_country_column_gives_the_customer_its_holidays(tmp_path: Path) -> None:
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text(
        CSV_HEADER.replace("notes\n", "notes,country\n")
        + GOOD_ROW.replace("from sales\n", "from sales,jp\n")
        + GOOD_ROW.replace("acme,", "beta,", 1).replace("from sales\n", "from sales,\n"),
        encoding="utf-8",
    )
    playbook = inputs.read_playbook(Path(DEMO_PLAYBOOK))
    read = handoff_csv.read_handoff_csv(csv_file, playbook)
    assert [(h.customer_id, h.country) for _, h in read.handoffs] == [
        ("acme", "JP"),
        ("beta", None),
    ]


def test_unknown_purpose_is_refused_with_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(run(capsys, *VALID_START, "--purpose", "Z"), "unknown purpose", "A, B, C")


def test_start_without_required_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(run(capsys, "start", "--name", "Acme"), "--customer-id", "--csm", "--seats")


def test_argparse_errors_are_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(run(capsys, "meeting", "acme", "--kind", "lunch", "--request"), "--kind")
    assert_refused(run(capsys, "review", "acme", "--held-on", "2026-01-01"), "--confirmed")
    assert_refused(run(capsys, "frobnicate"), "frobnicate")


def test_a_contact_whose_address_holds_an_undecodable_byte_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A byte no UTF-8 decodes reaches argv as a lone surrogate: it had been a traceback.
    refused = run(capsys, "contact", "acme", "end_user:Bad <\udcff@x.example>")
    assert_refused(refused, "an email address holds only printable characters")


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
        "line 3: seats:",
        "line 4: bad role 'chief'",
        "line 5: customer 'acme' repeats line 2",
        "line 6: trial_used",
        "unknown purpose(s) Z",
    )
    assert "line 2" not in err.replace("repeats line 2", "")
    assert no_temporal == []


def test_a_shift_jis_file_from_japanese_excel_with_full_width_digits_is_read(
    tmp_path: Path,
) -> None:
    csv_file = tmp_path / "handoffs.csv"
    text = (
        "customer_id,name,csm,cs_leader,seats,contacts\r\n"
        "sakura,株式会社さくら物流,csm@x.example,lead@x.example,５０,"
        "管理者ではなく administrator:ｈａｎａｋｏ@sakura.example\r\n"
    ).replace("管理者ではなく ", "")
    csv_file.write_bytes(text.encode("cp932"))
    playbook = inputs.read_playbook(Path(DEMO_PLAYBOOK))

    read = handoff_csv.read_handoff_csv(csv_file, playbook)

    assert read.problems == []
    assert read.encoding in ("cp932", "shift_jis", "shift_jis_2004")
    [(_, handoff)] = read.handoffs
    assert (handoff.name, handoff.seats_contracted) == ("株式会社さくら物流", 50)
    assert [(c.email, c.name) for c in handoff.contacts] == [
        ("hanako@sakura.example", "hanako@sakura.example")
    ]


def test_a_utf8_file_with_a_byte_order_mark_keeps_its_first_column(tmp_path: Path) -> None:
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_bytes((CSV_HEADER + GOOD_ROW).encode("utf-8-sig"))
    playbook = inputs.read_playbook(Path(DEMO_PLAYBOOK))
    [(_, handoff)] = handoff_csv.read_handoff_csv(csv_file, playbook).handoffs
    assert handoff.customer_id == "acme"


def test_misspelt_columns_are_refused_with_the_closest_known_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text(
        "customer_id,name,csm,cs_leader,seats,timezone,trial\n"
        "acme,Acme,csm@x.example,lead@x.example,5,Asia/Tokyo,true\n",
        encoding="utf-8",
    )
    assert_refused(
        run(capsys, "start", "--csv", str(csv_file), "--playbook", DEMO_PLAYBOOK),
        "'timezone' (did you mean 'time_zone'?)",
        "'trial' (did you mean 'trial_used'?)",
    )


def test_every_problem_of_every_row_is_reported_and_a_repeated_bad_id_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text(
        CSV_HEADER
        + "beta,Beta,not-an-email,lead@x.example,,ten,,,,,maybe,,\n"
        + "beta,Beta,csm@x.example,lead@x.example,,5,,,,,,,\n",
        encoding="utf-8",
    )
    err = assert_refused(
        run(capsys, "start", "--csv", str(csv_file), "--playbook", DEMO_PLAYBOOK),
        "line 2: ",
        "trial_used",
        "csm:",
        "seats:",
        "line 3: customer 'beta' repeats line 2",
    )
    assert "seats_contracted" not in err


def test_dry_run_checks_every_row_and_starts_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_temporal: list[str]
) -> None:
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text(
        CSV_HEADER + GOOD_ROW + "beta,Beta,csm@x.example,lead@x.example,,ten,,,,,,,\n",
        encoding="utf-8",
    )
    code, out, err = run(
        capsys, "start", "--csv", str(csv_file), "--dry-run", "--playbook", DEMO_PLAYBOOK
    )
    assert code == 2
    assert "acme: would start (Acme)" in out
    assert "1 would start, 1 refused; nothing started" in out
    assert "line 3: seats:" in err
    assert no_temporal == []


def test_skip_invalid_starts_the_good_rows_and_lists_the_refused_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []

    class StartingClient:
        async def start(self, handoff: Any, playbook: Any) -> StartResult:
            started.append(handoff.customer_id)
            return StartResult(
                customer_id=handoff.customer_id,
                workflow_id=f"onboarding-{handoff.customer_id}",
                run_id="run-1",
                already_running=False,
            )

    async def starting_client(settings: Any) -> StartingClient:
        return StartingClient()

    monkeypatch.setattr(connections, "onboarding_client", starting_client)
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text(
        CSV_HEADER
        + "beta,Beta,csm@x.example,lead@x.example,,ten,,,,,,,\n"
        + GOOD_ROW.replace("acme,Acme", "gamma,Gamma"),
        encoding="utf-8",
    )
    code, out, err = run(
        capsys, "start", "--csv", str(csv_file), "--skip-invalid", "--playbook", DEMO_PLAYBOOK
    )
    assert started == ["gamma"]
    assert code == 2
    assert "gamma" in out
    assert "not started: line 2: seats:" in err


def test_csv_missing_columns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text("customer_id,name\nacme,Acme\n", encoding="utf-8")
    assert_refused(
        run(capsys, "start", "--csv", str(csv_file)), "missing column(s) csm, cs_leader, seats"
    )


def test_csv_rows_parse_into_handoffs(tmp_path: Path) -> None:
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text(CSV_HEADER + GOOD_ROW, encoding="utf-8")
    playbook = inputs.read_playbook(Path(DEMO_PLAYBOOK))

    [(line, handoff)] = handoff_csv.read_handoff_csv(csv_file, playbook).handoffs

    assert (line, handoff.customer_id) == (2, "acme")
    assert [c.role for c in handoff.contacts] == [Role.ADMINISTRATOR, Role.END_USER]
    assert handoff.purposes == ["A", "B"]
    assert (handoff.locale, handoff.time_zone, handoff.trial_used) == ("ja", "Asia/Tokyo", True)
    assert handoff.quota_contracted == 1000


def test_playbook_validate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    demo = load_playbook(DEMO_PLAYBOOK)
    code, out, _ = run(capsys, "playbook", "validate", DEMO_PLAYBOOK)
    assert code == 0
    assert out.startswith(f"ok: {demo.name} {demo.version}, {len(demo.purposes)} purposes")

    broken = tmp_path / "broken.toml"
    text = (REPO / "playbooks" / "demo.toml").read_text(encoding="utf-8")
    broken.write_text(text.replace('deadline = "180s"', 'deadline = "60s"'), encoding="utf-8")
    assert_refused(run(capsys, "playbook", "validate", str(broken)), "momentum_after")
    assert_refused(run(capsys, "playbook", "validate", str(tmp_path / "none.toml")), "no such")


def test_a_megabyte_of_meeting_notes_is_refused_naming_the_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    notes = "x" * 1_000_000
    result = run(
        capsys, "meeting", "acme", "--kind", "customer_request", "--request", "--notes", notes
    )
    err = assert_refused(result, "notes", "at most 4000 characters")
    assert len(err) < 300


def test_events_built_from_arguments() -> None:
    args = build_parser().parse_args(
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
    event = inputs.event_from_args(args)
    assert event.kind == "completion_review_held"
    assert event.success_confirmed is False
    assert event.feature_requests == ["CSV export"]
    assert [(a.email, a.score) for a in event.nps] == [("dana@acme.example", 7)]


# Playbook validation renders every email the playbook makes the workflow send.

TEMPLATES = REPO / "templates" / "email"


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A copy of the shipped templates that a test may break."""
    directory = tmp_path / "templates"
    shutil.copytree(TEMPLATES, directory)
    return directory


@pytest.mark.parametrize("name", ["default.toml", "demo.toml"])
def test_shipped_playbooks_validate_with_every_email(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, out, err = run(capsys, "playbook", "validate", str(REPO / "playbooks" / name), "--json")

    report = json.loads(out)
    assert (code, err) == (0, "")
    assert report["ok"] is True and report["problems"] == []
    assert report["emails_checked"] > 2 * len(load_playbook(REPO / "playbooks" / name).purposes)


def test_validate_names_a_template_the_playbook_lacks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shipped = load_playbook(DEMO_PLAYBOOK)
    purpose = shipped.purposes[0]
    step = purpose.steps[0]
    broken = tmp_path / "broken.toml"
    text = Path(DEMO_PLAYBOOK).read_text(encoding="utf-8")
    # The first mention of the template is the first purpose's first step.
    broken.write_text(
        text.replace(f'template = "{step.template}"', 'template = "no_such_email"', 1),
        encoding="utf-8",
    )

    code, out, err = run(capsys, "playbook", "validate", str(broken))

    assert (code, out) == (2, "")
    role = step.roles[0].value
    assert (
        f"{broken}: purpose {purpose.id}, step {step.id}, role {role}, locale ja, "
        f"template no_such_email: no email template no_such_email.{role}.ja.txt "
        "or no_such_email.ja.txt"
    ) in err.splitlines()
    assert len(err.splitlines()) == len(step.roles) * 2  # every role, both locales


def test_validate_names_a_missing_japanese_translation(
    capsys: pytest.CaptureFixture[str], templates: Path
) -> None:
    shipped = load_playbook(DEMO_PLAYBOOK)
    purpose = shipped.purposes[0]
    step = purpose.steps[0]
    for path in templates.glob(f"{step.template}.*ja.txt"):
        path.unlink()

    code, out, err = run(
        capsys, "playbook", "validate", DEMO_PLAYBOOK, "--templates", str(templates)
    )

    assert (code, out) == (2, "")
    role = step.roles[0].value
    assert (
        f"{DEMO_PLAYBOOK}: purpose {purpose.id}, step {step.id}, role {role}, locale ja, "
        f"template {step.template}: no ja translation: "
    ) in err
    assert "locale en" not in err


def test_validate_names_an_undefined_variable_with_file_and_line(
    capsys: pytest.CaptureFixture[str], templates: Path
) -> None:
    failed = templates / "onboarding_failed.ja.txt"
    lines = failed.read_text(encoding="utf-8").count("\n")
    failed.write_text(
        failed.read_text(encoding="utf-8") + "{{ customer_nmae }}\n", encoding="utf-8"
    )

    result = run(capsys, "playbook", "validate", DEMO_PLAYBOOK, "--templates", str(templates))

    assert_refused(
        result,
        f"{DEMO_PLAYBOOK}: locale ja, template onboarding_failed: email template "
        f"onboarding_failed.ja.txt, line {lines + 1}: 'customer_nmae' is undefined",
    )


def test_validate_refuses_a_missing_templates_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = run(
        capsys, "playbook", "validate", DEMO_PLAYBOOK, "--templates", str(tmp_path / "none")
    )
    assert_refused(result, "no such templates directory")


# Email preview: one step, for a sample customer, to files.


def test_email_preview_writes_text_html_and_eml(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    playbook = load_playbook(DEMO_PLAYBOOK)
    purpose = playbook.purposes[0]
    step = purpose.steps[0]
    role = step.roles[0].value
    out_dir = tmp_path / "preview"

    code, out, err = run(
        capsys,
        *("email", "preview", "--playbook", DEMO_PLAYBOOK, "--purpose", purpose.id),
        *("--step", step.id, "--role", role, "--locale", "ja", "--out", str(out_dir)),
    )

    assert (code, err) == (0, "")
    stem = out_dir / f"{purpose.id}.{step.id}.{role}.ja"
    assert out.splitlines() == [f"{stem}.txt", f"{stem}.html", f"{stem}.eml"]
    text = Path(f"{stem}.txt").read_text(encoding="utf-8")
    html = Path(f"{stem}.html").read_text(encoding="utf-8")
    message = email.message_from_bytes(Path(f"{stem}.eml").read_bytes(), policy=default_policy)
    assert text.startswith(f"Subject: {message['Subject']}\n")
    assert "株式会社アクメ物流" in text
    assert '<html lang="ja">' in html and "<style" not in html and 'style="' in html
    assert message.get_body(("html",)) is not None


def test_email_preview_of_every_role_and_the_other_emails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(
        capsys,
        "email",
        "preview",
        "--playbook",
        DEMO_PLAYBOOK,
        "--choose-purpose",
        "--locale",
        "en",
        "--out",
        str(tmp_path),
    )
    assert code == 0
    roles = load_playbook(DEMO_PLAYBOOK).campaign.choose_purpose.roles  # type: ignore[union-attr]
    assert sorted(path.name for path in tmp_path.glob("*.html")) == sorted(
        f"choose_purpose.{role.value}.en.html" for role in roles
    )
    assert len(out.splitlines()) == 3 * len(roles)

    code, out, _ = run(
        capsys, "email", "preview", "--template", "task_assigned", "--out", str(tmp_path), "--json"
    )
    assert code == 0
    assert [entry["html"] for entry in json.loads(out)] == [
        str(tmp_path / "task_assigned.ja.html"),
        str(tmp_path / "task_assigned.en.html"),
    ]


def test_email_preview_of_a_survey_in_each_role_and_both_locales(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(
        capsys,
        *("email", "preview", "--playbook", DEMO_PLAYBOOK),
        *("--survey", "after_kickoff", "--out", str(tmp_path)),
    )

    assert (code, err) == (0, "")
    surveys = load_playbook(DEMO_PLAYBOOK).surveys
    assert surveys is not None
    roles = surveys.touchpoints[Touchpoint.AFTER_KICKOFF]
    assert sorted(path.name for path in tmp_path.glob("*.txt")) == sorted(
        f"nps_survey.after_kickoff.{role.value}.{locale}.txt"
        for role in roles
        for locale in ("en", "ja")
    )
    assert len(out.splitlines()) == 3 * 2 * len(roles)
    role = roles[0].value
    ja = (tmp_path / f"nps_survey.after_kickoff.{role}.ja.txt").read_text(encoding="utf-8")
    en = (tmp_path / f"nps_survey.after_kickoff.{role}.en.txt").read_text(encoding="utf-8")
    assert "株式会社アクメ物流" in ja and "キックオフミーティング" in ja
    assert "Thank you for the kickoff meeting." in en
    # Eleven score links, signed as the recipient gets them.
    assert en.count("https://liftoff.example/s/") == ja.count("https://liftoff.example/s/") == 11


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--purpose", "Z", "--step", "welcome"], "unknown purpose 'Z'"),
        (["--purpose", "A"], "--purpose needs --step"),
        (["--purpose", "A", "--step", "nope"], "unknown step 'nope'"),
        (["--purpose", "A", "--step", "welcome", "--role", "boss"], "unknown role 'boss'"),
        (["--purpose", "A", "--step", "welcome", "--locale", "fr"], "unknown locale 'fr'"),
        (["--template", "bogus"], "unknown template 'bogus'"),
        (["--template", "task_assigned", "--role", "end_user"], "not end_user"),
        (["--template", "nps_survey"], "surveys: --survey"),
        (["--survey", "after_lunch"], "unknown survey 'after_lunch'"),
        (["--survey", "after_kickoff", "--role", "end_user"], "not end_user"),
        (["--choose-purpose", "--step", "welcome"], "--step goes with --purpose"),
        (["--step", "welcome"], "one of the arguments"),
    ],
)
def test_email_preview_refuses_bad_input_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], says: str
) -> None:
    out_dir = tmp_path / "preview"
    argv = ["email", "preview", "--playbook", DEMO_PLAYBOOK, *argv, "--out", str(out_dir)]

    assert_refused(run(capsys, *argv), says)
    assert not out_dir.exists()


def test_email_preview_into_a_path_under_a_file_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("kept")
    argv = ["email", "preview", "--template", "task_assigned", "--out", str(a_file / "x")]

    assert_refused(run(capsys, *argv), "notes.txt exists and is not a directory")
    assert a_file.read_text() == "kept"


def test_email_preview_refuses_a_role_the_step_does_not_reach(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    playbook = load_playbook(DEMO_PLAYBOOK)
    purpose, step = next(
        (p, s) for p in playbook.purposes for s in p.steps if len(s.roles) < len(Role)
    )
    absent = next(role for role in Role if role not in step.roles)
    argv = ["email", "preview", "--playbook", DEMO_PLAYBOOK, "--purpose", purpose.id]
    argv += ["--step", step.id, "--role", absent.value, "--out", str(tmp_path / "preview")]

    assert_refused(run(capsys, *argv), f"not {absent.value}")
    assert not (tmp_path / "preview").exists()


# Status: the emails that went out to the customer's people, and what became of them.

T0 = datetime(2026, 1, 15, 0, 30, tzinfo=UTC)


def add_emails(database: Database) -> None:
    """acme: a delivered, opened and clicked welcome, a refused one, a task email;
    and a message of another customer that must not show."""

    def entry(key: str, to: str, template: str, status: str, **more: Any) -> EmailLedgerEntry:
        return EmailLedgerEntry(
            customer_id=more.pop("customer_id", "acme"),
            ledger_key=key,
            recipient=to,
            template=template,
            status=status,
            created_at=T0 + timedelta(minutes=more.pop("minute", 0)),
            **more,
        )

    def event(n: int, key: str | None, to: str, kind: str, **more: Any) -> EmailEvent:
        return EmailEvent(
            sg_event_id=f"ev-{n}",
            customer_id=more.pop("customer_id", "acme"),
            ledger_key=key,
            recipient=to,
            event=kind,
            occurred_at=T0 + timedelta(hours=n),
            raw={},
            received_at=T0 + timedelta(hours=n),
            **more,
        )

    welcome = "campaign:A:welcome:administrator"
    with database.session() as session:
        session.add_all(
            [
                entry(welcome, "omar@acme.example", "purpose_welcome", "sent", sent_at=T0),
                entry(
                    welcome,
                    "gone@acme.example",
                    "purpose_welcome",
                    "failed",
                    error="MailRefused: 550 mailbox unavailable",
                ),
                entry(
                    "task:acme-1",
                    "csm@cs.example",
                    "task_assigned",
                    "sent",
                    minute=5,
                    sent_at=T0 + timedelta(minutes=5),
                ),
                entry(
                    "task:other-1", "csm@cs.example", "task_assigned", "sent", customer_id="other"
                ),
            ]
        )
        session.add_all(
            [
                event(1, welcome, "omar@acme.example", "delivered"),
                event(2, welcome, "omar@acme.example", "open"),
                event(3, welcome, "omar@acme.example", "open"),
                event(4, welcome, "omar@acme.example", "click", url="https://x.example"),
                event(5, "task:other-1", "csm@cs.example", "open", customer_id="other"),
                event(6, None, "omar@acme.example", "open"),  # matched to no message
            ]
        )


def test_customer_emails_pairs_each_ledger_row_with_its_events(database: Database) -> None:
    add_emails(database)

    emails = customer_emails(database, customer_id="acme")

    assert [(e.ledger_key, e.recipient, e.status) for e in emails] == [
        ("campaign:A:welcome:administrator", "gone@acme.example", "failed"),
        ("campaign:A:welcome:administrator", "omar@acme.example", "sent"),
        ("task:acme-1", "csm@cs.example", "sent"),
    ]
    assert emails[0].events == [] and emails[0].error is not None
    assert [e.event for e in emails[1].events] == ["delivered", "open", "open", "click"]
    assert emails[1].events[-1].url == "https://x.example"
    assert emails[2].events == []
    assert customer_emails(database, customer_id="nobody") == []


@pytest.fixture
def status_from_temporal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Database]:
    """`status` with Temporal faked and the database a fresh SQLite file holding emails."""
    status = OnboardingStatus(
        customer_id="acme",
        customer_name="Acme Logistics",
        csm="csm@cs.example",
        cs_leader="lead@cs.example",
        playbook_name="demo",
        playbook_version="1",
        state=OnboardingState(),
        next_due=None,
    )

    class FakeClient:
        async def status(self, customer_id: str) -> OnboardingStatus:
            return status

    async def fake_client(settings: Any) -> FakeClient:
        return FakeClient()

    url = f"sqlite:///{tmp_path / 'liftoff.db'}"
    monkeypatch.setattr(connections, "onboarding_client", fake_client)
    monkeypatch.setenv("DATABASE_URL", url)
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()


def test_status_shows_each_email_and_what_became_of_it(
    capsys: pytest.CaptureFixture[str], status_from_temporal: Database
) -> None:
    add_emails(status_from_temporal)

    code, out, _ = run(capsys, "status", "acme")

    assert code == 0
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  emails:"))
    assert lines[at] == "  emails: 3 (1 failed)"
    assert lines[at + 1].split() == [
        "WHEN",
        "EMAIL",
        "TEMPLATE",
        "TO",
        "STATUS",
        "WHAT",
        "HAPPENED",
    ]
    omar = next(line for line in lines if "omar@acme.example" in line)
    assert "2026-01-15 00:30:00 UTC" in omar
    assert omar.endswith("sent    delivered, open x2, click")
    gone = next(line for line in lines if "gone@acme.example" in line)
    assert gone.endswith("failed  MailRefused: 550 mailbox unavailable")
    assert "task:other-1" not in out


def test_status_json_lists_the_emails(
    capsys: pytest.CaptureFixture[str], status_from_temporal: Database
) -> None:
    add_emails(status_from_temporal)

    code, out, _ = run(capsys, "status", "acme", "--json")

    report = json.loads(out)
    assert code == 0
    assert report["state"]["stage"] == "handoff"
    assert [(e["recipient"], e["status"]) for e in report["emails"]] == [
        ("gone@acme.example", "failed"),
        ("omar@acme.example", "sent"),
        ("csm@cs.example", "sent"),
    ]
    assert [e["event"] for e in report["emails"][1]["events"]] == [
        "delivered",
        "open",
        "open",
        "click",
    ]


def test_status_without_emails_says_so(
    capsys: pytest.CaptureFixture[str], status_from_temporal: Database
) -> None:
    code, out, _ = run(capsys, "status", "acme")

    assert code == 0
    assert out.splitlines()[-1] == "  emails: none sent yet"


def test_a_criterion_met_for_longer_than_needed_reads_as_its_requirement_met() -> None:
    from cli.output import verdict_lines
    from models.onboarding import CriterionVerdict, WeeklyMeasurement, WeekVerdict
    from models.playbook import Metric

    week = WeeklyMeasurement(
        week_index=13,
        window_start=datetime(2026, 3, 2, tzinfo=UTC),
        window_end=datetime(2026, 3, 9, tzinfo=UTC),
        active_users=8,
        active_seat_ratio=0.8,
        events=40,
        key_actions={},
        quota_consumption=None,
        data_ever_arrived=True,
    )
    criterion = CriterionVerdict(
        metric=Metric.ACTIVE_SEAT_RATIO,
        purpose=None,
        observed=0.8,
        threshold=0.6,
        weeks_required=1,
        weeks_running=13,
        observed_held=True,
        met=True,
    )
    verdict = WeekVerdict(
        measurement=week, criteria=[criterion], criteria_met=True, stall_checks=[], stalled=False
    )
    lines = verdict_lines(verdict)
    assert any("(1/1 week(s) running)" in line for line in lines), lines
    assert not any("13/1" in line for line in lines)


def test_start_help_documents_every_csv_column(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["start", "--help"])
    out = capsys.readouterr().out
    for column in handoff_csv.CSV_COLUMNS:
        assert f"  {column} " in out, column
    assert "'role:Name <email>' or 'role:email'" in out


@pytest.fixture
def listed_customers(monkeypatch: pytest.MonkeyPatch, database: Database) -> Database:
    """`list` over a projection of five customers, on SQLite and PostgreSQL; no Temporal."""
    from testkit.projections import insert_projection_rows, projection_row

    now = datetime.now(UTC)
    insert_projection_rows(
        database,
        [
            projection_row("a-kick", now),
            projection_row("b-paused", now, paused=True, paused_since=now, pause_reason="audit"),
            projection_row("c-stalled", now, stage="adoption", stalled=True),
            projection_row("d-done", now, stage="onboarded", ended_at=now, playbook_version="2"),
            projection_row("e-other", now, csm="other@liftoff.example", playbook_version="2"),
        ],
    )
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))
    return database


def listed_ids(out: str) -> list[str]:
    return [row["customer_id"] for row in json.loads(out)]


def test_list_reads_the_projection_with_its_filters(
    capsys: pytest.CaptureFixture[str], listed_customers: Database
) -> None:
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    assert listed_ids(out) == ["a-kick", "b-paused", "c-stalled", "d-done", "e-other"]
    rows = {row["customer_id"]: row for row in json.loads(out)}
    assert rows["b-paused"]["paused"] is True
    assert rows["d-done"]["workflow_status"] == "completed"
    assert rows["a-kick"]["workflow_status"] == "running"

    assert listed_ids(run(capsys, "list", "--paused", "--json")[1]) == ["b-paused"]
    assert listed_ids(run(capsys, "list", "--ended", "--json")[1]) == ["d-done"]
    assert "d-done" not in listed_ids(run(capsys, "list", "--ongoing", "--json")[1])
    assert listed_ids(run(capsys, "list", "--playbook-version", "2", "--json")[1]) == [
        "d-done",
        "e-other",
    ]
    assert listed_ids(run(capsys, "list", "--stalled", "--json")[1]) == ["c-stalled"]
    assert listed_ids(run(capsys, "list", "--csm", "OTHER@liftoff.example", "--json")[1]) == [
        "e-other"
    ]


def test_list_text_pages_and_says_where_the_page_sits(
    capsys: pytest.CaptureFixture[str], listed_customers: Database
) -> None:
    code, out, _ = run(capsys, "list", "--limit", "2", "--page", "2")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["CUSTOMER", "STAGE", "CSM", "FLAGS", "PLAYBOOK", "WORKFLOW"]
    assert [line.split()[0] for line in lines[1:3]] == ["c-stalled", "d-done"]
    assert lines[1].split()[3] == "stalled"
    assert lines[-1] == "3-4 of 5 (next: --page 3)"

    code, out, _ = run(capsys, "list", "--page", "9")
    assert code == 0
    assert out.splitlines() == ["no customers match", "5 match; page 9 is past the end"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--limit", "0"], "not between 1 and 1000"),
        (["--limit", "ten"], "'ten' is not a whole number"),
        (["--page", "0"], "not between 1 and 1000000"),
        (["--ongoing", "--ended"], "not allowed with argument"),
        (["--workflows", "--paused"], "--paused reads the customer projection"),
        (["--workflows", "--playbook-version", "2"], "--playbook-version reads"),
    ],
)
def test_list_refuses_what_it_cannot_answer(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    assert_refused(run(capsys, "list", *argv), says)


@pytest.mark.parametrize(
    "argv", [["playbook", "validate", "playbooks/default.toml"], ["--help"], ["nosuchcommand"]]
)
def test_a_reader_that_leaves_early_gets_no_traceback(argv: list[str]) -> None:
    # `liftoff ... | head`: the pipe's reader is gone before the command writes.
    command = subprocess.Popen(
        [sys.executable, "starter.py", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert command.stdout is not None and command.stderr is not None
    command.stdout.close()
    said = command.stderr.read().decode()
    code = command.wait(timeout=120)

    assert "Traceback" not in said and "BrokenPipeError" not in said
    if argv[0] == "playbook":  # it writes its report after the reader left
        assert code == READER_LEFT_EXIT
    elif argv[0] == "nosuchcommand":  # its one line goes to stderr, which is still read
        assert code == 2 and "invalid choice" in said
    else:
        assert code in (0, READER_LEFT_EXIT)
