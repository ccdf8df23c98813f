"""End to end: the real CLI, as a CSM runs it, against a real dev server and worker process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from models import visibility
from tests.conftest import REPO, venv_binary

pytestmark = pytest.mark.e2e

READY_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0
_TYPES = {"KEYWORD": "Keyword", "BOOL": "Bool"}

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(what: str, check: Callable[[], bool], process: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not check():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready within {READY_TIMEOUT:.0f}s")
        time.sleep(0.3)


def _stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    command = [
        venv_binary("temporal"),
        "server",
        "start-dev",
        "--headless",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--http-port",
        str(_free_port()),
        "--log-level",
        "warn",
    ]
    for key in visibility.ALL:
        command += ["--search-attribute", f"{key.name}={_TYPES[key.indexed_value_type.name]}"]
    log = (tmp_path_factory.mktemp("temporal") / "server.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def answers() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        _wait_for("temporal dev server", answers, server)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(server)
        log.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI and worker run here, away from the repository, with their own database."""
    return tmp_path_factory.mktemp("liftoff")


@pytest.fixture(scope="module")
def environment(temporal_address: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LIFTOFF_"))}
    env.update(
        TEMPORAL_ADDRESS=temporal_address,
        TEMPORAL_NAMESPACE="default",
        LIFTOFF_TASK_QUEUE=f"e2e-{uuid.uuid4()}",
        DATABASE_URL=f"sqlite:///{workdir / 'liftoff.db'}",
        LIFTOFF_OUTBOX_DIR=str(workdir / "outbox"),
        LIFTOFF_PLAYBOOK=str(REPO / "playbooks" / "demo.toml"),
        LIFTOFF_LOG_FORMAT="json",
    )
    return env


@pytest.fixture(scope="module")
def cli(environment: dict[str, str], workdir: Path) -> Cli:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "starter.py"), *argv],
            env=environment,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )

    return run


@pytest.fixture(scope="module")
def worker(environment: dict[str, str], workdir: Path) -> Iterator[subprocess.Popen[str]]:
    log = (workdir / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "worker.py")],
        env=environment,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def started() -> bool:
        return "worker started" in (workdir / "worker.log").read_text()

    try:
        _wait_for("worker", started, process)
        yield process
    finally:
        _stop(process)
        log.close()
    # SIGTERM is a clean shutdown, not a crash.
    assert process.returncode == 0, (workdir / "worker.log").read_text()[-2000:]


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

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        transitions() != ["handoff", "kickoff", "training"] or open_tasks() != ["schedule_training"]
    ):
        time.sleep(0.2)
    assert transitions() == ["handoff", "kickoff", "training"]
    assert open_tasks() == ["schedule_training"]
    assert "unknown customer" in _refused(cli("timeline", f"nobody-{uuid.uuid4().hex[:8]}"))

    early = cli("review", customer, "--held-on", "2026-01-06", "--confirmed")
    assert "completion review" in _refused(early)

    assert "unknown customer" in _refused(cli("status", f"nobody-{uuid.uuid4().hex[:8]}"))
    assert "unknown customer" in _refused(cli("goal", f"nobody-{uuid.uuid4().hex[:8]}", "x"))

    # Visibility is eventually consistent: give the index a moment.
    deadline = time.monotonic() + 20
    listed: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        listed = json.loads(_ok(cli("list", "--json")))
        if any(row["customer_id"] == customer for row in listed):
            break
        time.sleep(0.5)
    [row] = [row for row in listed if row["customer_id"] == customer]
    assert row["csm"] == "csm@liftoff.example"
    assert row["workflow_status"] == "running"

    assert "recorded" in _ok(cli("cancel", customer, "--reason", "contract ended"))
    final = json.loads(_ok(cli("status", customer, "--json")))
    assert final["state"]["stage"] == "cancelled"
    late = _refused(cli("goal", customer, "too late"))
    assert "cancelled" in late or "ended" in late
