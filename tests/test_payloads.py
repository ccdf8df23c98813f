"""Liftoff's payload converter: the SDK's pydantic payloads, adapters built once per process."""

from __future__ import annotations

from datetime import date

from temporalio.contrib.pydantic import pydantic_data_converter

from client.payloads import liftoff_data_converter, type_adapter_cache_info
from models.events import KickoffHeld, OnboardingEvent

EVENT = KickoffHeld(held_on=date(2026, 1, 5), attendees=["Aiko"], recorded_by="csm")


async def test_payloads_are_the_sdk_pydantic_payloads() -> None:
    ours = await liftoff_data_converter.encode([EVENT])
    assert ours == await pydantic_data_converter.encode([EVENT])
    decoded = await liftoff_data_converter.decode(ours, [OnboardingEvent])  # type: ignore[list-item]
    assert decoded == [EVENT]


async def test_a_new_converter_reuses_the_adapters_built_by_another() -> None:
    payloads = await liftoff_data_converter.encode([EVENT])
    first = liftoff_data_converter._new_payload_converter()
    assert first.from_payloads(payloads, [OnboardingEvent]) == [EVENT]  # type: ignore[list-item]
    built = type_adapter_cache_info().misses
    # The SDK builds a converter per workflow instance and per serialization context.
    for _ in range(3):
        fresh = liftoff_data_converter._new_payload_converter()
        assert fresh.from_payloads(payloads, [OnboardingEvent]) == [EVENT]  # type: ignore[list-item]
    assert type_adapter_cache_info().misses == built
