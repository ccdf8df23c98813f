"""What an operator scrapes and probes: Prometheus metrics from the worker and the API
(the Temporal SDK's and Liftoff's own), and the health probes of both."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from api.app import create_app
from models.tables import EmailLedgerEntry
from observability import metrics
from observability.health import CHECK_TIMEOUT, serve_worker_probe
from records.database import Database
from records.tokens import TokenRole
from testkit.factories import REPO
from testkit.sendgrid import SendGridServer
from tests.support.api_harness import BASE_URL, ApiHarness
from tests.support.eventually import eventually_blocking
from tests.support.processes import (
    cli_runner,
    free_port,
    liftoff_environment,
    start_worker,
    stop,
)

# A Prometheus text line: name, optional {labels}, value.
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([0-9.eE+-]+|NaN)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


# LIFTOFF_MAX_CONCURRENT_WORKFLOW_TASKS and _TASK_POLLS for the worker process.
WORKFLOW_TASKS = 7
WORKFLOW_TASK_POLLS = 3


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample at `url`, by metric name."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            name, labels, value = match.groups()
            samples[name].append((dict(LABEL.findall(labels or "")), float(value)))
    return samples


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **want: str) -> float:
    return sum(
        value
        for labels, value in samples.get(name, [])
        if all(labels.get(key) == expected for key, expected in want.items())
    )


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_the_worker_serves_sdk_and_liftoff_metrics_and_its_health_probe(
    sendgrid_server: SendGridServer, temporal_address: str, tmp_path: Path
) -> None:
    metrics_address = f"127.0.0.1:{free_port()}"
    health_address = f"127.0.0.1:{free_port()}"
    environment = liftoff_environment(
        temporal_address,
        tmp_path,
        LIFTOFF_MAIL_BACKEND="sendgrid",
        SENDGRID_API_KEY=sendgrid_server.api_key,
        LIFTOFF_SENDGRID_HOST=sendgrid_server.url,
        LIFTOFF_METRICS_ADDRESS=metrics_address,
        LIFTOFF_HEALTH_ADDRESS=health_address,
        LIFTOFF_MAX_CONCURRENT_WORKFLOW_TASKS=str(WORKFLOW_TASKS),
        LIFTOFF_MAX_CONCURRENT_WORKFLOW_TASK_POLLS=str(WORKFLOW_TASK_POLLS),
    )
    # The first email meets an outage: one failed attempt, then sent on the retry.
    sendgrid_server.answer_next(503, "maintenance")
    cli = cli_runner(environment, tmp_path)
    worker = start_worker(environment, tmp_path, tmp_path / "worker.log")
    database = Database(environment["DATABASE_URL"])
    try:
        assert get(f"http://{health_address}/healthz") == (200, {"status": "ok"})
        assert get(f"http://{health_address}/readyz") == (
            200,
            {"database": "ok", "temporal": "ok"},
        )
        started = cli(
            "start",
            "--customer-id",
            "metrics-acme",
            "--name",
            "Acme",
            "--csm",
            "csm@liftoff.example",
            "--leader",
            "lead@liftoff.example",
            "--seats",
            "10",
        )
        assert started.returncode == 0, started.stderr

        def sent() -> int:
            with database.session() as session:
                rows = session.exec(
                    select(EmailLedgerEntry).where(col(EmailLedgerEntry.status) == "sent")
                ).all()
            return len(rows)

        eventually_blocking(sent, lambda n: n >= 1, what="the first email sent", timeout=60)
        url = f"http://{metrics_address}/metrics"
        samples = eventually_blocking(
            lambda: scrape(url),
            lambda s: total(s, "liftoff_emails_total", result="sent") >= 1,
            what="the sent email counted",
            timeout=20,
        )
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    finally:
        stop(worker)
        database.dispose()

    assert total(samples, "liftoff_emails_total", provider="sendgrid", result="sent") >= 1
    assert total(samples, "liftoff_emails_total", provider="sendgrid", result="unavailable") == 1
    assert (
        total(
            samples,
            "liftoff_activity_failures_total",
            activity_type="send_email",
            error_type="MailProviderUnavailable",
        )
        == 1
    )
    assert total(samples, "liftoff_timeline_entries_total", kind="transition") >= 1
    # The SDK's own, from the same endpoint: the send was attempted twice. (It counts no
    # failure for it: a provider outage is a BENIGN error, expected and retried.)
    received = total(samples, "temporal_activity_task_received_total", activity_type="send_email")
    assert received >= 2
    assert "temporal_workflow_task_execution_latency_bucket" in samples
    # The worker takes no more workflow tasks at once than its setting allows (the SDK's
    # own default is 100).
    slots = total(samples, "temporal_worker_task_slots_available", worker_type="WorkflowWorker")
    assert 0 < slots <= WORKFLOW_TASKS
    # Nor keeps more polls open for them, sticky and not (the SDK's default is 5).
    polls = total(samples, "temporal_num_pollers", poller_type="workflow_task") + total(
        samples, "temporal_num_pollers", poller_type="sticky_workflow_task"
    )
    assert 0 < polls <= WORKFLOW_TASK_POLLS


def buffered_counts(buffer: MetricBuffer) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    counts: dict[tuple[str, tuple[tuple[str, str], ...]], int] = defaultdict(int)
    for update in buffer.retrieve_updates():
        labels = tuple(sorted((str(k), str(v)) for k, v in update.attributes.items()))
        counts[(update.metric.name, labels)] += int(update.value)
    return counts


async def test_the_api_counts_intake_by_result_and_probes_its_dependencies(
    api: ApiHarness,
) -> None:
    buffer = MetricBuffer(1000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    services = dataclasses.replace(api.services, metrics=runtime.metric_meter)
    app = create_app(services)
    key = httpx.BasicAuth(api.token(TokenRole.INGEST), "")
    track = {"type": "track", "userId": "u1", "event": "login", "context": {"groupId": "nobody"}}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        batch = await http.post(
            "/v1/batch",
            auth=key,
            json={"batch": [track, {"type": "track"}, {"type": "page", "userId": "u1"}]},
        )
        not_json = await http.post(
            "/v1/track", auth=key, content=b"{", headers={"Content-Type": "application/json"}
        )
        # A source whose key was revoked: the intake alert must see it.
        revoked = await http.post("/v1/batch", auth=httpx.BasicAuth("revoked-key", ""), json={})
        live = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert batch.status_code == 200, batch.text
    assert not_json.status_code == 400
    assert revoked.status_code == 401
    counts = buffered_counts(buffer)
    intake = {
        dict(labels)["result"]: value
        for (name, labels), value in counts.items()
        if name == metrics.INTAKE_EVENTS
    }
    assert intake == {"accepted": 1, "rejected": 1, "unmatched": 1, "refused_request": 2}
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"database": "ok", "temporal": "ok"})

    # The database gone: not ready, and the answer names it and nothing more.
    broken = dataclasses.replace(
        services, database=Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(broken)), base_url=BASE_URL
    ) as http:
        unready = await http.get("/readyz")
    assert (unready.status_code, unready.json()) == (
        503,
        {"database": "unreachable", "temporal": "ok"},
    )
    assert "127.0.0.1:1" not in unready.text


@pytest.mark.parametrize("address", ["8000", "localhost", "http://x:80", "a b:1"])
def test_a_metrics_address_must_be_host_and_port(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    from settings import Settings

    monkeypatch.setenv("LIFTOFF_METRICS_ADDRESS", address)
    with pytest.raises(ValidationError, match="LIFTOFF_METRICS_ADDRESS"):
        Settings()


def test_the_sample_alert_rules_name_only_metrics_liftoff_exports() -> None:
    """docs/alerts.yml stays true when a metric is renamed."""
    import yaml  # schemathesis's dependency, a dev one here

    rules = yaml.safe_load((REPO / "docs" / "alerts.yml").read_text())["groups"][0]["rules"]
    exported = {
        f"{name}_total"
        for name in (
            metrics.TIMELINE_ENTRIES,
            metrics.VERDICTS,
            metrics.EMAILS,
            metrics.INTAKE_EVENTS,
            metrics.ACTIVITY_FAILURES,
        )
    }
    named = {name for rule in rules for name in re.findall(r"liftoff_\w+", rule["expr"])}
    assert named, "the rules name no Liftoff metric"
    assert named <= exported, named - exported
    assert all(rule["alert"].startswith("Liftoff") and rule["annotations"] for rule in rules)


class Blackhole:
    """A listener that accepts connections and never answers: a database behind a
    firewall that drops, or a server wedged mid-handshake."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self.listener.accept()[0])

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


