"""Connecting to Temporal from any entry point, with Liftoff's data converter."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import TLSConfig

from client.codec import LiftoffCodec
from client.payload_storage import external_storage
from client.payloads import liftoff_data_converter
from observability.tracing import current_provider, temporal_interceptors
from settings import Settings


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS when asked for, or by default when an API key or certificate is given."""
    has_files = any(
        path is not None
        for path in (
            settings.temporal_tls_client_cert_path,
            settings.temporal_tls_client_key_path,
            settings.temporal_tls_server_ca_cert_path,
        )
    )
    enabled = settings.temporal_tls
    if enabled is None:
        enabled = has_files or settings.temporal_api_key is not None
    if not enabled:
        return False
    return TLSConfig(
        server_root_ca_cert=_read(settings.temporal_tls_server_ca_cert_path),
        client_cert=_read(settings.temporal_tls_client_cert_path),
        client_private_key=_read(settings.temporal_tls_client_key_path),
        domain=settings.temporal_tls_server_name,
    )


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads through Liftoff's codec: compressed when the setting says so,
    encrypted when keys are set, and a pass-through otherwise; a playbook stored by
    reference when LIFTOFF_PLAYBOOKS_BY_REFERENCE says so (client/payload_storage.py).

    With keys, failure messages and stack traces are encrypted too: they can quote
    what people typed (a refused field, a recipient).
    """
    by_reference = settings.playbooks_by_reference
    codec = LiftoffCodec.from_keys(
        settings.encryption_key_ring(),
        compress=settings.payload_compression,
        by_reference_in_clear=by_reference,
    )
    converter = dataclasses.replace(
        liftoff_data_converter,
        payload_codec=codec,
        # Always there to read references back; it stores only when the setting says.
        external_storage=external_storage(settings.database_url, stores=by_reference),
    )
    if codec.key_id is None:
        return converter
    return dataclasses.replace(
        converter, failure_converter_class=DefaultFailureConverterWithEncodedAttributes
    )


# One runtime per metrics address in a process ("" for none): `make run` connects the
# worker and the API separately, and a second runtime could not bind the same address.
_runtimes: dict[str, Runtime] = {}

# The SDK core's own log lines (a poll retried while Temporal is out of reach, say), at
# the SDK's default levels, go through Python logging: as JSON with LIFTOFF_LOG_FORMAT=json,
# not as colored text past the JSON lines.
CORE_LOGGER = "temporalio.core"
_CORE_LOGGING = LoggingConfig(
    filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
    forwarding=LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER)),
)


def telemetry_runtime(settings: Settings) -> Runtime:
    """The Temporal runtime of a service (the worker, the API): Prometheus metrics at
    LIFTOFF_METRICS_ADDRESS when set, and the core's logs through Python logging."""
    address = settings.metrics_address
    runtime = _runtimes.get(address or "")
    if runtime is None:
        metrics = (
            PrometheusConfig(bind_address=address, counters_total_suffix=True) if address else None
        )
        try:
            runtime = Runtime(telemetry=TelemetryConfig(metrics=metrics, logging=_CORE_LOGGING))
        except Exception as err:  # the core says only why, e.g. the address is taken
            raise RuntimeError(
                f"cannot serve metrics at LIFTOFF_METRICS_ADDRESS={address}: {err}"
            ) from err
        _runtimes[address or ""] = runtime
    return runtime


async def connect_client(settings: Settings, *, serve_metrics: bool = False) -> Client:
    """A client with Liftoff's data converter. Long-running services (the worker, the API)
    pass `serve_metrics`; a CLI command that lives a second must not take the port."""
    api_key = settings.temporal_api_key
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key.get_secret_value() if api_key is not None else None,
        tls=tls_config(settings),
        data_converter=data_converter(settings),
        runtime=telemetry_runtime(settings) if serve_metrics else None,
        interceptors=temporal_interceptors(current_provider()),
    )


def exit_without_finalizing(code: int | None) -> None:
    """Leave a short-lived process once its work is done, without interpreter teardown.

    The Temporal client's native threads can outlive the event loop and abort the
    process during finalization (temporalio/sdk-python#300; seen here in the bench
    scripts as SIGABRT, "PyGILState_Release", after every figure was printed), so the
    CLI and the bench scripts flush their output and exit directly."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
