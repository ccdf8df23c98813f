"""`make bench` works: a tiny run reports figures that agree with each other.

It runs the script as `make bench` does, in its own process with its own test
server. Nothing here is about speed.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bench.list_bench import PAGES
from bench.scale_bench import WorkerProcess
from settings import Settings
from testkit import postgres
from testkit.factories import REPO


def run_bench_script(
    script: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """A script of bench/ as `make bench` runs it: its own process, output captured."""
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_bench_reports_consistent_figures_for_two_journeys() -> None:
    run = run_bench_script(
        "bench.py",
        *("--journeys", "2", "--mail-sends", "20", "--intake-events", "150"),
        *("--list-customers", "300", "--json"),
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    journey, bare = report["journey"], report["bare"]

    assert journey["workflows"] == journey["completed"] == 2
    assert bare["workflows"] == bare["completed"] == 2
    assert report["ratio"] == pytest.approx(journey["wall_seconds"] / bare["wall_seconds"])
    assert journey["history"]["events"] > 0 and journey["history"]["json_bytes"] > 0
    # The playbook in the start input alone deflates to well under half.
    history = journey["history"]
    assert 0 < history["compressed_proto_bytes"] < history["proto_bytes"] / 1.5
    # The baseline copies the commonest journey history: its activities and timers. How
    # many timers a journey starts depends on how its updates meet its waits, and a
    # journey crossing New Year looks up the next year's holidays (one activity more),
    # so the journeys' mean is compared with it only within that one activity.
    shape = report["bare_input"]
    assert bare["history"]["activities"] == sum(shape["activity_batches"]) > 0
    assert abs(journey["history"]["activities"] - bare["history"]["activities"]) <= 1
    # The journey's database work runs as local activities; the baseline runs as many.
    local = bare["history"]["local_activities"]
    assert local == sum(shape["local_activity_batches"]) > 0
    assert abs(journey["history"]["local_activities"] - local) <= 1
    assert bare["history"]["timers_started"] == shape["timers"] > 0
    assert journey["history"]["updates"] == 3  # kickoff, training, completion review
    assert journey["cpu_seconds_per_workflow"] == pytest.approx(journey["cpu_seconds"] / 2)
    # The rest is what the activity threads and the usage inserts leave of the CPU; the
    # bare twin has neither, so its rest is all of its CPU.
    assert journey["rest_cpu_seconds_per_workflow"] == pytest.approx(
        (journey["cpu_seconds"] - journey["activity_cpu_seconds"]) / 2
        - journey["usage_insert_cpu_seconds_per_workflow"]
    )
    assert 0 < journey["rest_cpu_seconds_per_workflow"] < journey["cpu_seconds_per_workflow"]
    assert bare["rest_cpu_seconds_per_workflow"] == pytest.approx(bare["cpu_seconds_per_workflow"])
    assert "the rest: workflow tasks, updates, queries" in run.stderr
    # The human-readable table goes to stderr alongside the JSON.
    assert "wall time, all workflows (s)" in run.stderr

    # Email: every shipped template variant rendered, each as often; every send accepted.
    mail = report["mail"]
    shipped = list((REPO / "templates" / "email").glob("*.txt"))
    assert mail["templates"] == len(shipped) > 0
    assert mail["renders"] >= mail["templates"] and mail["renders"] % mail["templates"] == 0
    assert mail["renders_per_second"] > 0
    assert mail["sends"] == mail["accepted"] == 20
    assert mail["sends_per_second"] > 0
    assert "templates rendered per second" in run.stderr
    assert "emails handed to loopback SendGrid per second" in run.stderr

    # Encryption: every payload of a saved journey sealed (larger) and opened again.
    codec = report["codec"]
    assert codec["payloads"] > 50
    assert codec["sealed_bytes"] > codec["plain_bytes"] > 0
    assert codec["encrypt_ms"] > 0 and codec["decrypt_ms"] > 0
    assert "Payload encryption (AES-256-GCM)" in run.stderr

    # Usage intake: every event posted is stored once, in batches of 100, on each database
    # that answered; a database that did not is reported skipped, with the reason.
    intake = report["intake"]
    assert intake["sqlite"]["skipped"] is None
    for name, figures in (("SQLite", intake["sqlite"]), ("PostgreSQL", intake["postgresql"])):
        assert figures["database"] == name
        label = f"usage events ingested per second via /v1/batch ({name})"
        assert label in run.stderr
        if figures["skipped"] is not None:
            assert name == "PostgreSQL" and "not reachable" in figures["skipped"]
            continue
        assert figures["events"] == figures["stored"] == 150
        assert figures["batches"] == 2
        assert figures["events_per_second"] == pytest.approx(figures["events"] / figures["seconds"])

    # Lists: each page answered on each database that answered, its p50 within its p95.
    lists = report["lists"]
    assert lists["sqlite"]["skipped"] is None
    for figures in (lists["sqlite"], lists["postgresql"]):
        if figures["skipped"] is not None:
            continue
        assert figures["customers"] == 300
        # Every page of the list bench, the cohort analytics included.
        assert [page["label"] for page in figures["pages"]] == [label for label, _, _ in PAGES]
        assert all(0 < page["p50_ms"] <= page["p95_ms"] for page in figures["pages"])
    assert "dashboard: cohort (lead)" in run.stderr
    assert "REST: time to onboard by purpose" in run.stderr


def test_bench_runs_the_journeys_on_postgresql_and_drops_its_schema(
    postgres_admin_url: str,
) -> None:
    before = postgres.schemas_named("bench_journeys_")
    run = run_bench_script(
        "bench.py",
        *("--journeys", "2", "--database", "postgresql", "--mail-sends", "1"),
        *("--intake-events", "1", "--list-customers", "1", "--json"),
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["database"] == "PostgreSQL"
    assert report["journey"]["completed"] == 2
    # The journeys' writes ran in activity threads against the server.
    assert report["journey"]["activity_cpu_seconds"] > 0
    assert "real activities, PostgreSQL, outbox on disk" in run.stderr
    assert postgres.schemas_named("bench_journeys_") == before


def test_bench_refuses_an_unknown_database_before_any_journey() -> None:
    run = run_bench_script("bench.py", "--database", "mysql", timeout=60)
    assert run.returncode == 2
    assert "--database: invalid choice: 'mysql'" in run.stderr
    assert "phase 1" not in run.stderr


DEFAULT_WORKFLOW_TASKS = Settings.model_fields["max_concurrent_workflow_tasks"].default


def test_the_scale_bench_counts_the_sdks_slow_and_timed_out_workflow_tasks(
    tmp_path: Path,
) -> None:
    # The SDK core's lines as the worker prints them (colours stripped), among others.
    output = io.StringIO(
        "activities 12\n"
        "WARN temporalio_sdk_core::worker::workflow::managed_run: [TMPRL1104] "
        "abc:23:1 Workflow task duration exceeded 5 seconds.\n"
        "WARN temporalio_sdk_core::worker::workflow: Task not found when completing "
        "error=code: 'Some requested entity was not found'\n"
        "WARN temporalio_sdk_core::worker::workflow::managed_run: [TMPRL1104] "
        "def:40:1 Workflow task duration exceeded 5 seconds.\n"
        "worker started\n"
    )
    worker = WorkerProcess([], {}, tmp_path / "worker.log", "worker started")

    worker._read(output)

    assert (worker.reported, worker.slow_tasks, worker.lost_tasks) == (12, 2, 1)
    assert worker.ready
    assert "activities 12" not in (tmp_path / "worker.log").read_text()
    # The bare twin's worker is ready at its first count.
    bare = WorkerProcess([], {}, tmp_path / "bare.log", "activities")
    bare._read(io.StringIO("activities 0\n"))
    assert bare.ready


# With --compress (and --playbooks-by-reference), the real worker process and its clients
# run with compressed payloads (and playbooks kept by reference): starts, updates, queries
# and the replays after a restart all read them. The weekly tick (its own phase, on the
# time-skipping server) runs in one of them: the other two skip it.
@pytest.mark.parametrize(
    ("compress", "by_reference", "tick"),
    [(False, False, 0), (True, False, 0), (True, True, 3)],
    ids=["plain", "compressed", "compressed-by-reference-with-tick"],
)
def test_bench_scale_measures_both_workers_and_stops_by_itself(
    tmp_path: Path, compress: bool, by_reference: bool, tick: int
) -> None:
    figures = tmp_path / "scale.json"
    run = run_bench_script(
        "scale_bench.py",
        *("--customers", "6", "--tick", str(tick), "--timeout", "300", "--json", str(figures)),
        *(["--compress"] if compress else []),
        *(["--playbooks-by-reference"] if by_reference else []),
        timeout=360,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    reported = json.loads(figures.read_text())
    liftoff, bare = reported["scale"]
    for phase in (liftoff, bare):
        assert phase["customers"] == 6
        assert phase["absorb_seconds"] > 0
        # Every sample taken: 6 updates, 6 cached and 6 replayed queries.
        assert len(phase["update_ms"]) == len(phase["query_cached_ms"]) == 6
        assert len(phase["query_replayed_ms"]) == 6
        assert phase["rss_loaded_mb"] > 0
        assert phase["workflow_tasks"] == DEFAULT_WORKFLOW_TASKS
    assert liftoff["compressed"] is compress
    assert liftoff["by_reference"] is by_reference
    assert "RSS per cached customer" in run.stdout
    assert "workflow tasks timed out" in run.stdout
    assert ("payloads compressed" in run.stdout) is compress
    assert ("playbooks by reference" in run.stdout) is by_reference
    assert ("Weekly tick" in run.stdout) is bool(tick)
    if not tick:
        assert reported["tick"] == []
        return
    ours, theirs = reported["tick"]
    for phase in (ours, theirs):
        assert phase["customers"] == tick
        assert phase["seconds"] > 0
        assert phase["worker_cpu_seconds"] > 0
    # The default playbook measures on Monday in the customer's zone (Tokyo here).
    measured_at = datetime.fromisoformat(ours["instant"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert measured_at.weekday() == 0
    assert f"Weekly tick: {tick} customers" in run.stdout


def test_simulate_bench_runs_the_cohort_it_names_under_both_playbooks() -> None:
    run = run_bench_script(
        "simulate_bench.py", *("--customers", "4", "--weeks", "3", "--compare", "--json")
    )
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)

    assert (figures["customers"], figures["weeks"], figures["playbooks"]) == (4, 3, 2)
    assert len(figures["onboarded"]) == len(figures["emails_per_customer"]) == 2
    assert all(0 <= onboarded <= 4 for onboarded in figures["onboarded"])
    assert figures["wall_seconds"] > 0
    assert figures["cpu_seconds"] > 0


def test_the_journey_events_bench_follows_every_run_of_each_customer() -> None:
    run = run_bench_script("journey_events_bench.py", "--json")
    assert run.returncode == 0, run.stderr
    journeys = json.loads(run.stdout)
    assert {j["profile"] for j in journeys} == {"onboards-late", "never-onboards"}
    for journey in journeys:
        # A run's events are part of the journey's, and a journey lasts at most the
        # default playbook's 180-day deadline.
        assert 0 < journey["largest_run"] <= journey["events"]
        assert 0 < journey["days"] <= 180.5
    late = [j for j in journeys if j["profile"] == "onboards-late"]
    never = [j for j in journeys if j["profile"] == "never-onboards"]
    assert max(j["days"] for j in late) < min(j["days"] for j in never)
