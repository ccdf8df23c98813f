"""A loopback SendGrid: speaks the v3 mail-send API to the real `sendgrid` client.

Every request body is validated against SendGrid's official schema
(tests/data/sendgrid_mail_v3.json), so a body the real API would reject is
rejected here too. Answers are scripted per test: 202 by default, or a queued
400 / 429 / 500 (or a stall past the client's timeout) for the next requests.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SPEC = Path(__file__).resolve().parent / "data" / "sendgrid_mail_v3.json"
MAIL_SEND_PATH = "/v3/mail/send"
TEST_API_KEY = "SG.loopback-test-key.never-to-be-seen-in-logs"


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


@dataclass
class SendGridServer:
    url: str = ""
    api_key: str = TEST_API_KEY
    # Bodies answered 2xx: what SendGrid would deliver (or sandbox-validate).
    accepted: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    message_ids: list[str] = field(default_factory=list)
    _script: deque[Scripted] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_next(self, status: int, message: str = "") -> None:
        """Queue one scripted error answer (a body still has to be schema-valid to get it)."""
        self._script.append(Scripted(status, message or f"scripted {status}"))

    def stall_next(self, seconds: float) -> None:
        """Hold the next answer longer than the client's timeout."""
        self._script.append(Scripted(202, stall_seconds=seconds))

    def _next(self) -> Scripted:
        with self._lock:
            self.requests += 1
            return self._script.popleft() if self._script else Scripted(202)

    def handle(self, authorization: str | None, raw: bytes) -> tuple[int, dict[str, str], bytes]:
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
        scripted = self._next()
        if scripted.stall_seconds:
            time.sleep(scripted.stall_seconds)
        if scripted.status >= 300:
            return _errors(scripted.status, [{"message": scripted.message, "field": None}])
        with self._lock:
            self.accepted.append(body)
        sandbox = body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable", False)
        if sandbox:
            # The real API validates without delivering and answers 200.
            return 200, {}, b""
        message_id = uuid.uuid4().hex[:22]
        self.message_ids.append(message_id)
        return 202, {"X-Message-Id": message_id}, b""


def _errors(status: int, errors: list[dict[str, Any]]) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"errors": errors}).encode()
    return status, {"Content-Type": "application/json"}, body


def _handler(server: SendGridServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != MAIL_SEND_PATH:
                status, headers, body = _errors(404, [{"message": f"no route {self.path}"}])
            else:
                status, headers, body = server.handle(self.headers.get("Authorization"), raw)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output to the tests' own

    return Handler


@pytest.fixture
def sendgrid_server() -> Iterator[SendGridServer]:
    state = SendGridServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="sendgrid-loopback", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
