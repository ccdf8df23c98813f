"""Compressed payloads (LIFTOFF_PAYLOAD_COMPRESSION): a large payload is stored smaller and
reads back the same; every process reads compressed payloads whatever its own setting, so
a deployment can turn compression on once all of it runs this version; a forged or
truncated payload is refused in one sentence, and a zip bomb does not inflate."""

from __future__ import annotations

import base64
import json
import os
import secrets
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

import client.codec as codec_module
from api.codec_server import codec_app_from_settings
from client.codec import (
    COMPRESS_FROM_BYTES,
    COMPRESSED_ENCODING,
    ENCODING,
    CompressionCodec,
    LiftoffCodec,
    PayloadDecompressionError,
)
from client.connection import data_converter
from models.events import KickoffHeld
from models.onboarding import Stage
from records.database import Database
from settings import Settings
from testkit.factories import make_handoff
from testkit.temporal import with_data_converter
from tests.support.workflow_harness import HISTORIES, replay_database_url, running_harness
from workflows.onboarding import CustomerOnboardingWorkflow

TOKEN = f"codec-{secrets.token_urlsafe(24)}"


def json_payload(value: Any) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def compressed(data: bytes) -> Payload:
    return Payload(metadata={"encoding": COMPRESSED_ENCODING}, data=data)


def a_playbook_sized_value() -> dict[str, Any]:
    steps = [{"id": f"step-{n}", "template": "welcome", "after_days": n} for n in range(200)]
    return {"playbook": steps, "contact": "boss@acme.example"}


def keyed_settings(**overrides: Any) -> Settings:
    entry = f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    return Settings(encryption_keys=SecretStr(entry), **overrides)


async def test_a_large_payload_is_stored_compressed_and_reads_back_the_same() -> None:
    codec = CompressionCodec(compress=True)
    plain = json_payload(a_playbook_sized_value())

    [packed] = await codec.encode([plain])

    assert packed.metadata["encoding"] == COMPRESSED_ENCODING
    assert len(packed.SerializeToString()) < len(plain.SerializeToString()) / 4
    assert await codec.decode([packed]) == [plain]


async def test_small_and_incompressible_payloads_are_left_as_they_are() -> None:
    codec = CompressionCodec(compress=True)
    small = json_payload("new-0001")
    noise = Payload(
        metadata={"encoding": b"binary/plain"}, data=os.urandom(4 * COMPRESS_FROM_BYTES)
    )

    assert await codec.encode([small, noise]) == [small, noise]


async def test_a_process_with_compression_off_writes_plain_and_still_reads_compressed() -> None:
    plain = json_payload(a_playbook_sized_value())
    [packed] = await CompressionCodec(compress=True).encode([plain])
    off = CompressionCodec(compress=False)

    assert await off.encode([plain]) == [plain]
    assert await off.decode([packed, plain]) == [plain, plain]


async def test_compressed_then_encrypted_reads_back_and_holds_nothing_in_clear() -> None:
    converter = data_converter(keyed_settings(payload_compression=True))
    codec = converter.payload_codec
    assert isinstance(codec, LiftoffCodec)
    plain = json_payload(a_playbook_sized_value())
    encrypted_only = LiftoffCodec(codec.encryption, CompressionCodec(compress=False))

    [sealed] = await codec.encode([plain])
    [sealed_uncompressed] = await encrypted_only.encode([plain])

    assert sealed.metadata["encoding"] == ENCODING
    assert b"acme" not in sealed.SerializeToString()
    # Compressed before it was sealed: ciphertext itself would not compress.
    assert len(sealed.data) < len(sealed_uncompressed.data) / 4
    assert await codec.decode([sealed]) == [plain]
    assert await encrypted_only.decode([sealed, sealed_uncompressed]) == [plain, plain]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not zlib at all", "does not inflate to a payload"),
        (zlib.compress(b"\xff\xff\xff not a payload protobuf"), "does not inflate to a payload"),
        (zlib.compress(json_payload("x" * 5000).SerializeToString())[:-8], "cut short"),
    ],
    ids=["garbage", "not-a-payload", "truncated"],
)
async def test_a_forged_or_truncated_compressed_payload_is_refused_in_one_sentence(
    data: bytes, message: str
) -> None:
    with pytest.raises(PayloadDecompressionError, match=message):
        await CompressionCodec(compress=False).decode([compressed(data)])


