"""Mail settings: an incomplete backend stops the worker at start-up, secrets stay hidden."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

import worker
from cli.main import main as cli_main
from emails.mailers import OutboxMailer, SendGridMailer, SmtpMailer
from settings import REPO, Settings
from tests.support.processes import free_port

# Made per run, never written down: a literal would look like a leaked SendGrid key.
SECRET = f"settings-{secrets.token_urlsafe(24)}"
MAIL_VARIABLES = [
    "LIFTOFF_MAIL_BACKEND",
    "SENDGRID_API_KEY",
    "LIFTOFF_SENDGRID_HOST",
    "LIFTOFF_SENDGRID_SANDBOX",
    "LIFTOFF_UNSUBSCRIBE_URL",
    "LIFTOFF_UNSUBSCRIBE_MAILTO",
    "LIFTOFF_SMTP_HOST",
    "LIFTOFF_SMTP_PORT",
    "LIFTOFF_SMTP_USERNAME",
    "LIFTOFF_SMTP_PASSWORD",
    "LIFTOFF_SMTP_STARTTLS",
    "LIFTOFF_SMTP_TLS",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MAIL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_sendgrid_without_an_api_key_is_refused_with_the_variable_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIFTOFF_MAIL_BACKEND", "sendgrid")

    with pytest.raises(ValidationError) as refused:
        Settings()

    assert "LIFTOFF_MAIL_BACKEND=sendgrid needs SENDGRID_API_KEY" in str(refused.value)


def test_the_worker_stops_at_start_up_with_one_readable_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIFTOFF_MAIL_BACKEND", "smtp")

    with pytest.raises(SystemExit) as stopped:
        worker.main()

    assert stopped.value.code == (
        "liftoff worker: bad configuration: LIFTOFF_MAIL_BACKEND=smtp needs LIFTOFF_SMTP_HOST"
    )


def test_a_configuration_error_never_echoes_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFTOFF_MAIL_BACKEND", "sendgrid")
    monkeypatch.setenv("SENDGRID_API_KEY", SECRET)
    monkeypatch.setenv("LIFTOFF_UNSUBSCRIBE_URL", "http://not-https.example/u")

    with pytest.raises(ValidationError) as refused:
        Settings()

    assert "must be https://" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_build_mailer_picks_the_backend_and_logs_it_without_the_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert isinstance(worker.build_mailer(Settings()), OutboxMailer)

    monkeypatch.setenv("LIFTOFF_MAIL_BACKEND", "sendgrid")
    monkeypatch.setenv("SENDGRID_API_KEY", SECRET)
    sendgrid = worker.build_mailer(Settings())
    assert isinstance(sendgrid, SendGridMailer)

    monkeypatch.setenv("LIFTOFF_MAIL_BACKEND", "smtp")
    monkeypatch.setenv("LIFTOFF_SMTP_HOST", "smtp.example")
    monkeypatch.setenv("LIFTOFF_SMTP_PORT", "465")
    monkeypatch.setenv("LIFTOFF_SMTP_TLS", "true")
    smtp = worker.build_mailer(Settings())
    assert isinstance(smtp, SmtpMailer)
    assert (smtp.use_tls, smtp.starttls, smtp.port) == (True, False, 465)

    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "mail backend: outbox",
        "mail backend: sendgrid",
        "mail backend: smtp",
    ]
    assert not [record for record in caplog.records if SECRET in str(record.__dict__)]


def test_a_misspelt_sandbox_choice_stops_the_worker_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIFTOFF_WORKFLOW_SANDBOX", "strcit")
    with pytest.raises(SystemExit) as stopped:
        worker.main()
    assert "LIFTOFF_WORKFLOW_SANDBOX" in str(stopped.value.code)
    assert "'shared' or 'strict'" in str(stopped.value.code)


@pytest.mark.parametrize(
    ("variable", "field", "wrong", "right"),
    [
        ("LIFTOFF_PAYLOAD_COMPRESSION", "payload_compression", "zlib please", "true"),
        ("LIFTOFF_PLAYBOOKS_BY_REFERENCE", "playbooks_by_reference", "sometimes", "yes"),
    ],
)
def test_a_switch_that_is_not_yes_or_no_stops_the_worker_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str, wrong: str, right: str
) -> None:
    monkeypatch.setenv(variable, wrong)
    with pytest.raises(SystemExit) as stopped:
        worker.main()
    assert variable in str(stopped.value.code)
    assert "valid boolean" in str(stopped.value.code)
    monkeypatch.setenv(variable, right)
    assert getattr(Settings(), field) is True


@pytest.mark.parametrize(
    ("variable", "field", "wrongs", "right"),
    [
        # The SDK needs two at least while the worker keeps a sticky cache.
        (
            "LIFTOFF_MAX_CONCURRENT_WORKFLOW_TASKS",
            "max_concurrent_workflow_tasks",
            ["1", "5000"],
            8,
        ),
        (
            "LIFTOFF_MAX_CONCURRENT_WORKFLOW_TASK_POLLS",
            "max_concurrent_workflow_task_polls",
            ["1", "101"],
            3,
        ),
        ("LIFTOFF_MAX_CONCURRENT_ACTIVITIES", "max_concurrent_activities", ["0", "1001"], 40),
        ("LIFTOFF_MAX_CACHED_WORKFLOWS", "max_cached_workflows", ["-1", "1000001"], 0),
    ],
)
def test_a_worker_size_out_of_bounds_stops_the_worker_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str, wrongs: list[str], right: int
) -> None:
    # Past the upper bound a value is a typo that would size a thread pool or a cache.
    for wrong in [*wrongs, "lots", "-5"]:
        monkeypatch.setenv(variable, wrong)
        with pytest.raises(SystemExit) as stopped:
            worker.main()
        assert variable in str(stopped.value.code), wrong
    monkeypatch.setenv(variable, str(right))
    assert getattr(Settings(), field) == right


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://liftoff:s3cret-pw@127.0.0.1:notaport/liftoff", "not a database URL"),
        ("mysql://liftoff:s3cret-pw@127.0.0.1/liftoff", "'mysql' is not supported"),
    ],
)
def test_a_database_url_no_engine_takes_is_refused_at_start_without_its_password(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert cli_main(["token", "list"]) == 2
    err = capsys.readouterr().err
    assert message in err and "s3cret-pw" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_database_that_refuses_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server refuses the role (or is down): a sentence, not a traceback."""
    port = free_port()  # nothing listens there
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://nobody:s3cret-pw@127.0.0.1:{port}/x")
    assert cli_main(["token", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("liftoff: error: the database (DATABASE_URL): ")
    assert "Traceback" not in err and "s3cret-pw" not in err


def test_the_embedded_state_is_in_the_checkout_wherever_a_command_runs_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Relative, `liftoff usage record` run from another directory had stored into a
    # new, empty database that no worker reads.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("LIFTOFF_OUTBOX_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.database_url == f"sqlite:///{REPO / '.liftoff' / 'liftoff.db'}"
    assert settings.outbox_dir == REPO / ".liftoff" / "outbox"
