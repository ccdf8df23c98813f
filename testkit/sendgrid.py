"""A loopback SendGrid: speaks the v3 mail-send API to the real `sendgrid` client.

Every request body is validated against SendGrid's official schema
(testkit/data/sendgrid_mail_v3.json), so a body the real API would reject is
rejected here too. Answers are scripted per test: 202 by default, or a queued
400 / 429 / 500 (or a stall past the client's timeout) for the next requests.

For crash tests the server can also hold requests in flight until released. A
request whose client is gone by the time it would be answered (it timed out, or
its process was killed) is counted in `abandoned`, not `accepted`: the server
plays a provider that had not committed to the message yet. The opposite case,
the provider committed and its client never heard: `on_accept` runs after a
message is accepted and before the answer (a test kills the worker there), and
`drop_after_accept_next` closes the connection unanswered.

Scheduled sends as SendGrid's Cancel Scheduled Sends API has them: `POST
/v3/mail/batch` opens a batch id, a mail-send may name it with a `send_at`,
`POST /v3/user/scheduled_sends` cancels a batch (refused within 10 minutes of
a message's send_at, and past 10 cancellations held at once), `GET` and
`DELETE /v3/user/scheduled_sends/{batch_id}` read and drop a cancellation.
`delivered` is what recipients would get: the accepted messages outside
cancelled batches. `answer_scheduled_sends_next` scripts an error for the next
request of one method there (a 500 on a DELETE, say).
"""

from __future__ import annotations

import json
import secrets
import select
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema

SPEC = Path(__file__).resolve().parent / "data" / "sendgrid_mail_v3.json"
MAIL_SEND_PATH = "/v3/mail/send"
BATCH_PATH = "/v3/mail/batch"
SCHEDULED_SENDS_PATH = "/v3/user/scheduled_sends"
# SendGrid's own limits on cancelling scheduled batches.
CANCEL_CUTOFF_SECONDS = 600
MAX_CANCELLATIONS = 10
# Made per run, never written down: a literal would look like a leaked SendGrid key.
TEST_API_KEY = f"loopback-{secrets.token_urlsafe(24)}"


