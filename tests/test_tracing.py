"""One CSM action is one trace: the HTTP request, the Temporal update, the workflow's
handler, the activities it runs and their SQL, all under one trace id."""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from client.onboarding import OnboardingClient
from observability.tracing import (
    configure_tracing,
    current_provider,
    temporal_interceptors,
    trace_database,
    trace_http,
)
from records.database import Database
from records.tokens import TokenRole, create_token
from testkit.factories import make_handoff
from tests.support.api_harness import BASE_URL, ApiHarness
from tests.support.eventually import eventually
from tests.support.temporal import onboarding_worker

CSM = "csm@liftoff.example"


def by_trace(spans: tuple[ReadableSpan, ...]) -> dict[int, list[ReadableSpan]]:
    traces: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        assert span.context is not None
        traces[span.context.trace_id].append(span)
    return traces


async def test_a_csm_event_is_one_trace_from_http_to_the_database(
    api: ApiHarness, local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    # The process's provider, as the worker's and the API's entry points install it: the
    # workflow's spans come from the global one. Once per test session.
    provider = configure_tracing("liftoff-test", exporter=exporter)
    assert provider is not None and provider is current_provider()
    # Its own database, so the harness's engine stays uninstrumented for other tests.
    database = Database(f"sqlite:///{tmp_path / 'traced.db'}")
    database.migrate()
    trace_database(database.engine, provider)
    config = local_env.client.config()
    config["interceptors"] = list(temporal_interceptors(provider))
    client = Client(**config)
    task_queue = f"traced-{uuid.uuid4()}"
    services = dataclasses.replace(
        api.services, onboarding=OnboardingClient(client, task_queue), database=database
    )
    app = create_app(services)
    trace_http(app, provider)
    token, _ = create_token(database, name="csm", role=TokenRole.CSM, csm=CSM)
    handoff = make_handoff(csm=CSM)
    try:
        async with (
            onboarding_worker(client, task_queue, database, tmp_path / "outbox"),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url=BASE_URL,
                headers={"Authorization": f"Bearer {token}"},
            ) as http,
        ):
            started = await http.post("/api/customers", json=handoff.model_dump(mode="json"))
            assert started.status_code == 201, started.text
            await eventually(
                lambda: http.get(f"/api/customers/{handoff.customer_id}"),
                lambda r: r.json().get("pending_side_effects") == 0,
                what="the start settled",
            )
            exporter.clear()
            held = await http.post(
                f"/api/customers/{handoff.customer_id}/events",
                json={"kind": "kickoff_held", "held_on": "2026-12-01"},
            )
            assert held.status_code == 200, held.text
            await eventually(
                lambda: http.get(f"/api/customers/{handoff.customer_id}"),
                lambda r: r.json().get("pending_side_effects") == 0,
                what="the kickoff's records written",
            )
    finally:
        database.dispose()
        assert provider.force_flush()
        # The provider stays the process's; what later tests trace is dropped.
        exporter.shutdown()

    spans = exporter.get_finished_spans()
    [request] = [
        span
        for span in spans
        if span.name.startswith("POST /api/customers/") and span.parent is None
    ]
    assert request.context is not None
    traces = by_trace(spans)
    request_trace = {span.name for span in traces[request.context.trace_id]}
    assert "StartWorkflowUpdate:record_event" in request_trace, request_trace
    [update_call] = [
        s for s in traces[request.context.trace_id] if s.name.startswith("StartWorkflowUpdate")
    ]
    assert update_call.context is not None

    # The SDK's model: a handler joins the workflow's trace and links to its caller.
    [handled] = [span for span in spans if span.name == "HandleUpdate:record_event"]
    assert handled.context is not None
    assert [link.context.span_id for link in handled.links] == [update_call.context.span_id]
    workflow_trace = traces[handled.context.trace_id]
    names = {span.name for span in workflow_trace}
    # The event's timeline entry and task closing are one batch of store writes.
    assert "RunActivity:store_batch" in names, names
    # The activity's SQL is a child of the activity's span, in the same trace.
    runs = {span.context.span_id for span in workflow_trace if span.name.startswith("RunActivity")}
    sql = [
        span
        for span in workflow_trace
        if span.name.split(" ")[0] in ("INSERT", "UPDATE", "SELECT")
        and span.parent is not None
        and span.parent.span_id in runs
    ]
    assert any(span.name.startswith("INSERT") for span in sql), sorted(s.name for s in sql)


def test_tracing_is_off_unless_the_standard_environment_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from observability.tracing import tracing_requested

    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert not tracing_requested()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert tracing_requested()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not tracing_requested()
