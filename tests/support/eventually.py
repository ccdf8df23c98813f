"""Waiting for what happens a moment later: one helper instead of a loop per test.

Like sdk-python's `assert_eq_eventually`: poll until the value is acceptable, and
past the deadline fail with the last value seen, so the failure says what was there.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")

TIMEOUT_SECONDS = 15.0
INTERVAL_SECONDS = 0.1


class _Polling(Generic[T]):
    """Judges each value; raises once the deadline has passed without an acceptable one."""

    def __init__(self, until: Callable[[T], object], what: str, timeout: float) -> None:
        self.until = until
        self.what = what
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout

    def accepts(self, value: T) -> bool:
        why = ""
        try:
            if self.until(value):
                return True
        except AssertionError as err:  # an assertion in `until` means "not yet"
            why = f"; {err}"
        if time.monotonic() > self.deadline:
            raise AssertionError(
                f"{self.what}: not reached within {self.timeout:g}s; last: {value!r}{why}"
            )
        return False


async def eventually(
    probe: Callable[[], Awaitable[T] | T],
    until: Callable[[T], object] = bool,
    *,
    what: str = "condition",
    timeout: float = TIMEOUT_SECONDS,
    interval: float = INTERVAL_SECONDS,
) -> T:
    """Call `probe` (awaiting it if need be) until `until(value)` is true or stops
    raising AssertionError; return that value. Past `timeout` seconds, fail with the
    last value. Exceptions from `probe` itself are not retried."""
    polling = _Polling(until, what, timeout)
    while True:
        result = probe()
        value = cast(T, await result if inspect.isawaitable(result) else result)
        if polling.accepts(value):
            return value
        await asyncio.sleep(interval)


def eventually_blocking(
    probe: Callable[[], T],
    until: Callable[[T], object] = bool,
    *,
    what: str = "condition",
    timeout: float = TIMEOUT_SECONDS,
    interval: float = INTERVAL_SECONDS,
) -> T:
    """`eventually` for synchronous tests and fixtures (processes, the CLI)."""
    polling = _Polling(until, what, timeout)
    while not polling.accepts(value := probe()):
        time.sleep(interval)
    return value
