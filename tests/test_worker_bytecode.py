"""The worker leaves the workflow modules' bytecode behind even where Python writes
none (PYTHONDONTWRITEBYTECODE), so the sandbox does not compile them per workflow."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import workflows.onboarding
from worker import precompile_workflow_code


def test_the_workflow_modules_bytecode_is_written_whatever_the_environment_says() -> None:
    source = Path(workflows.onboarding.__file__)
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.unlink(missing_ok=True)

    assert precompile_workflow_code()

    assert cached.is_file()
    assert cached.stat().st_mtime >= source.stat().st_mtime
    # The loader takes it: the bytecode names this very source.
    assert importlib.util.source_from_cache(str(cached)) == str(source)
