"""Traces: one CSM action is one trace, from the HTTP request through the Temporal
update, the workflow and its activities, to the database and the mail provider.

Libraries do the work: the Temporal SDK's `TracingInterceptor` (client calls,
workflow handlers and activities, propagated in Temporal headers), and
OpenTelemetry's instrumentations for FastAPI, SQLAlchemy and urllib (the
SendGrid client). Off unless the standard environment asks for it
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, and
`OTEL_TRACES_EXPORTER` not `none`); the OTLP/HTTP exporter then reads every
other `OTEL_*` variable itself (headers, timeout, `OTEL_SERVICE_NAME`, ...).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

# The instrumentations are imported where used: a CLI command, which never traces,
# should not pay for loading them.
if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.engine import Engine
    from temporalio.client import Interceptor

log = logging.getLogger("liftoff.tracing")

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_requested() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    return exporter != "none" and any(os.environ.get(name) for name in _ENDPOINTS)


# The process's provider: configured once by its entry point (the worker, `liftoff
# serve`, or both in `make run`), None while tracing is off.
_provider: TracerProvider | None = None


def current_provider() -> TracerProvider | None:
    return _provider


def configure_tracing(service: str, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Install the process's tracer provider when asked for (or given an exporter);
    None leaves OpenTelemetry's no-op tracer in place. Once per process."""
    global _provider
    if _provider is not None:
        return _provider
    if exporter is None:
        if not tracing_requested():
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    from opentelemetry import trace
    from opentelemetry.instrumentation.urllib import URLLibInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # The SendGrid client speaks urllib: its calls become spans of the send activity.
    URLLibInstrumentor().instrument(tracer_provider=provider)
    log.info("tracing on", extra={"service": name})
    _provider = provider
    return provider


def temporal_interceptors(provider: TracerProvider | None) -> Sequence[Interceptor]:
    """The client's interceptors: workers built on the client inherit them."""
    if provider is None:
        return ()
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return (TracingInterceptor(provider.get_tracer("liftoff.temporal")),)


def trace_database(engine: Engine, provider: TracerProvider | None) -> None:
    if provider is not None:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        # Its declared range stops below SQLAlchemy 2.1, which it traces all the same.
        SQLAlchemyInstrumentor().instrument(
            engine=engine, tracer_provider=provider, skip_dep_check=True
        )


def trace_http(app: FastAPI, provider: TracerProvider | None) -> None:
    if provider is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
