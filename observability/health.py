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
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine, text
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from records.database import Database

log = logging.getLogger("liftoff.health")

# A probe answers within this, whatever hangs behind it.
CHECK_TIMEOUT = timedelta(seconds=3)
# A check's answer serves the probes of this long after it began: a flood of probes
# costs one check a second.
ANSWER_KEPT_SECONDS = 1.0
# A check still running after this is given up for a new one: a server that hangs after
# accepting (or a network that froze a connection) can hold a check's thread for minutes.
CHECK_GIVEN_UP_SECONDS = 15.0
# How long a client of the worker's probe may take to send its request.
PROBE_REQUEST_SECONDS = 5


def database_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
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


class Readiness:
    """The readiness checks of one process: what the database and Temporal answered.

    One check of each runs at a time, and its answer serves the probes of the next
    second. The database check runs in a thread of its own, never in the pool the API's
    routes use: a database that accepts connections and never answers holds that one
    thread (until psycopg's connect timeout), and the probes asked meanwhile answer
    "unreachable" after CHECK_TIMEOUT instead of piling up more stuck threads.
    """

    def __init__(self, database: Database, client: Client) -> None:
        # A new connection per check: pooled ones a frozen server left hanging would keep
        # the probe failing after the database is back.
        self._engine = database.unpooled_engine()
        self._client = client
        self._lock = threading.Lock()
        self._database_check: tuple[float, Future[bool]] | None = None
        self._temporal_check: tuple[float, asyncio.Task[bool]] | None = None

    async def check(self) -> dict[str, str]:
        """Each dependency's answer, "ok" or "unreachable", within CHECK_TIMEOUT."""
        database_ok, temporal_ok = await asyncio.gather(
            self._answer("database", asyncio.wrap_future(self._current_database_check())),
            self._answer("Temporal", self._current_temporal_check()),
        )
        return {
            "database": "ok" if database_ok else "unreachable",
            "temporal": "ok" if temporal_ok else "unreachable",
        }

    def _current_database_check(self) -> Future[bool]:
        with self._lock:
            current = self._database_check
            if current is None or _stale(*current):
                check: Future[bool] = Future()
                threading.Thread(
                    target=_run_into,
                    args=(check, database_reachable, self._engine),
                    name="liftoff-readiness",
                    daemon=True,
                ).start()
                current = self._database_check = (time.monotonic(), check)
            return current[1]

    def _current_temporal_check(self) -> asyncio.Task[bool]:
        current = self._temporal_check
        loop = asyncio.get_running_loop()
        if current is None or _stale(*current) or current[1].get_loop() is not loop:
            current = (time.monotonic(), loop.create_task(temporal_reachable(self._client)))
            self._temporal_check = current
        return current[1]

    @staticmethod
    async def _answer(what: str, check: asyncio.Future[bool]) -> bool:
        try:
            # Shielded: the check goes on for the probes that come after this one.
            return await asyncio.wait_for(asyncio.shield(check), CHECK_TIMEOUT.total_seconds())
        except TimeoutError:
            log.warning("readiness: %s did not answer within %s", what, CHECK_TIMEOUT)
            return False
        except Exception as err:
            log.warning("readiness: checking %s failed: %s", what, type(err).__name__)
            return False


def _stale(began: float, check: Future[bool] | asyncio.Task[bool]) -> bool:
    age = time.monotonic() - began
    return age > CHECK_GIVEN_UP_SECONDS or (check.done() and age > ANSWER_KEPT_SECONDS)


def _run_into(future: Future[bool], check: Callable[[Engine], bool], engine: Engine) -> None:
    try:
        future.set_result(check(engine))
    except BaseException as err:  # never left unanswered: the next probe would wait on it
        future.set_exception(err)


def worker_readiness(readiness: Readiness, loop: asyncio.AbstractEventLoop) -> dict[str, str]:
    """Readiness.check() from the probe's thread, on the loop the worker's client lives on."""
    future = asyncio.run_coroutine_threadsafe(readiness.check(), loop)
    try:
        # The checks are bounded; this only covers a loop too busy to run them.
        return future.result(timeout=CHECK_TIMEOUT.total_seconds() + 1)
    except Exception:
        future.cancel()
        return {"worker": "busy: the readiness checks did not run in time"}


class _ProbeServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A prober that gave up (its timeout is often 1 s) before the answer: one log
        # line, not a traceback printed past the JSON log.
        log.debug("probe client went away", exc_info=True)


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
        # A client that sends nothing gives its thread back after this.
        timeout = PROBE_REQUEST_SECONDS

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
