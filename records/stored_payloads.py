"""Temporal payloads kept in the database instead of in workflow histories, each under
the SHA-256 of its bytes (the claim check of client/payload_storage.py).

The key is the content's own hash, so storing is idempotent (the same playbook started
for a thousand customers is one row) and a row read back is checked against its key:
a changed row is refused, never handed to a workflow as something else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlmodel import col, select

from models.tables import StoredPayload, utc_now
from records.database import Database, insert_ignore

# Temporal's own limit for one payload (2 MB by default); what Liftoff stores is a
# playbook, bounded far below by models/limits.py.
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024


class StoredPayloadError(Exception):
    """A payload that cannot be stored or read back; the message says which and why."""


def payload_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_payloads(database: Database, blobs: Sequence[bytes]) -> list[str]:
    """Keeps each blob unless it is kept already; returns their keys, in order."""
    for data in blobs:
        if len(data) > MAX_PAYLOAD_BYTES:
            raise StoredPayloadError(
                f"a payload of {len(data):,} bytes is over the {MAX_PAYLOAD_BYTES:,} kept"
            )
    keys = [payload_key(data) for data in blobs]
    rows = dict(zip(keys, blobs, strict=True))
    with database.session() as session:
        now = utc_now()
        insert_ignore(
            session,
            StoredPayload,
            [{"sha256": key, "data": data, "stored_at": now} for key, data in rows.items()],
            ["sha256"],
        )
    return keys


def load_payloads(database: Database, keys: Sequence[str]) -> list[bytes]:
    """The blobs under these keys, in order; a missing or altered one is refused."""
    wanted = set(keys)
    with database.session() as session:
        found = {
            row.sha256: bytes(row.data)
            for row in session.exec(
                select(StoredPayload).where(col(StoredPayload.sha256).in_(wanted))
            )
        }
    blobs = []
    for key in keys:
        data = found.get(key)
        if data is None:
            raise StoredPayloadError(
                f"stored payload {key} is not in the database: a history names it, so the "
                "stored_payloads table must keep every row while histories may be replayed"
            )
        if payload_key(data) != key:
            raise StoredPayloadError(f"stored payload {key} does not match its key: refused")
        blobs.append(data)
    return blobs
