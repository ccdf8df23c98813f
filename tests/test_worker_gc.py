"""The worker runs the garbage collector less often (worker.GC_THRESHOLDS), and gives the
process its own thresholds back when it stops, also when it stops on an error: a worker
shares its process in `make run`, in a simulation's shard 0 and in the tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from worker import GC_THRESHOLDS, fewer_collections


@pytest.fixture
def thresholds_kept() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_the_thresholds_are_raised_while_the_worker_runs_and_put_back_after(
    thresholds_kept: tuple[int, int, int],
) -> None:
    gc.set_threshold(900, 11, 12)

    with fewer_collections():
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > 900

    assert gc.get_threshold() == (900, 11, 12)


def test_the_thresholds_are_put_back_when_the_worker_fails(
    thresholds_kept: tuple[int, int, int],
) -> None:
    with pytest.raises(RuntimeError, match="worker died"), fewer_collections():
        raise RuntimeError("worker died")

    assert gc.get_threshold() == thresholds_kept


def test_two_workers_in_one_process_stopping_in_either_order_leave_it_as_it_was(
    thresholds_kept: tuple[int, int, int],
) -> None:
    first, second = fewer_collections(), fewer_collections()

    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == GC_THRESHOLDS  # the second still runs
    second.__exit__(None, None, None)

    assert gc.get_threshold() == thresholds_kept