def _resolve(node: Any, spec: dict[str, Any]) -> Any:
    """Inline local `#/...` $refs (the spec has no recursive ones)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(target, spec)
        return {key: _resolve(value, spec) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, spec) for item in node]
    return node


def mail_send_schema() -> dict[str, Any]:
    spec = json.loads(SPEC.read_text())
    body = spec["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]
    schema: dict[str, Any] = _resolve(body["schema"], spec)
    # Known spec bug: top-level custom_args is typed as a string; the API and the
    # client send an object of string values.
    schema["properties"]["custom_args"] = {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    return schema


VALIDATOR = jsonschema.Draft202012Validator(
    mail_send_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


@dataclass
class Scripted:
    status: int
    message: str = ""
    stall_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SendGridServer:
    url: str = ""
    api_key: str = TEST_API_KEY
    # Bodies answered 2xx: what SendGrid would deliver (or sandbox-validate).
    accepted: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    message_ids: list[str] = field(default_factory=list)
    # Valid bodies whose client vanished before the answer: never accepted.
    abandoned: list[dict[str, Any]] = field(default_factory=list)
    # Bodies of the requests waiting in `hold` mode right now.
    held: list[dict[str, Any]] = field(default_factory=list)
    _script: deque[Scripted] = field(default_factory=deque)
    # The answer to a request nothing is scripted for; None accepts it.
    _standing: Scripted | None = None
    # Scripted answers to the scheduled-sends API, by method (POST, GET, DELETE).
    _scheduled_script: dict[str, deque[Scripted]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition = field(init=False)
    _holding: bool = False
    # Connections accepted and not yet closed, the held ones included.
    _open_connections: int = 0
    # Batch ids opened, and the cancellations held now (batch id -> status).
    batches: set[str] = field(default_factory=set)
    cancellations: dict[str, str] = field(default_factory=dict)
    # Every batch ever cancelled, dropped cancellations included.
    cancelled: set[str] = field(default_factory=set)
    # Called with each accepted body before its answer goes out.
    on_accept: Callable[[dict[str, Any]], None] | None = None
    _drop_after_accept: int = 0

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    def hold(self) -> None:
        """Keep every valid request from now on waiting, unanswered, until `release`."""
        with self._lock:
            self._holding = True

    def release(self) -> None:
        """Answer the held requests (those whose client is still there) and stop holding."""
        with self._changed:
            self._holding = False
            self._changed.notify_all()

    def wait_until_held(
        self, enough: Callable[[list[dict[str, Any]]], bool], timeout: float
    ) -> bool:
        """True once the held bodies are `enough`, False if that took longer than `timeout`."""
        with self._changed:
            return self._changed.wait_for(lambda: enough(list(self.held)), timeout)

    def wait_until_settled(self, timeout: float) -> bool:
        """True once every open connection is a held request: none is still arriving or
        being answered. False if that took longer than `timeout`."""
        with self._changed:
            return self._changed.wait_for(lambda: self._open_connections == len(self.held), timeout)

    def _count_connection(self, change: int) -> None:
        with self._changed:
            self._open_connections += change
            self._changed.notify_all()

    def answer_next(
        self, status: int, message: str = "", headers: dict[str, str] | None = None
    ) -> None:
        """Queue one scripted error answer (a body still has to be schema-valid to get it)."""
        self._script.append(
            Scripted(status, message or f"scripted {status}", headers=headers or {})
        )

    def answer_always(self, status: int, message: str = "") -> None:
        """Answer every request nothing is scripted for with this error: an outage that
        outlasts any retry."""
        with self._lock:
            self._standing = Scripted(status, message or f"scripted {status}")

    def answer_scheduled_sends_next(
        self, method: str, status: int, message: str = "", headers: dict[str, str] | None = None
    ) -> None:
        """Queue one error answer to the next scheduled-sends request made with `method`."""
        with self._lock:
            self._scheduled_script.setdefault(method, deque()).append(
                Scripted(status, message or f"scripted {status}", headers=headers or {})
            )

    def _scripted_scheduled_send(self, method: str) -> tuple[int, dict[str, str], bytes] | None:
        with self._lock:
            queued = self._scheduled_script.get(method)
            scripted = queued.popleft() if queued else None
        if scripted is None:
            return None
        status, headers, payload = _errors(scripted.status, [{"message": scripted.message}])
        return status, {**headers, **scripted.headers}, payload

    def drop_after_accept_next(self, times: int = 1) -> None:
        """Accept the next messages, then close their connections unanswered."""
        with self._lock:
            self._drop_after_accept += times

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """What recipients get: accepted messages outside a cancelled batch."""
        with self._lock:
            return [body for body in self.accepted if body.get("batch_id") not in self.cancelled]

    def open_batch(self, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        if authorization != f"Bearer {self.api_key}":
            return _errors(401, [{"message": "The provided authorization grant is invalid"}])
        batch_id = uuid.uuid4().hex
        with self._lock:
            self.batches.add(batch_id)
        return (
            201,
            {"Content-Type": "application/json"},
            json.dumps({"batch_id": batch_id}).encode(),
        )

    def cancel(self, authorization: str | None, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        if authorization != f"Bearer {self.api_key}":
            return _errors(401, [{"message": "The provided authorization grant is invalid"}])
        try:
            body = json.loads(raw)
            batch_id, status = str(body["batch_id"]), str(body["status"])
        except (ValueError, KeyError, TypeError):
            return _errors(400, [{"message": "batch_id and status are required"}])
        scripted = self._scripted_scheduled_send("POST")
        if scripted is not None:
            return scripted
        if status not in ("cancel", "pause"):
            return _errors(400, [{"field": "status", "message": "status must be cancel or pause"}])
        with self._lock:
            if batch_id not in self.batches:
                return _errors(400, [{"field": "batch_id", "message": "invalid batch id"}])
            if batch_id in self.cancellations:
                return _errors(400, [{"field": "batch_id", "message": "batch id already exists"}])
            if len(self.cancellations) >= MAX_CANCELLATIONS:
                return _errors(400, [{"message": "max limit reached"}])
            due = [
                int(message["send_at"])
                for message in self.accepted
                if message.get("batch_id") == batch_id and "send_at" in message
            ]
            if due and min(due) - time.time() < CANCEL_CUTOFF_SECONDS:
                return _errors(
                    400, [{"message": "too late: a batch cancels until 10 minutes before send_at"}]
                )
            self.cancellations[batch_id] = status
            if status == "cancel":
                self.cancelled.add(batch_id)
        payload = json.dumps({"batch_id": batch_id, "status": status}).encode()
        return 201, {"Content-Type": "application/json"}, payload

    def cancellation(
        self, authorization: str | None, batch_id: str, method: str
    ) -> tuple[int, dict[str, str], bytes]:
        if authorization != f"Bearer {self.api_key}":
            return _errors(401, [{"message": "The provided authorization grant is invalid"}])
        scripted = self._scripted_scheduled_send(method)
        if scripted is not None:
            return scripted
        with self._lock:
            if method == "DELETE":
                if self.cancellations.pop(batch_id, None) is None:
                    return _errors(404, [{"message": "not found"}])
                return 204, {}, b""
            status = self.cancellations.get(batch_id)
        found = [{"batch_id": batch_id, "status": status}] if status else []
        return 200, {"Content-Type": "application/json"}, json.dumps(found).encode()

    def stall_next(self, seconds: float) -> None:
        """Hold the next answer longer than the client's timeout."""
        self._script.append(Scripted(202, stall_seconds=seconds))

    def _next(self) -> Scripted:
        with self._lock:
            self.requests += 1
            if self._script:
                return self._script.popleft()
            return self._standing or Scripted(202)

    def _wait_while_holding(self, body: dict[str, Any]) -> None:
        with self._changed:
            if not self._holding:
                return
            self.held.append(body)
            self._changed.notify_all()
            self._changed.wait_for(lambda: not self._holding)
            self.held.remove(body)

    def handle(
        self,
        authorization: str | None,
        raw: bytes,
        client_gone: Callable[[], bool] = lambda: False,
    ) -> tuple[int, dict[str, str], bytes] | None:
        """The answer to one request; None when its client is gone and gets none."""
        if authorization != f"Bearer {self.api_key}":
            return _errors(401, [{"message": "The provided authorization grant is invalid"}])
        try:
            body = json.loads(raw)
        except ValueError:
            return _errors(400, [{"message": "Bad Request", "field": None}])
        problems = [
            {"message": error.message, "field": ".".join(str(p) for p in error.absolute_path)}
            for error in VALIDATOR.iter_errors(body)
        ]
        if problems:
            return _errors(400, problems)
        if "batch_id" in body:
            with self._lock:
                known = body["batch_id"] in self.batches
            if not known:
                return _errors(400, [{"field": "batch_id", "message": "invalid batch id"}])
            if "send_at" in body and int(body["send_at"]) > time.time() + 72 * 3600:
                return _errors(400, [{"field": "send_at", "message": "more than 72 hours ahead"}])
        scripted = self._next()
        self._wait_while_holding(body)
        if scripted.stall_seconds:
            time.sleep(scripted.stall_seconds)
        if scripted.status >= 300:
            status, headers, payload = _errors(
                scripted.status, [{"message": scripted.message, "field": None}]
            )
            return status, {**headers, **scripted.headers}, payload
        sandbox = body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable", False)
        message_id = uuid.uuid4().hex[:22]
        with self._lock:
            if client_gone():
                self.abandoned.append(body)
                return None
            self.accepted.append(body)
            if not sandbox:
                self.message_ids.append(message_id)
            dropped = self._drop_after_accept > 0
            self._drop_after_accept -= dropped
        if self.on_accept is not None:
            self.on_accept(body)
        if dropped:
            return None
        if sandbox:
            # The real API validates without delivering and answers 200.
            return 200, {}, b""
        return 202, {"X-Message-Id": message_id}, b""


