"""Real processes for end-to-end tests: a Temporal dev server, worker.py, the CLI,
`liftoff serve`.

The dev server is one per session (a fixture registered in tests/conftest.py); each test module
gives its worker a task queue and a database of its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from models import visibility
from testkit.factories import REPO, SURVEY_SECRET
from testkit.temporal import venv_binary
from tests.support.eventually import eventually_blocking

READY_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0
WORKER_STARTED = "worker started"
# Answers 200 once the API's database and Temporal both answer (api/routes/health.py).
API_READY_PATH = "/readyz"
_TYPES = {"KEYWORD": "Keyword", "BOOL": "Bool"}

Cli = Callable[..., subprocess.CompletedProcess[str]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], bool], process: subprocess.Popen[Any]) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        return check()

    eventually_blocking(ready, what=f"{what} ready", timeout=READY_TIMEOUT, interval=0.3)


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it will not go."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `temporal server start-dev` with Liftoff's search attributes."""
    port = free_port()
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
        str(free_port()),
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
        wait_for("temporal dev server", answers, server)
        yield f"127.0.0.1:{port}"
    finally:
        stop(server)
        log.close()


def liftoff_environment(temporal_address: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The worker's and CLI's environment: this test's server, queue, database and outbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LIFTOFF_"))}
    env.pop("SENDGRID_API_KEY", None)
    env.update(
        TEMPORAL_ADDRESS=temporal_address,
        TEMPORAL_NAMESPACE="default",
        LIFTOFF_TASK_QUEUE=f"e2e-{uuid.uuid4()}",
        DATABASE_URL=f"sqlite:///{workdir / 'liftoff.db'}",
        LIFTOFF_OUTBOX_DIR=str(workdir / "outbox"),
        LIFTOFF_PLAYBOOK=str(REPO / "playbooks" / "demo.toml"),
        LIFTOFF_LOG_FORMAT="json",
        LIFTOFF_SURVEY_SECRET=SURVEY_SECRET,
    )
    env.update(extra)
    return env


def cli_runner(environment: dict[str, str], workdir: Path) -> Cli:
    """`starter.py ARGS...` as a CSM runs it, in `workdir`."""

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


def launch_worker(environment: dict[str, str], workdir: Path, log: Path) -> subprocess.Popen[str]:
    """`python worker.py` in `workdir`, its output in `log`; not waited for."""
    with log.open("w") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, str(REPO / "worker.py")],
            env=environment,
            cwd=workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


def wait_until_worker_started(process: subprocess.Popen[str], log: Path) -> None:
    """Until the worker has logged that it started; stopped if it never does."""
    try:
        wait_for("worker", lambda: WORKER_STARTED in log.read_text(), process)
    except BaseException:
        stop(process)
        raise


def start_worker(environment: dict[str, str], workdir: Path, log: Path) -> subprocess.Popen[str]:
    """`python worker.py` in `workdir`, once it has logged that it started."""
    process = launch_worker(environment, workdir, log)
    wait_until_worker_started(process, log)
    return process


def launch_api(
    environment: dict[str, str], workdir: Path, log: Path, port: int
) -> subprocess.Popen[str]:
    """`liftoff serve --port PORT` in `workdir`, its output in `log`; not waited for."""
    with log.open("w") as output:
        return subprocess.Popen(
            [sys.executable, str(REPO / "starter.py"), "serve", "--port", str(port)],
            env=environment,
            cwd=workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


def wait_until_api_ready(process: subprocess.Popen[str], url: str) -> None:
    """Until `url` answers its readiness probe; stopped if it never does."""

    def ready() -> bool:
        try:
            return httpx.get(url + API_READY_PATH, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(f"liftoff serve at {url}", ready, process)
    except BaseException:
        stop(process)
        raise


def start_api(
    environment: dict[str, str], workdir: Path, log: Path
) -> tuple[subprocess.Popen[str], str]:
    """`liftoff serve` on a free port, once it is ready; returns the process and its URL."""
    port = free_port()
    process = launch_api(environment, workdir, log, port)
    url = f"http://127.0.0.1:{port}"
    wait_until_api_ready(process, url)
    return process, url