async def test_a_payload_that_would_inflate_past_the_bound_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(codec_module, "MAX_DECOMPRESSED_BYTES", 1024 * 1024)
    bomb = compressed(zlib.compress(bytes(8 * 1024 * 1024), 9))
    assert len(bomb.data) < 16 * 1024

    with pytest.raises(PayloadDecompressionError, match="inflate past 1 MB at once"):
        await CompressionCodec(compress=True).decode([bomb])


async def test_many_payloads_each_under_the_bound_are_refused_past_it_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(codec_module, "MAX_DECOMPRESSED_BYTES", 1024 * 1024)
    [share] = await CompressionCodec(compress=True).encode(
        [Payload(metadata={"encoding": b"binary/plain"}, data=bytes(400 * 1024))]
    )
    codec = CompressionCodec(compress=False)
    assert len(await codec.decode([share, share])) == 2  # 800 KB: within the bound

    with pytest.raises(PayloadDecompressionError, match="inflate past 1 MB at once"):
        await codec.decode([share, share, share])


async def test_the_codec_server_inflates_without_keys_when_compression_is_on() -> None:
    settings = Settings(payload_compression=True, codec_token=SecretStr(TOKEN))
    app = codec_app_from_settings(settings)
    [packed] = await CompressionCodec(compress=True).encode(
        [json_payload(a_playbook_sized_value())]
    )
    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in packed.metadata.items()},
                "data": base64.b64encode(packed.data).decode(),
            }
        ]
    }
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec.test") as http:
        decoded = await http.post("/decode", json=body, headers=bearer)
        forged = await http.post(
            "/decode",
            json={"payloads": [{"metadata": body["payloads"][0]["metadata"], "data": "AAAA"}]},
            headers=bearer,
        )

    assert decoded.status_code == 200
    [payload] = decoded.json()["payloads"]
    assert json.loads(base64.b64decode(payload["data"])) == a_playbook_sized_value()
    assert forged.status_code == 400
    assert "does not inflate" in forged.json()["detail"]


async def test_a_compressed_journey_is_read_by_processes_with_compression_off_and_replays(
    env: WorkflowEnvironment, task_queue: str, sqlite_database: Database, tmp_path: Path
) -> None:
    on = data_converter(Settings(payload_compression=True))
    off = data_converter(Settings(payload_compression=False))
    handoff = make_handoff()

    async with running_harness(
        env, with_data_converter(env.client, on), task_queue, sqlite_database, tmp_path
    ) as h:
        handle = await h.start(handoff)
        await h.record(handle, KickoffHeld(held_on=await h.today(), goals=["Go live"]))
        await h.wait_for(handle, lambda s: s.state.stage is Stage.TRAINING)
        history = await handle.fetch_history()
        # An API or CLI process whose setting is still off reads what the worker wrote.
        reader = with_data_converter(env.client, off).get_workflow_handle(handle.id)
        status = await reader.query(CustomerOnboardingWorkflow.status)

    assert status.state.stage is Stage.TRAINING
    started = history.events[0].workflow_execution_started_event_attributes
    [start_input] = started.input.payloads
    assert start_input.metadata["encoding"] == COMPRESSED_ENCODING
    # The start input, mostly the playbook, is the largest payload a journey writes.
    [plain_input] = await CompressionCodec(compress=False).decode([start_input])
    assert len(start_input.data) < len(plain_input.SerializeToString()) / 3
    for converter in (on, off):
        replayer = Replayer(workflows=[CustomerOnboardingWorkflow], data_converter=converter)
        await replayer.replay_workflow(history)


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_histories_from_before_compression_replay_with_it_on(
    path: Path, tmp_path: Path
) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    converter = data_converter(
        keyed_settings(payload_compression=True, database_url=replay_database_url(tmp_path))
    )

    replayer = Replayer(workflows=[CustomerOnboardingWorkflow], data_converter=converter)
    await replayer.replay_workflow(history)


async def test_a_refused_payload_is_logged_without_its_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = b"zora@hidden-customer.example"
    forged = compressed(zlib.compress(secret)[:-6])

    with pytest.raises(PayloadDecompressionError):
        await CompressionCodec(compress=False).decode([forged])

    [record] = [r for r in caplog.records if r.name == "liftoff.codec"]
    assert record.levelname == "ERROR"
    assert "compressed" in record.getMessage()
    assert b"zora" not in record.getMessage().encode()
