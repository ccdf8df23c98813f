"""Playbooks by reference: a customer's playbook kept once in Liftoff's database, its
workflow history holding a reference (a claim check) instead of the whole playbook.

The playbook was 95% of every start input (12 KB of JSON, 3.3 KB compressed) and came
back in every continue-as-new. It travels now as the workflow's second argument, a
payload of its own that the payload converter marks (client/payloads.py), and with
LIFTOFF_PLAYBOOKS_BY_REFERENCE on, the SDK's external storage (temporalio.converter.
ExternalStorage, in preview in temporalio 1.35) hands each marked payload to this
driver, which keeps it in `stored_payloads` under the SHA-256 of its bytes
(records/stored_payloads.py) and leaves `{"sha256": ...}` in the history.

Retrieval happens in the worker's data converter before the workflow sees its input,
outside the sandbox, so the workflow code stays free of I/O; the content's hash is the
key, so every worker and every replay reads the same bytes. Reading is always on,
whatever the setting, as decompression is: a deployment upgrades every process first,
then turns storing on. The codec leaves a marked payload unencrypted when storing is
on (client/codec.py): the same playbook then has the same bytes for every customer and
is one row, and a playbook holds no customer data (the database keeps every version in
the clear in `playbook_versions` already).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    ExternalStorage,
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverSelectContext,
    StorageDriverStoreContext,
)

from client.payloads import marked_by_reference
from records.database import Database
from records.stored_payloads import StoredPayloadError, load_payloads, payload_key, store_payloads

log = logging.getLogger("liftoff.payloads")

DRIVER_NAME = "liftoff-database"
CLAIM_KEY = "sha256"
# Payloads read back and kept in memory: a worker replays many customers on the same few
# playbook versions, and a stored payload never changes.
CACHED_PAYLOADS = 64

# One engine per database URL in a process: the client and the worker of one process
# (make run, the tests) share it, as they must for an in-memory SQLite database.
_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def _database(url: str) -> Database:
    with _databases_lock:
        database = _databases.get(url)
        if database is None:
            database = _databases[url] = Database(url)
        return database


class DatabaseStorageDriver(StorageDriver):
    """Keeps payloads in Liftoff's database, each under the SHA-256 of its bytes."""

    def __init__(self, database_url: str, *, stores: bool) -> None:
        self._database_url = database_url
        # Whether marked payloads are stored; reading back is always on.
        self.stores = stores
        self._known: OrderedDict[str, Payload] = OrderedDict()
        self._known_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DatabaseStorageDriver(stores={self.stores!r})"

    def name(self) -> str:
        return DRIVER_NAME

    def select(
        self, _context: StorageDriverSelectContext, payload: Payload
    ) -> StorageDriver | None:
        return self if self.stores and marked_by_reference(payload) else None

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        blobs = [payload.SerializeToString(deterministic=True) for payload in payloads]
        keys = [payload_key(blob) for blob in blobs]
        # A payload this process stored or read is in the database: no round trip.
        if any(self._cached(key) is None for key in keys):
            await asyncio.to_thread(store_payloads, _database(self._database_url), blobs)
            for key, payload in zip(keys, payloads, strict=True):
                self._remember(key, payload)
        return [StorageDriverClaim(claim_data={CLAIM_KEY: key}) for key in keys]

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        keys = [claim.claim_data.get(CLAIM_KEY, "") for claim in claims]
        found = {key: payload for key in keys if (payload := self._cached(key)) is not None}
        missing = [key for key in dict.fromkeys(keys) if key not in found]
        if missing:
            try:
                blobs = await asyncio.to_thread(
                    load_payloads, _database(self._database_url), missing
                )
            except StoredPayloadError as err:
                # Logged here too: a worker reports it only in a workflow task's traceback.
                log.error(str(err))
                raise
            for key, blob in zip(missing, blobs, strict=True):
                found[key] = Payload.FromString(blob)
                self._remember(key, found[key])
        return [found[key] for key in keys]

    def _cached(self, key: str) -> Payload | None:
        with self._known_lock:
            payload = self._known.get(key)
            if payload is not None:
                self._known.move_to_end(key)
            return payload

    def _remember(self, key: str, payload: Payload) -> None:
        with self._known_lock:
            self._known[key] = payload
            self._known.move_to_end(key)
            while len(self._known) > CACHED_PAYLOADS:
                self._known.popitem(last=False)


def external_storage(database_url: str, *, stores: bool) -> ExternalStorage:
    """The SDK's external storage with Liftoff's one driver: marked payloads only, of
    any size (the SDK's own threshold is for size; here the payload's kind decides)."""
    driver = DatabaseStorageDriver(database_url, stores=stores)
    return ExternalStorage(
        drivers=[driver], driver_selector=driver.select, payload_size_threshold=0
    )


def stores_by_reference(converter: DataConverter) -> bool:
    """Whether this converter stores marked payloads by reference (the setting's effect)."""
    storage = converter.external_storage
    return storage is not None and any(
        isinstance(driver, DatabaseStorageDriver) and driver.stores for driver in storage.drivers
    )
