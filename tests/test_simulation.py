"""`liftoff simulate`: the real workflow over a small synthetic cohort on the
time-skipping server, its figures, its determinism and its refusals."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cli.main import main
from emails.render import build_template_environment
from records.playbooks import load_playbook
from simulation.cohort import synthetic_cohort
from simulation.profiles import ProfileError, load_profiles
from simulation.report import PlaybookFigures, markdown, playbook_figures
from simulation.runner import Arm, simulate
from testkit.factories import REPO, TEMPLATES

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


async def run_once(profile_file: Path, workdir: Path, seed: int) -> PlaybookFigures:
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
        templates=build_template_environment(TEMPLATES),
    )
    return playbook_figures(run, run.arms[0])


async def test_a_strong_customer_onboards_and_one_that_never_sets_up_never_does_the_same_each_run(
    profile_file: Path, tmp_path: Path
) -> None:
    first = await run_once(profile_file, tmp_path / "first", seed=5)
    again = await run_once(profile_file, tmp_path / "again", seed=5)

    assert first.profiles == {"never-sets-up": (2, 0), "strong": (4, 4)}
    assert first.funnel["adoption"] == 6
    assert first.setup_stuck_customers == 2
    assert first.escalated_customers == 2  # stuck in setup for 4 weeks: the leader hears
    assert first.median_days_to_onboard is not None
    assert first.median_days_to_onboard < 7 * WEEKS
    assert first.emails_per_customer["all"] > 0
    assert first.refused_events == 0
    # Same seed, same cohort, same figures, to the character.
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
