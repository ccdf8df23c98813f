"""Customer data in Temporal, compressed and encrypted: the payload codec every client
and worker use (`LiftoffCodec`: compression, then encryption).

Each payload (workflow input, update, query result, activity argument...) is
serialized whole and sealed with AES-256-GCM (the `cryptography` package, not our
own cipher); the result carries the key's id in its metadata, so a rotation adds
a key in front and every older payload stays readable. A payload that is not
encrypted (histories from before encryption) passes through untouched. A payload
this process cannot open fails loudly with the key id it needs, never as garbage.
Search attributes are not payloads of the codec: they stay plain (docs/architecture.md).

Compression (zlib, from the standard library) is off unless LIFTOFF_PAYLOAD_COMPRESSION
says so, but every process decodes a compressed payload whatever the setting: a
deployment upgrades every worker, API and CLI first, then turns it on, and no process
ever meets a payload it cannot read (README, docs/architecture.md).
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterator, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError, Message
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from client.payloads import STORED_BY_REFERENCE, marked_by_reference

log = logging.getLogger("liftoff.codec")

ENCODING = b"binary/encrypted"
COMPRESSED_ENCODING = b"binary/zlib"
# Below this a payload (an id, a short result) gains too little to be worth the work.
COMPRESS_FROM_BYTES = 256
COMPRESSION_LEVEL = 6
# What the payloads of one decode may inflate to together: Temporal refuses a payload
# over 2 MB by default, and Liftoff's own are bounded far below; more is forged (a zip
# bomb, or many of them in one codec server request).
MAX_DECOMPRESSED_BYTES = 32 * 1024 * 1024
# The metadata names of Temporal's encryption samples (which authenticate no key id).
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12
# A key id in an error message: the longest one LIFTOFF_ENCRYPTION_KEYS takes (settings.py).
SHOWN_KEY_ID_CHARS = 64


class PayloadCodecError(Exception):
    """A payload this process cannot decode; the message says why."""


class PayloadDecryptionError(PayloadCodecError):
    """An encrypted payload this process cannot open; the message names the key id."""


class PayloadDecompressionError(PayloadCodecError):
    """A payload marked compressed that does not inflate to a payload."""


class EncryptionCodec(PayloadCodec):
    """Encrypts with the first key; decrypts with whichever key a payload names.

    With no keys it encrypts nothing and still tells an encrypted payload from a plain
    one, so a worker started without keys says which key it lacks.
    """

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}
        self._current = keys[0][0] if keys else None

    @property
    def key_id(self) -> str | None:
        """The key new payloads are sealed with; None when encryption is off."""
        return self._current

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    def __repr__(self) -> str:
        return f"EncryptionCodec(key_id={self._current!r}, key_ids={self.key_ids!r})"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self._current is None:
            return list(payloads)
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        assert self._current is not None, "encrypt needs a key"
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._current.encode()
        # The key id is authenticated too: a payload relabelled with another id fails.
        sealed = self._ciphers[self._current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode("utf-8", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            held = f"it has {', '.join(self._ciphers)}" if self._ciphers else "it has none"
            # Cut short: a codec server's caller chooses it, and it is logged.
            shown = key_id[:SHOWN_KEY_ID_CHARS] + ("…" if len(key_id) > SHOWN_KEY_ID_CHARS else "")
            message = (
                f"a payload is encrypted with key {shown!r}, which this process does not "
                f"have ({held}); add that key to LIFTOFF_ENCRYPTION_KEYS"
            )
            # Logged here too: a worker reports it only inside a workflow task's traceback.
            log.error(message, extra={"key_id": shown})
            raise PayloadDecryptionError(message)
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
            return Payload.FromString(plain)
        except (InvalidTag, ValueError, DecodeError):
            raise PayloadDecryptionError(
                f"a payload encrypted with key {key_id!r} does not open with that key: "
                "it was altered, or the key under that id is not the one that sealed it"
            ) from None


def payloads_in(message: Message, *, skip: Sequence[str] = ()) -> Iterator[Payload]:
    """Every payload anywhere in a protobuf message (a history event: inputs, results,
    failures, headers, search attributes), but those under a field named in `skip`."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE or field.name in skip:
            continue
        if isinstance(value, Message):
            items = [value]
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            items = [v for v in value.values() if isinstance(v, Message)]
        else:
            items = list(value)
        for item in items:
            yield from payloads_in(item, skip=skip)


