"""`make bench` works: a tiny run reports figures that agree with each other.

It runs the script as `make bench` does, in its own process with its own test
server. Nothing here is about speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.factories import REPO


def test_bench_reports_consistent_figures_for_two_journeys() -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench.py"), "--journeys", "2", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    journey, bare = report["journey"], report["bare"]

    assert journey["workflows"] == journey["completed"] == 2
    assert bare["workflows"] == bare["completed"] == 2
    assert report["ratio"] == pytest.approx(journey["wall_seconds"] / bare["wall_seconds"])
    assert journey["history"]["events"] > 0 and journey["history"]["json_bytes"] > 0
    # The baseline copies the journey's Temporal work: same activities and timers.
    assert bare["history"]["activities"] == journey["history"]["activities"] > 0
    assert bare["history"]["timers_started"] == journey["history"]["timers_started"]
    assert sum(report["bare_input"]["activity_batches"]) == journey["history"]["activities"]
    assert journey["history"]["updates"] == 3  # kickoff, training, completion review
    assert journey["cpu_seconds_per_workflow"] == pytest.approx(journey["cpu_seconds"] / 2)
    # The human-readable table goes to stderr alongside the JSON.
    assert "wall time, all workflows (s)" in run.stderr
