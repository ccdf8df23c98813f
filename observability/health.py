"""Health probes: is the process alive, and can it reach what it needs.

`/healthz` answers while the process serves (liveness: restart it if not);
`/readyz` also checks the database and Temporal (readiness: send it work only
then). The API serves both on its own port (api/routes/health.py); the worker,
which serves no HTTP otherwise, serves them on LIFTOFF_HEALTH_ADDRESS from a
small thread here. Answers name what failed, never a connection string.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import text
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from records.database import Database

log = logging.getLogger("liftoff.health")

# A probe answers within this, whatever hangs behind it.
CHECK_TIMEOUT = timedelta(seconds=3)


def database_reachable(database: Database) -> bool:
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as err:
        log.warning("readiness: the database did not answer: %s", type(err).__name__)
        return False
    return True


async def temporal_reachable(client: Client) -> bool:
    try:
        await client.workflow_service.get_system_info(GetSystemInfoRequest(), timeout=CHECK_TIMEOUT)
    except Exception as err:
        log.warning("readiness: Temporal did not answer: %s", type(err).__name__)
        return False
    return True


def worker_readiness(
    database: Database, client: Client, loop: asyncio.AbstractEventLoop
) -> dict[str, str]:
    """readiness() from the probe's thread, on the loop the worker's client lives on."""
    future = asyncio.run_coroutine_threadsafe(readiness(database, client), loop)
    try:
        return future.result(timeout=2 * CHECK_TIMEOUT.total_seconds())
    except Exception:
        future.cancel()
        return {"database": "unknown", "temporal": "unknown"}


async def readiness(database: Database, client: Client) -> dict[str, str]:
    """What each dependency answered: "ok" or "unreachable"."""
    database_ok, temporal_ok = await asyncio.gather(
        asyncio.to_thread(database_reachable, database), temporal_reachable(client)
    )
    return {
        "database": "ok" if database_ok else "unreachable",
        "temporal": "ok" if temporal_ok else "unreachable",
    }


class _ProbeServer(ThreadingHTTPServer):
    daemon_threads = True


class _ProbeServer6(_ProbeServer):
    address_family = socket.AF_INET6


@contextmanager
def serve_worker_probe(
    address: str,
    *,
    serving: Callable[[], bool],
    ready: Callable[[], dict[str, str]],
) -> Iterator[str]:
    """Serve /healthz and /readyz at host:port until the block ends; yields the URL.

    `serving` says whether the worker still runs (False once it shuts down);
    `ready` checks its dependencies (called from the probe's thread).
    """
    host, _, port = address.rpartition(":")

    class Probe(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                alive = serving()
                self._answer(200 if alive else 503, {"status": "ok" if alive else "stopping"})
            elif self.path == "/readyz":
                checks = ready() if serving() else {"worker": "stopping"}
                healthy = all(value == "ok" for value in checks.values())
                self._answer(200 if healthy else 503, checks)
            else:
                self._answer(404, {"detail": "the probe serves /healthz and /readyz"})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would drown the worker's log

    kind = _ProbeServer6 if host.startswith("[") else _ProbeServer
    server = kind((host.strip("[]"), int(port)), Probe)
    thread = threading.Thread(target=server.serve_forever, name="liftoff-health", daemon=True)
    thread.start()
    try:
        yield f"http://{address}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