async def test_readyz_answers_in_time_when_the_database_never_answers(
    api: ApiHarness,
) -> None:
    """psycopg alone waited 130 s, in the thread pool the API's routes use, and every
    probe added one more stuck thread."""
    blackhole = Blackhole()
    wedged = dataclasses.replace(
        api.services, database=Database(f"postgresql+psycopg://nobody@127.0.0.1:{blackhole.port}/x")
    )
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(wedged)), base_url=BASE_URL
        ) as http:
            began = time.monotonic()
            first = await asyncio.gather(*(http.get("/readyz") for _ in range(10)))
            second = await http.get("/readyz")
            took = time.monotonic() - began
            route = await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 1)
    finally:
        blackhole.close()

    for answer in [*first, second]:
        assert (answer.status_code, answer.json()) == (
            503,
            {"database": "unreachable", "temporal": "ok"},
        )
    assert took < 3 * CHECK_TIMEOUT.total_seconds()
    # One check at a time, whoever asks: one connection, not one per probe.
    assert len(blackhole.accepted) == 1
    assert route == "free"  # the routes' thread pool holds no stuck check


def test_the_worker_probe_survives_probers_that_give_up_or_send_nothing(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("observability.health.PROBE_REQUEST_SECONDS", 0.5)

    def slow_ready() -> dict[str, str]:
        time.sleep(1)
        return {"database": "ok", "temporal": "ok"}

    address = f"127.0.0.1:{free_port()}"
    with serve_worker_probe(address, serving=lambda: True, ready=slow_ready):
        for _ in range(3):  # as a kubelet with its 1 s default gives up
            with pytest.raises(TimeoutError):
                urllib.request.urlopen(f"http://{address}/readyz", timeout=0.2)
        idle = socket.create_connection(("127.0.0.1", int(address.rpartition(":")[2])))
        idle.settimeout(5)
        closed_by_server = idle.recv(1) == b""  # it sent nothing, and was let go
        idle.close()
        time.sleep(1.5)  # the abandoned answers are written to closed sockets
        assert get(f"http://{address}/healthz") == (200, {"status": "ok"})

    assert closed_by_server
    assert "Traceback" not in capfd.readouterr().err
