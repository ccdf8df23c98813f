"""What commands connect to: Temporal through the client layer, the database for records."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from client.connection import connect_client
from client.onboarding import OnboardingClient
from settings import Settings

if TYPE_CHECKING:
    from records.database import Database


async def onboarding_client(settings: Settings) -> OnboardingClient:
    return OnboardingClient(await connect_client(settings), settings.task_queue)


@contextmanager
def database(settings: Settings) -> Iterator[Database]:
    """The application database, for commands that read or write records, not state."""
    # Imported here so the commands that only talk to Temporal stay quick to start.
    from records.database import Database

    database = Database(settings.database_url)
    try:
        database.migrate()
        yield database
    finally:
        database.dispose()
