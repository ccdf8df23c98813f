"""End to end: the real CLI, as a CSM runs it, against a real dev server and worker process."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models import visibility
from tests.support.eventually import eventually_blocking
from tests.support.processes import Cli, cli_runner, liftoff_environment, start_worker, stop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI and worker run here, away from the repository, with their own database."""
    return tmp_path_factory.mktemp("liftoff")


@pytest.fixture(scope="module")
def environment(temporal_address: str, workdir: Path) -> dict[str, str]:
    return liftoff_environment(temporal_address, workdir)


@pytest.fixture(scope="module")
def cli(environment: dict[str, str], workdir: Path) -> Cli:
    return cli_runner(environment, workdir)


@pytest.fixture(scope="module")
def worker(environment: dict[str, str], workdir: Path) -> Iterator[subprocess.Popen[str]]:
    log = workdir / "worker.log"
    process = start_worker(environment, workdir, log)
    try:
        yield process
    finally:
        stop(process)
    # SIGTERM is a clean shutdown, not a crash.
    assert process.returncode == 0, log.read_text()[-2000:]


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_a_csm_runs_one_customer_through_the_cli(cli: Cli, worker: subprocess.Popen[str]) -> None:
    customer = f"acme-{uuid.uuid4().hex[:8]}"
    start = [
        "start",
        "--customer-id",
        customer,
        "--name",
        "Acme Logistics",
        "--csm",
        "csm@liftoff.example",
        "--leader",
        "leader@liftoff.example",
        "--contact",
        "administrator:Omar Reyes <omar@acme.example>",
        "--seats",
        "10",
        "--purpose",
        "A",
    ]
    started = json.loads(_ok(cli(*start, "--json")))
    assert started["workflow_id"] == visibility.workflow_id_for(customer)
    assert started["already_running"] is False

    again = cli(*start)
    assert "already running" in _ok(again)

    recorded = _ok(cli("kickoff", customer, "--held-on", "2026-01-05", "--goal", "Go paperless"))
    assert f"{customer}: kickoff_held recorded" in recorded

    status = json.loads(_ok(cli("status", customer, "--json")))
    assert status["state"]["stage"] == "training"  # no trial: training awaits the CSM
    assert [goal["text"] for goal in status["state"]["goals"]] == ["Go paperless"]
    assert f"Acme Logistics ({customer}): {status['state']['stage'].upper()}" in _ok(
        cli("status", customer)
    )

    # The CSM's task list and the timeline come from the database the worker writes,
    # a moment after the update returned.
    def transitions() -> list[str]:
        rows = json.loads(_ok(cli("timeline", customer, "--kind", "transition", "--json")))
        return [row["details"]["to"] for row in rows]

    def open_tasks() -> list[str]:
        rows = json.loads(_ok(cli("task", "list", "--customer", customer, "--json")))
        return [row["kind"] for row in rows]

    eventually_blocking(
        lambda: (transitions(), open_tasks()),
        lambda seen: seen == (["handoff", "kickoff", "training"], ["schedule_training"]),
        what="the timeline and task list written",
        timeout=10,
        interval=0.2,
    )
    assert "unknown customer" in _refused(cli("timeline", f"nobody-{uuid.uuid4().hex[:8]}"))

    early = cli("review", customer, "--held-on", "2026-01-06", "--confirmed")
    assert "completion review" in _refused(early)

    assert "unknown customer" in _refused(cli("status", f"nobody-{uuid.uuid4().hex[:8]}"))
    assert "unknown customer" in _refused(cli("goal", f"nobody-{uuid.uuid4().hex[:8]}", "x"))

    # Visibility is eventually consistent: give the index a moment.
    listed: list[dict[str, Any]] = eventually_blocking(
        lambda: json.loads(_ok(cli("list", "--json"))),
        lambda rows: any(row["customer_id"] == customer for row in rows),
        what="the customer listed",
        timeout=20,
        interval=0.5,
    )
    [row] = [row for row in listed if row["customer_id"] == customer]
    assert row["csm"] == "csm@liftoff.example"
    assert row["workflow_status"] == "running"

    assert "recorded" in _ok(cli("cancel", customer, "--reason", "contract ended"))
    final = json.loads(_ok(cli("status", customer, "--json")))
    assert final["state"]["stage"] == "cancelled"
    late = _refused(cli("goal", customer, "too late"))
    assert "cancelled" in late or "ended" in late
