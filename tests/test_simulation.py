"""`liftoff simulate`: the real workflow over a small synthetic cohort on the
time-skipping server, its figures, its determinism and its refusals."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import simulation.shard as shard
from activities.calendar import public_holidays_of
from cli.errors import EXIT_TERMINATED
from cli.main import main
from models.onboarding import Stage
from models.tables import TimelineEntry
from records.database import Database
from records.history import past_customers
from records.playbooks import load_playbook
from simulation.cohort import UsageKind, synthetic_cohort
from simulation.profiles import ProfileError, ProfileSet, load_profiles
from simulation.report import PlaybookFigures, markdown, playbook_figures
from simulation.runner import MAX_WEEKS, Arm, simulate
from testkit.factories import REPO, TEMPLATES, add_usage, make_handoff, store_customer
from testkit.projections import insert_projection_rows, projection_row
from tests.support.eventually import eventually_blocking

DEFAULT = REPO / "playbooks" / "default.toml"
WEEKS = 8
# Two kinds of customer, four and two: one uses the product well from its first
# weeks, the other holds its meetings but never sends any usage.
PROFILES = """
[[profiles]]
name = "strong"
share = 0.67
seats = 10
quota = 100
kickoff_day = 1
training_day = 3
goals = 1
review_after_days = 2
active_seat_ratio = [0.8]
key_actions = [40]
quota_share = [0.2]

