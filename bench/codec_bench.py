"""What encrypting customer data in Temporal costs, for `make bench`.

Every payload of a saved journey history (tests/histories/happy_path.json: the
workflow input with its playbook, every activity's arguments and results, updates,
queries' answers are not in history) goes through the payload codec the worker, the
CLI and the API use (client/codec.py, AES-256-GCM): encrypted once, as a worker writes
it, and decrypted once, as a replay reads it. Printed, never asserted.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

from client.codec import EncryptionCodec
from settings import ENCRYPTION_KEY_BYTES

HISTORY = Path(__file__).resolve().parent.parent / "tests" / "histories" / "happy_path.json"
ROUNDS = 20


@dataclass(frozen=True)
class CodecReport:
    history: str
    payloads: int
    plain_bytes: int
    sealed_bytes: int
    encrypt_ms: float
    decrypt_ms: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _payloads(message: Message) -> Iterator[Payload]:
    """Every Payload inside a protobuf message, however deep (maps and lists too)."""
    for descriptor, value in message.ListFields():
        if descriptor.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        kind = descriptor.message_type
        if kind is not None and kind.GetOptions().map_entry:
            if kind.fields_by_name["value"].type != FieldDescriptor.TYPE_MESSAGE:
                continue
            items: Iterable[Message] = value.values()
        elif descriptor.is_repeated:
            items = value
        else:
            items = [value]
        for item in items:
            if isinstance(item, Payload):
                yield item
            else:
                yield from _payloads(item)


def run_codec_bench(history: Path = HISTORY, rounds: int = ROUNDS) -> CodecReport:
    saved = WorkflowHistory.from_json(history.stem, history.read_text())
    payloads = [p for event in saved.events for p in _payloads(event)]
    codec = EncryptionCodec([("bench", os.urandom(ENCRYPTION_KEY_BYTES))])
    encrypt, decrypt = [], []
    sealed: list[Payload] = []
    for _ in range(rounds):
        started = time.perf_counter()
        sealed = asyncio.run(codec.encode(payloads))
        encrypt.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        opened = asyncio.run(codec.decode(sealed))
        decrypt.append((time.perf_counter() - started) * 1000)
        if opened != payloads:
            raise RuntimeError("the codec did not give back what it sealed")
    return CodecReport(
        history=history.name,
        payloads=len(payloads),
        plain_bytes=sum(p.ByteSize() for p in payloads),
        sealed_bytes=sum(p.ByteSize() for p in sealed),
        encrypt_ms=statistics.median(encrypt),
        decrypt_ms=statistics.median(decrypt),
    )


def format_codec_report(report: CodecReport) -> str:
    growth = report.sealed_bytes / report.plain_bytes - 1 if report.plain_bytes else 0.0
    return "\n".join(
        [
            f"Payload encryption (AES-256-GCM) over every payload of {report.history}:",
            f"  {report.payloads} payloads, {report.plain_bytes / 1024:.1f} KB plain, "
            f"{report.sealed_bytes / 1024:.1f} KB sealed (+{growth:.1%})",
            f"  encrypt all: {report.encrypt_ms:.2f} ms; decrypt all: {report.decrypt_ms:.2f} ms "
            f"(median of {ROUNDS})",
        ]
    )
