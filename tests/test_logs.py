"""Each entry point sets up the same logging: `liftoff serve`'s INFO lines are no longer lost."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

import api.server
from cli.main import main
from client.connection import CORE_LOGGER, telemetry_runtime
from logs import JsonFormatter, configure_logging
from settings import Settings
from testkit.temporal import start_dev_server
from tests.support.processes import free_port


@pytest.fixture(autouse=True)
def root_logger_restored() -> Iterator[None]:
    """configure_logging replaces the root handlers; other tests keep pytest's own."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def serve_without_a_server(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """`liftoff serve` up to serving; the stand-in logs at INFO as uvicorn and the API do."""
    served: list[Settings] = []

    async def serve_api(settings: Settings, **_: Any) -> None:
        served.append(settings)
        logging.getLogger("uvicorn.error").info("Application startup complete.")
        logging.getLogger("liftoff.api").info(
            "serving the API and dashboard", extra={"url": api.server.base_url(settings)}
        )

    monkeypatch.setattr(api.server, "serve_api", serve_api)
    return served


def test_liftoff_serve_logs_its_info_startup_lines_to_stderr(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    serve_without_a_server: list[Settings],
) -> None:
    monkeypatch.setenv("LIFTOFF_LOG_FORMAT", "text")
    monkeypatch.setenv("LIFTOFF_LOG_LEVEL", "INFO")

    port = free_port()
    code = main(["serve", "--port", str(port)])

    out, err = capsys.readouterr()
    assert code == 0
    assert [s.api_port for s in serve_without_a_server] == [port]
    assert f"Liftoff API and dashboard on http://127.0.0.1:{port}" in out
    assert "INFO    uvicorn.error: Application startup complete." in err
    assert "INFO    liftoff.api: serving the API and dashboard" in err


def test_liftoff_serve_logs_json_lines_with_their_extra_fields(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    serve_without_a_server: list[Settings],
) -> None:
    monkeypatch.setenv("LIFTOFF_LOG_FORMAT", "json")
    monkeypatch.setenv("LIFTOFF_LOG_LEVEL", "INFO")

    port = free_port()
    assert main(["serve", "--host", "127.0.0.2", "--port", str(port)]) == 0

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    [serving] = [line for line in lines if line["logger"] == "liftoff.api"]
    assert (serving["level"], serving["message"]) == ("info", "serving the API and dashboard")
    assert serving["url"] == f"http://127.0.0.2:{port}"


def test_liftoff_serve_on_a_taken_port_says_so_in_one_line_before_anything_runs(
    capsys: pytest.CaptureFixture[str], serve_without_a_server: list[Settings]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code = main(["serve", "--port", str(port)])

    out, err = capsys.readouterr()
    assert code == 2
    assert out == "" and serve_without_a_server == []
    assert err == (
        f"liftoff: error: cannot serve on 127.0.0.1:{port}: Address already in use "
        "(choose another with --port)\n"
    )


def test_the_demo_logs_to_its_file_at_info_whatever_the_configured_level(
    tmp_path: Path,
) -> None:
    settings = Settings().model_copy(update={"log_format": "json", "log_level": "ERROR"})

    configure_logging(settings, path=tmp_path / "demo.log", level="INFO")
    logging.getLogger("liftoff.demo").info("cohort started", extra={"customers": 3})
    logging.getLogger().handlers[0].flush()

    [entry] = [json.loads(line) for line in (tmp_path / "demo.log").read_text().splitlines()]
    assert (entry["logger"], entry["message"], entry["customers"]) == (
        "liftoff.demo",
        "cohort started",
        3,
    )


def test_a_json_line_names_the_customer_of_its_activity_and_its_trace() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.testing import ActivityEnvironment

    from logs import JsonFormatter

    formatter = JsonFormatter()
    record = logging.makeLogRecord({"name": "liftoff.mail", "msg": "sent", "levelno": 20})
    outside = json.loads(formatter.format(record))
    assert "customer_id" not in outside and "trace_id" not in outside

    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, workflow_id="onboarding-acme-42")
    inside = json.loads(environment.run(lambda: formatter.format(record)))
    assert (inside["workflow_id"], inside["customer_id"]) == ("onboarding-acme-42", "acme-42")

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("send") as span:
        traced = json.loads(formatter.format(record))
    assert traced["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert len(traced["span_id"]) == 16


@workflow.defn(sandboxed=False)
class Idle:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def test_the_sdk_cores_own_lines_go_through_python_logging_as_json() -> None:
    """The core warns as its polls retry while Temporal is out of reach; those lines were
    colored text written straight to stderr, past the JSON log."""
    records: list[logging.LogRecord] = []

    class Kept(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    core = logging.getLogger(CORE_LOGGER)
    kept = Kept(logging.WARNING)
    core.addHandler(kept)
    env = await start_dev_server()
    try:
        target = env.client.service_client.config.target_host
        client = await Client.connect(target, runtime=telemetry_runtime(Settings()))
        worker = Worker(client, task_queue=f"idle-{uuid.uuid4()}", workflows=[Idle])
        running = asyncio.create_task(worker.run())
        await env.shutdown()
        deadline = time.monotonic() + 60
        while not records and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        running.cancel()
        # Its server is gone: the worker ends however it can.
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(running, 30)
    finally:
        core.removeHandler(kept)

    assert records, "no line of the core reached Python logging"
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["level"] == "warning"
    assert line["logger"].startswith(CORE_LOGGER)
    assert "retried" in line["message"]