[[profiles]]
name = "never-sets-up"
share = 0.33
seats = 10
kickoff_day = 1
training_day = 3
review_after_days = 2
active_seat_ratio = [0.0]
key_actions = [0]
"""


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILES)
    return path


async def run_once(profile_file: Path, workdir: Path, seed: int, processes: int) -> PlaybookFigures:
    playbook = load_playbook(DEFAULT)
    cohort = synthetic_cohort(
        load_profiles(profile_file), 6, seed=seed, weeks=WEEKS, purposes=["A", "B"]
    )
    workdir.mkdir()
    run = await simulate(
        [Arm("new", playbook)],
        cohort,
        weeks=WEEKS,
        workdir=workdir,
        templates_dir=TEMPLATES,
        processes=processes,
    )
    return playbook_figures(run, run.arms[0])


async def test_a_strong_customer_onboards_and_one_that_never_sets_up_never_does_the_same_each_run(
    profile_file: Path, tmp_path: Path
) -> None:
    first = await run_once(profile_file, tmp_path / "first", seed=5, processes=1)
    again = await run_once(profile_file, tmp_path / "again", seed=5, processes=2)

    assert first.profiles == {"never-sets-up": (2, 0), "strong": (4, 4)}
    assert first.funnel["adoption"] == 6
    assert first.setup_stuck_customers == 2
    assert first.escalated_customers == 2  # stuck in setup for 4 weeks: the leader hears
    assert first.median_days_to_onboard is not None
    assert first.median_days_to_onboard < 7 * WEEKS
    assert first.emails_per_customer["all"] > 0
    assert first.refused_events == 0
    # Same seed, same cohort, same figures, to the character, in one shard or in two
    # (each with its own server and database, merged afterwards).
    assert again == first
    assert markdown([again], title="t") == markdown([first], title="t")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit:  # argparse refusals
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_shows_fewer_onboarded_when_the_seat_threshold_is_raised(
    capsys: pytest.CaptureFixture[str], profile_file: Path, tmp_path: Path
) -> None:
    # Strong customers use 80% of their seats: a 90% threshold is out of their reach.
    raised = tmp_path / "raised.toml"
    text = DEFAULT.read_text()
    raised.write_text(text.replace("at_least = 0.6\n", "at_least = 0.9\n", 1))
    out_dir = tmp_path / "out"

    code, out, err = cli(
        capsys,
        "simulate",
        "--playbook",
        str(raised),
        "--compare",
        str(DEFAULT),
        "--synthetic",
        "6",
        "--profile",
        str(profile_file),
        "--weeks",
        str(WEEKS),
        "--out",
        str(out_dir),
    )

    assert code == 0, err
    assert "| reached onboarded | 0 | 4 | -4 |" in out
    assert (out_dir / "summary.md").read_text() == out
    with (out_dir / "summary.csv").open() as file:
        onboarded = next(r for r in csv.DictReader(file) if r["measure"] == "reached onboarded")
    assert onboarded["difference"] == "-4"
    assert "simulated 6 customers x 8 weeks under 2 playbook(s)" in err


def test_a_shard_process_that_dies_ends_the_run_at_once_saying_so(
    capsys: pytest.CaptureFixture[str], profile_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One core, so two shards; the second shard's process dies two seconds in.
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    start_process = asyncio.create_subprocess_exec

    async def crash_instead(_program: str, *_args: str, **kwargs: Any) -> Any:
        return await start_process("sh", "-c", "sleep 2; exit 1", **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", crash_instead)
    began = time.perf_counter()

    # Shard 0 alone would live 20 customers' two years: about 15 seconds.
    code, out, err = cli(
        capsys,
        "simulate",
        "--playbook",
        str(DEFAULT),
        "--synthetic",
        "40",
        "--profile",
        str(profile_file),
        "--weeks",
        "104",
    )

    assert code == 1
    assert out == ""
    assert "liftoff: error: a simulation shard process failed (exit code 1)" in err
    # When it died, not once shard 0 was done.
    assert time.perf_counter() - began < 10


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("share = 0.67", "share = -1"),
        ("active_seat_ratio = [0.8]", "active_seat_ratio = [1.5]"),
        ("kickoff_day = 1\ntraining_day = 3\ngoals = 1", "training_day = 3\ngoals = 1"),
        ('name = "strong"', 'name = "strong"\ncolour = "blue"'),
    ],
)
def test_a_bad_profile_file_is_refused_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, change: str, named: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(PROFILES.replace(change, named, 1))

    with pytest.raises(ProfileError) as refused:
        load_profiles(path)
    code, out, err = cli(
        capsys, "simulate", "--playbook", str(DEFAULT), "--synthetic", "2", "--profile", str(path)
    )

    assert code == 2
    assert out == ""
    assert err.strip() == f"liftoff: error: {refused.value}"
    assert str(path) in err
    assert "profiles[1]" in err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--synthetic", "0"], "0 is not between 1 and 2000"),
        (["--synthetic", "5", "--weeks", "105"], "105 is not between 1 and 104"),
        (["--synthetic", "5", "--from-history"], "not allowed with argument"),
        ([], "one of the arguments --synthetic --from-history is required"),
        (["--from-history", "--profile", "x.toml"], "use it with --synthetic"),
        (["--synthetic", "5", "--customers", "5"], "use it with --from-history"),
        (["--synthetic", "5", "--out", str(DEFAULT)], "exists and is not a directory"),
        # Checked before the run: the report of minutes of simulation had been lost.
        (["--synthetic", "5", "--out", str(DEFAULT / "report")], "exists and is not a directory"),
        (
            ["--synthetic", "5", "--compare", str(REPO / "playbooks" / "demo.toml")],
            "needs at least 1 day",
        ),
    ],
)
def test_simulate_refuses_bad_arguments_in_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    code, out, err = cli(capsys, "simulate", "--playbook", str(DEFAULT), *argv)

    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert said in err


# --from-history: past customers replayed from the database.

STARTED = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def record_past_customer(
    database: Database,
    customer_id: str,
    *,
    started: datetime,
    outcome: Stage | None,
    good_weeks: int,
    reviewed: bool,
) -> None:
    """A customer as its workflow left it: handoff, projection, meetings, usage."""
    store_customer(database, make_handoff(customer_id=customer_id, purposes=["A"]))
    stage = outcome or Stage.ADOPTION
    insert_projection_rows(
        database, [projection_row(customer_id, started, stage=stage.value, started_at=started)]
    )
    meetings: list[tuple[timedelta, str, dict[str, Any]]] = [
        (timedelta(days=2, hours=3), "kickoff_held", {"goals": ["Scan every invoice"]}),
        (timedelta(days=5, hours=1), "training_held", {}),
    ]
    if reviewed:
        meetings += [
            (timedelta(days=20), "transition", {"to": Stage.COMPLETION_REVIEW.value}),
            (timedelta(days=23, hours=2), "completion_review_held", {}),
        ]
    with database.session() as session:
        for seq, (offset, kind, details) in enumerate(meetings, start=1):
            session.add(
                TimelineEntry(
                    customer_id=customer_id,
                    seq=seq,
                    at=started + offset,
                    kind=kind,
                    stage=stage.value,
                    summary=kind,
                    details=details,
                )
            )
    for week in range(good_weeks):
        at = started + timedelta(weeks=week, days=1)
        add_usage(database, customer_id, at, active_users=8, actions_per_user=5, quota_units=40)
    # Before the start: not part of the onboarding, never replayed.
    add_usage(database, customer_id, started - timedelta(days=3), active_users=1)


def test_past_customers_are_read_with_their_meetings_and_usage_relative_to_their_start(
    database: Database,
) -> None:
    record_past_customer(
        database, "past-good", started=STARTED, outcome=Stage.ONBOARDED, good_weeks=3, reviewed=True
    )
    record_past_customer(
        database,
        "past-idle",
        started=STARTED + timedelta(days=1),
        outcome=Stage.FAILED,
        good_weeks=0,
        reviewed=False,
    )

    idle, good = past_customers(database, limit=10, weeks=2)

    assert (idle.customer_id, idle.outcome, idle.usage) == ("past-idle", "failed", [])
    assert idle.review_delay is None
    assert good.kickoff == timedelta(days=2, hours=3)
    assert good.training == timedelta(days=5, hours=1)
    assert good.review_delay == timedelta(days=3, hours=2)
    assert good.goals == 1
    # Two weeks of three: 8 users, each a login and 5 key actions, and the quota event.
    assert len(good.usage) == 2 * (8 * 6 + 1)
    assert good.usage[0].offset == timedelta(days=1)
    assert past_customers(database, limit=1, weeks=2)[0].customer_id == "past-idle"


def test_from_history_replays_past_customers_under_the_new_playbook(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sqlite_database: Database,
) -> None:
    record_past_customer(
        sqlite_database,
        "past-good",
        started=STARTED,
        outcome=Stage.ONBOARDED,
        good_weeks=WEEKS,
        reviewed=True,
    )
    record_past_customer(
        sqlite_database,
        "past-idle",
        started=STARTED,
        outcome=Stage.FAILED,
        good_weeks=0,
        reviewed=False,
    )
    monkeypatch.setenv("DATABASE_URL", str(sqlite_database.url))

    code, out, err = cli(
        capsys, "simulate", "--playbook", str(DEFAULT), "--from-history", "--weeks", str(WEEKS)
    )

    assert code == 0, err
    assert "the 2 most recent past customers replayed" in out
    assert "| was-onboarded (1 customers) | 1 |" in out
    assert "| was-failed (1 customers) | 0 |" in out
    assert "| customers stuck in setup | 1 |" in out


# The synthetic cohort, without a server.


def test_a_cohort_follows_the_shares_and_the_seed() -> None:
    profiles = load_profiles()
    cohort = synthetic_cohort(profiles, 200, seed=1, weeks=26, purposes=["A", "B"])

    counts = {name: sum(c.profile == name for c in cohort) for name in ("strong", "never-sets-up")}
    assert counts == {"strong": 70, "never-sets-up": 30}  # shares 0.35 and 0.15 of 200
    assert synthetic_cohort(profiles, 200, seed=1, weeks=26, purposes=["A", "B"]) == cohort
    other = synthetic_cohort(profiles, 200, seed=2, weeks=26, purposes=["A", "B"])
    assert [c.profile for c in other] != [c.profile for c in cohort]


def test_any_seven_day_window_sees_each_weeks_active_users_once(profile_file: Path) -> None:
    strong_only = ProfileSet(profiles=load_profiles(profile_file).profiles[:1])
    (customer,) = synthetic_cohort(
        strong_only,
        1,
        seed=3,
        weeks=4,
        purposes=["A"],
    )
    for start_day in range(0, 21):
        start = timedelta(days=start_day, hours=9)
        seen = {
            row.user_id for row in customer.usage if start <= row.offset < start + timedelta(days=7)
        }
        assert len(seen) == 8, start_day  # 80% of 10 seats, whatever day the window starts
    key_actions = [r for r in customer.usage if r.kind is UsageKind.KEY_ACTION]
    assert len(key_actions) == 4 * 40


def test_every_year_a_simulation_can_reach_has_japans_public_holidays() -> None:
    # The holidays library knows Japan's holidays up to 2099; past it, a Japanese
    # customer's business days and campaign emails would skip no holiday.
    last = shard.START + timedelta(weeks=MAX_WEEKS)
    for year in range(shard.START.year, last.year + 1):
        assert public_holidays_of("JP", [year]), year


def _descendants(pid: int) -> dict[int, str]:
    """The processes under `pid` and their command lines, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            with contextlib.suppress(OSError):
                found[child] = (Path("/proc") / str(child) / "cmdline").read_text()
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _test_servers() -> set[int]:
    """Every running time-skipping test server on this machine."""
    return {pid for pid, command in _descendants(1).items() if "temporal-test-server" in command}