def _errors(status: int, errors: list[dict[str, Any]]) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"errors": errors}).encode()
    return status, {"Content-Type": "application/json"}, body


def _handler(server: SendGridServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            authorization = self.headers.get("Authorization")
            answer: tuple[int, dict[str, str], bytes] | None
            if self.path == MAIL_SEND_PATH:
                answer = server.handle(authorization, raw, self._client_gone)
            elif self.path == BATCH_PATH:
                answer = server.open_batch(authorization)
            elif self.path == SCHEDULED_SENDS_PATH:
                answer = server.cancel(authorization, raw)
            else:
                answer = _errors(404, [{"message": f"no route {self.path}"}])
            self._answer(answer)

        def do_GET(self) -> None:
            self._cancellation("GET")

        def do_DELETE(self) -> None:
            self._cancellation("DELETE")

        def _cancellation(self, method: str) -> None:
            prefix = f"{SCHEDULED_SENDS_PATH}/"
            if not self.path.startswith(prefix):
                self._answer(_errors(404, [{"message": f"no route {self.path}"}]))
                return
            batch_id = self.path.removeprefix(prefix)
            self._answer(server.cancellation(self.headers.get("Authorization"), batch_id, method))

        def _answer(self, answer: tuple[int, dict[str, str], bytes] | None) -> None:
            if answer is None:
                self.close_connection = True
                return
            status, headers, body = answer
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (timeout tests)

        def _client_gone(self) -> bool:
            """The client closed its end: it reads as end-of-file (or a reset)."""
            connection: socket.socket = self.connection
            readable, _, _ = select.select([connection], [], [], 0)
            if not readable:
                return False
            try:
                return connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output to the tests' own

    return Handler


class _LoopbackHTTPServer(ThreadingHTTPServer):
    """Counts connections from accept to close, so a test can tell when none is arriving."""

    daemon_threads = True

    def __init__(self, state: SendGridServer) -> None:
        super().__init__(("127.0.0.1", 0), _handler(state))
        self.state = state

    def process_request(self, request: Any, client_address: Any) -> None:
        self.state._count_connection(+1)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        # Called once for every request process_request took, whatever happened to it.
        try:
            super().shutdown_request(request)
        finally:
            self.state._count_connection(-1)


@contextmanager
def serve() -> Iterator[SendGridServer]:
    """A loopback SendGrid on a free port, for as long as the block lasts."""
    state = SendGridServer()
    httpd = _LoopbackHTTPServer(state)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="sendgrid-loopback", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release()  # nothing left waiting on a test that ended early
        httpd.shutdown()
        httpd.server_close()
        thread.join()
