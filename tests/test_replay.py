"""Replay saved histories against today's workflow code.

A change to the workflow that would break customers already in flight fails
here. The histories in tests/histories/ come from the lifecycle tests; keep old
ones when the workflow changes (guard new logic with workflow.patched).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from client.connection import data_converter
from settings import Settings
from tests.support.workflow_harness import replay_database_url
from workflows.onboarding import CustomerOnboardingWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_change_is_asked_through_the_baseline() -> None:
    # workflows/patches.py: a change in the baseline asked with `workflow.patched`
    # directly would record its own marker in new histories and could be settled
    # before the baseline is, which the baseline's replay argument rules out.
    workflows = Path(__file__).parent.parent / "workflows"
    # (events.py's `workflow` is the Journey protocol, whose `patched` is `taken`.)
    direct = [
        path.name
        for path in sorted(workflows.glob("*.py"))
        if path.name != "patches.py"
        and "from temporalio import workflow" in (text := path.read_text())
        and "workflow.patched(" in text
    ]
    assert direct == []


def test_histories_are_kept() -> None:
    assert len(HISTORIES) >= 3, "tests/histories/ lost its saved histories"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_saved_history_replays(path: Path, tmp_path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    # The data converter every process uses: it reads playbooks stored by reference.
    converter = data_converter(Settings(database_url=replay_database_url(tmp_path)))
    replayer = Replayer(workflows=[CustomerOnboardingWorkflow], data_converter=converter)
    await replayer.replay_workflow(history)