class CompressionCodec(PayloadCodec):
    """Compresses each payload of COMPRESS_FROM_BYTES or more, when that makes it smaller.

    Decoding does not depend on `compress`: a process with compression off still reads
    what a process with it on wrote.
    """

    def __init__(self, *, compress: bool) -> None:
        self.compress = compress

    def __repr__(self) -> str:
        return f"CompressionCodec(compress={self.compress!r})"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if not self.compress:
            return list(payloads)
        return [self.deflate(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        budget = MAX_DECOMPRESSED_BYTES
        decoded = []
        for payload in payloads:
            plain = self.inflate(payload, budget)
            if plain is not payload:
                budget -= plain.ByteSize()
            decoded.append(plain)
        return decoded

    @staticmethod
    def deflate(payload: Payload) -> Payload:
        whole = payload.SerializeToString()
        if len(whole) < COMPRESS_FROM_BYTES:
            return payload
        packed = zlib.compress(whole, COMPRESSION_LEVEL)
        if len(packed) >= len(whole):
            return payload
        return Payload(metadata={"encoding": COMPRESSED_ENCODING}, data=packed)

    @staticmethod
    def inflate(payload: Payload, budget: int = MAX_DECOMPRESSED_BYTES) -> Payload:
        """The payload `payload` holds, if it is compressed and inflates to `budget` bytes
        or fewer."""
        if payload.metadata.get("encoding") != COMPRESSED_ENCODING:
            return payload
        inflater = zlib.decompressobj()
        try:
            # max_length 0 would mean no limit.
            whole = inflater.decompress(payload.data, max(budget, 1))
            if inflater.unconsumed_tail or (not inflater.eof and len(whole) >= budget):
                raise _refused(
                    "compressed payloads inflate past "
                    f"{MAX_DECOMPRESSED_BYTES // (1024 * 1024)} MB at once: refused"
                )
            if not inflater.eof:
                raise _refused("a compressed payload is cut short")
            return Payload.FromString(whole)
        except (zlib.error, DecodeError):
            raise _refused("a payload marked compressed does not inflate to a payload") from None


def _refused(message: str) -> PayloadDecompressionError:
    # Logged here too, as a missing key is: a worker reports it only inside a workflow
    # task's traceback. The message holds nothing of the payload.
    log.error(message)
    return PayloadDecompressionError(message)


class LiftoffCodec(PayloadCodec):
    """Compression, then encryption: ciphertext does not compress, so the order is this
    one. Each stage passes through what is not its own, so payloads written with either
    off, or before either existed, decode the same."""

    def __init__(
        self,
        encryption: EncryptionCodec,
        compression: CompressionCodec,
        *,
        by_reference_in_clear: bool = False,
    ) -> None:
        self.encryption = encryption
        self.compression = compression
        # A payload marked to be stored by reference (a playbook) is compressed, not
        # encrypted, and keeps its mark for the storage to see (client/payload_storage.py).
        self.by_reference_in_clear = by_reference_in_clear

    @classmethod
    def from_keys(
        cls,
        keys: Sequence[tuple[str, bytes]],
        *,
        compress: bool,
        by_reference_in_clear: bool = False,
    ) -> LiftoffCodec:
        return cls(
            EncryptionCodec(keys),
            CompressionCodec(compress=compress),
            by_reference_in_clear=by_reference_in_clear,
        )

    @property
    def key_id(self) -> str | None:
        return self.encryption.key_id

    @property
    def compresses(self) -> bool:
        return self.compression.compress

    def __repr__(self) -> str:
        return f"LiftoffCodec({self.encryption!r}, {self.compression!r})"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self.by_reference_in_clear and any(marked_by_reference(payload) for payload in payloads):
            return [await self._encode_one(payload) for payload in payloads]
        return await self.encryption.encode(await self.compression.encode(payloads))

    async def _encode_one(self, payload: Payload) -> Payload:
        [compressed] = await self.compression.encode([payload])
        if not marked_by_reference(payload):
            return (await self.encryption.encode([compressed]))[0]
        if compressed is not payload:
            compressed.metadata[STORED_BY_REFERENCE] = payload.metadata[STORED_BY_REFERENCE]
        return compressed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await self.compression.decode(await self.encryption.decode(payloads))
