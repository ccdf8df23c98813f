"""Encryption end to end, as operators run it: the CLI and `python worker.py` with keys, a
worker started without the key, `liftoff codec-server`, and Temporal's own `temporal` CLI
exporting the history with and without the codec endpoint."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from models import visibility
from testkit.factories import REPO
from testkit.temporal import venv_binary
from tests.support.eventually import eventually_blocking
from tests.support.processes import (
    COMMAND_TIMEOUT,
    cli_runner,
    free_port,
    liftoff_environment,
    start_worker,
    stop,
    wait_for,
)

pytestmark = pytest.mark.e2e

KEY_ID = "e2e-2026"
CONTACT_EMAIL = "zora.quill@hidden-customer.example"
CONTACT_NAME = "Zora Quillfeather"
CUSTOMER_NAME = "Hidden Customer KK"
TOKEN = f"codec-{secrets.token_urlsafe(24)}"


def temporal_show(address: str, workflow_id: str, *codec: str) -> subprocess.CompletedProcess[str]:
    """`temporal workflow show --output json`: the history as an operator exports it."""
    return subprocess.run(
        [
            venv_binary("temporal"),
            "workflow",
            "show",
            "--address",
            address,
            "--workflow-id",
            workflow_id,
            "--output",
            "json",
            *codec,
        ],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )


def in_clear(exported: str) -> str:
    """The export and every base64 string in it decoded: what reading it without a key shows."""
    texts = [exported]

    def visit(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, str):
            try:
                texts.append(base64.b64decode(value, validate=True).decode("utf-8", "replace"))
            except ValueError:
                pass

    visit(json.loads(exported))
    return "\n".join(texts)


def test_a_worker_without_the_key_fails_visibly_and_the_codec_server_decodes(
    temporal_address: str, tmp_path: Path
) -> None:
    entry = f"{KEY_ID}:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    keyed = liftoff_environment(temporal_address, tmp_path, LIFTOFF_ENCRYPTION_KEYS=entry)
    keyless = {k: v for k, v in keyed.items() if k != "LIFTOFF_ENCRYPTION_KEYS"}
    customer = f"sealed-{uuid.uuid4().hex[:8]}"
    workflow_id = visibility.workflow_id_for(customer)
    cli, keyless_cli = cli_runner(keyed, tmp_path), cli_runner(keyless, tmp_path)

    started = cli(
        "start",
        "--customer-id",
        customer,
        "--name",
        CUSTOMER_NAME,
        "--csm",
        "csm@liftoff.example",
        "--leader",
        "leader@liftoff.example",
        "--contact",
        f"decision_maker:{CONTACT_NAME} <{CONTACT_EMAIL}>",
        "--seats",
        "10",
        "--purpose",
        "A",
    )
    assert started.returncode == 0, started.stderr

    # A worker without the key: its first workflow task fails, loudly, naming the key.
    log = tmp_path / "keyless-worker.log"
    worker = start_worker(keyless, tmp_path, log)
    try:
        eventually_blocking(
            log.read_text,
            lambda text: f"key '{KEY_ID}'" in text,
            what="the keyless worker's log naming the key",
            timeout=30,
        )
        history = eventually_blocking(
            lambda: temporal_show(temporal_address, workflow_id).stdout,
            lambda text: "WORKFLOW_TASK_FAILED" in text,
            what="the failed workflow task in the history",
            timeout=30,
        )
    finally:
        stop(worker)
    logged = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [said, *_] = [entry for entry in logged if entry["logger"] == "liftoff.codec"]
    assert said["level"] == "error"
    assert said["key_id"] == KEY_ID
    assert "add that key to LIFTOFF_ENCRYPTION_KEYS" in said["message"]
    assert f"key '{KEY_ID}'" in history  # the failure shows in the Web UI and CLI too

    # The exported history holds no contact in clear, however it is read.
    assert CONTACT_EMAIL not in in_clear(history)
    assert CONTACT_NAME not in in_clear(history)
    assert CUSTOMER_NAME not in in_clear(history)

    # With the key, a worker takes the customer on from there.
    log = tmp_path / "worker.log"
    worker = start_worker(keyed, tmp_path, log)
    try:
        status = eventually_blocking(
            lambda: cli("status", customer, "--json"),
            lambda result: result.returncode == 0 and '"kickoff"' in result.stdout,
            what="the onboarding running with the key",
            timeout=30,
        )
        assert CUSTOMER_NAME in status.stdout
        # A CLI without the key says which key it needs instead of printing garbage.
        refused = keyless_cli("status", customer)
        assert refused.returncode == 1, (refused.stdout, refused.stderr)
        assert f"key '{KEY_ID}'" in refused.stderr
        assert CUSTOMER_NAME not in refused.stdout + refused.stderr

        # `liftoff codec-server`, and Temporal's CLI reading the history through it.
        port = free_port()
        server_log = (tmp_path / "codec.log").open("w")
        server = subprocess.Popen(
            [sys.executable, str(REPO / "starter.py"), "codec-server", "--port", str(port)],
            env={**keyed, "LIFTOFF_CODEC_TOKEN": TOKEN},
            cwd=tmp_path,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for("codec server", lambda: _answers(port), server)
            endpoint = f"http://127.0.0.1:{port}"
            decoded = temporal_show(
                temporal_address,
                workflow_id,
                "--codec-endpoint",
                endpoint,
                "--codec-auth",
                f"Bearer {TOKEN}",
            )
            refused_show = temporal_show(
                temporal_address,
                workflow_id,
                "--codec-endpoint",
                endpoint,
                # It retries a refused codec call until its timeout.
                "--command-timeout",
                "3s",
            )
        finally:
            stop(server)
            server_log.close()
    finally:
        stop(worker)

    assert decoded.returncode == 0, decoded.stderr
    assert CONTACT_EMAIL in in_clear(decoded.stdout)
    assert CONTACT_NAME in in_clear(decoded.stdout)
    # Without the token the codec server refuses, and the CLI shows nothing decoded.
    assert refused_show.returncode != 0
    assert CONTACT_EMAIL not in refused_show.stdout + refused_show.stderr
    codec_log = (tmp_path / "codec.log").read_text()
    assert "codec request refused" in codec_log
    assert TOKEN not in codec_log


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
