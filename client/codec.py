"""Customer data encrypted in Temporal: the payload codec every client and worker use.

Each payload (workflow input, update, query result, activity argument...) is
serialized whole and sealed with AES-256-GCM (the `cryptography` package, not our
own cipher); the result carries the key's id in its metadata, so a rotation adds
a key in front and every older payload stays readable. A payload that is not
encrypted (histories from before encryption) passes through untouched. A payload
this process cannot open fails loudly with the key id it needs, never as garbage.
Search attributes are not payloads of the codec: they stay plain (docs/architecture.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

log = logging.getLogger("liftoff.codec")

ENCODING = b"binary/encrypted"
# The metadata names of Temporal's encryption samples (which authenticate no key id).
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12


class PayloadDecryptionError(Exception):
    """An encrypted payload this process cannot open; the message names the key id."""


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
            message = (
                f"a payload is encrypted with key {key_id!r}, which this process does not "
                f"have ({held}); add that key to LIFTOFF_ENCRYPTION_KEYS"
            )
            # Logged here too: a worker reports it only inside a workflow task's traceback.
            log.error(message, extra={"key_id": key_id})
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
