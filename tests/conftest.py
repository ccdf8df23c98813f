"""The shared fixtures live in tests/support/; this registers them for every test."""

from __future__ import annotations

pytest_plugins = [
    "tests.support.temporal",
    "tests.support.databases",
    "tests.support.sendgrid",
    "tests.support.processes",
    "tests.support.workflow_harness",
    "tests.support.api_harness",
]
