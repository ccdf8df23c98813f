"""Liftoff's pydantic payload converter: the SDK's, with one TypeAdapter cache per process.

`temporalio.contrib.pydantic` keeps its TypeAdapter cache on the converter instance, and
the SDK builds a new payload converter for every workflow instance and for many
serialization contexts (each activity, each update). Every new converter rebuilt the
adapters of the event union and the `Annotated` models from scratch, which showed as
~11% of worker CPU in a `py-spy` profile of `make bench` (temporalio/sdk-python#1695).
Here the cache is shared by every converter of the process: type hints are the same
passed-through model classes in every workflow sandbox, so an adapter built once serves
them all. The cache is bounded (least recently used out), like the SDK's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

from models.playbook import Playbook

MAX_CACHED_TYPE_ADAPTERS = 1024
# The metadata of a payload to be stored by reference (client/payload_storage.py).
STORED_BY_REFERENCE = "liftoff-by-reference"


def marked_by_reference(payload: Payload) -> bool:
    return bool(payload.metadata.get(STORED_BY_REFERENCE))


# lru_cache is thread-safe: workflow and activity threads share it.
_shared_type_adapter: functools._lru_cache_wrapper[TypeAdapter[Any]] = functools.lru_cache(
    maxsize=MAX_CACHED_TYPE_ADAPTERS
)(TypeAdapter)


def type_adapter_cache_info() -> functools._CacheInfo:
    """Hits, misses and size of the shared cache (for tests and the bench)."""
    return _shared_type_adapter.cache_info()


class SharedCachePydanticJSONPayloadConverter(PydanticJSONPlainPayloadConverter):
    """The SDK's pydantic JSON converter reading adapters from the process-wide cache."""

    def __init__(self) -> None:
        super().__init__(max_cached_type_adapters=MAX_CACHED_TYPE_ADAPTERS)
        self._type_adapter = _shared_type_adapter

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._type_adapter = _shared_type_adapter


# Built once: the SDK makes a new payload converter for every workflow activation (each
# `DataConverter` it builds makes its own), and the converters hold no state of their own.
_ENCODING_CONVERTERS = tuple(
    SharedCachePydanticJSONPayloadConverter() if isinstance(c, JSONPlainPayloadConverter) else c
    for c in DefaultPayloadConverter.default_encoding_payload_converters
)


class LiftoffPayloadConverter(CompositePayloadConverter):
    """The default converters with JSON handled by pydantic (shared adapter cache), and a
    playbook given as a value of its own marked to be stored by reference when the
    setting says so (client/payload_storage.py)."""

    def __init__(self) -> None:
        super().__init__(*_ENCODING_CONVERTERS)

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        payloads = super().to_payloads(values)
        for value, payload in zip(values, payloads, strict=True):
            if isinstance(value, Playbook):
                payload.metadata[STORED_BY_REFERENCE] = b"playbook"
        return payloads


liftoff_data_converter = DataConverter(payload_converter_class=LiftoffPayloadConverter)
"""Drop-in for `temporalio.contrib.pydantic.pydantic_data_converter`: same payloads."""