def _run_directories() -> set[Path]:
    places = {Path("/dev/shm"), Path(tempfile.gettempdir())}
    return {run for place in places if place.is_dir() for run in place.glob("liftoff-simulation-*")}


def test_sigterm_stops_a_simulation_with_the_servers_processes_and_files_it_started(
    profile_file: Path, tmp_path: Path
) -> None:
    before = _run_directories()
    servers_before = _test_servers()
    # A service manager's stop: SIGTERM to the command alone, not to a process group.
    # Output to a file: a pipe would also wait for every process that inherited it.
    err_path = tmp_path / "stderr.txt"
    with err_path.open("w") as err_file:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "liftoff"), "simulate", "--playbook", str(DEFAULT)]
            + ["--synthetic", "40", "--profile", str(profile_file), "--weeks", "104"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
            start_new_session=True,
        )
    try:
        started = eventually_blocking(
            lambda: _descendants(process.pid),
            lambda found: sum("temporal-test-server" in line for line in found.values()) >= 2,
            what="the simulation's test servers",
            timeout=60,
        )
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    err = err_path.read_text()
    assert process.returncode == EXIT_TERMINATED, err[-2000:]
    assert "liftoff: stopped (SIGTERM)" in err
    assert "Task exception was never retrieved" not in err
    eventually_blocking(
        lambda: (
            [command for pid, command in started.items() if _alive(pid)]
            + [f"test server {pid}" for pid in _test_servers() - servers_before]
        ),
        lambda left: not left,
        what="every process the simulation started gone",
        timeout=15,
    )
    assert _run_directories() == before
