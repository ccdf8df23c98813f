"""Each entry point sets up the same logging (logs.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from logs import configure_logging
from settings import Settings


@pytest.fixture(autouse=True)
def root_logger_restored() -> Iterator[None]:
    """configure_logging replaces the root handlers; other tests keep pytest's own."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_demo_logs_to_its_file_at_info_whatever_the_configured_level(
    tmp_path: Path,
) -> None:
    settings = Settings().model_copy(update={"log_format": "json", "log_level": "ERROR"})

    configure_logging(settings, path=tmp_path / "demo.log", level="INFO")
    logging.getLogger("liftoff.demo").info("cohort started", extra={"customers": 3})
    logging.getLogger().handlers[0].flush()

    [entry] = [json.loads(line) for line in (tmp_path / "demo.log").read_text().splitlines()]
    assert (entry["logger"], entry["message"], entry["customers"]) == (
        "liftoff.demo",
        "cohort started",
        3,
    )
