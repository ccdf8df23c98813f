"""`liftoff demo cohort`: 200 synthetic customers through the real workflow on the
time-skipping server, outcomes planted after their onboarding from what the workflow
measured, and the outcome analysis finding the planted relationship, and nothing where
none was planted; the command's refusals."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from analytics.outcomes import Verdict, analyse
from api.dashboard.outcomes import conclusions
from cli.main import main
from cli.parser import PLANTED_RELATIONSHIPS
from models.onboarding import Stage
from records.database import Database
from records.outcomes import customer_outcomes, outcome_facts
from records.playbooks import load_playbook
from simulation.cohort import synthetic_cohort
from simulation.demo import ENDED_DAYS_AGO, DemoError, demo_arm, shifted, write_demo
from simulation.outcomes import KEY_ACTIONS_LEVEL, Relationship
from simulation.profiles import load_profiles
from simulation.runner import SimulationRun, simulate
from testkit.factories import REPO, TEMPLATES
from tests.support.api_harness import ApiHarness

CUSTOMERS = 200
# The default playbook with its deadline at 7 weeks instead of 26, so 8 weeks end every
# onboarding: the shipped profiles' strong customers onboard within it, the others fail.
DEADLINE = "49d"
WEEKS = 8
TODAY = date(2026, 12, 5)


def short_playbook(directory: Path) -> Path:
    text = (REPO / "playbooks" / "default.toml").read_text()
    short = text.replace('momentum_after = "90d"', 'momentum_after = "28d"', 1).replace(
        'deadline = "180d"', f'deadline = "{DEADLINE}"', 1
    )
    assert short != text
    path = directory / "short.toml"
    path.write_text(short)
    return path


@pytest.fixture(scope="module")
def playbook_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return short_playbook(tmp_path_factory.mktemp("playbook"))


@pytest.fixture(scope="module")
async def simulated(playbook_file: Path, tmp_path_factory: pytest.TempPathFactory) -> SimulationRun:
    """One run of 200 customers, shared by the tests that plant outcomes after it."""
    arm = demo_arm(load_playbook(playbook_file))
    cohort = synthetic_cohort(
        load_profiles(),
        CUSTOMERS,
        seed=1,
        weeks=WEEKS,
        purposes=[purpose.id for purpose in arm.playbook.purposes],
    )
    return await simulate(
        [arm],
        cohort,
        weeks=WEEKS,
        workdir=tmp_path_factory.mktemp("simulation"),
        templates_dir=TEMPLATES,
    )


def test_the_analysis_finds_that_customers_with_few_key_actions_churn_3x_more(
    simulated: SimulationRun, database: Database
) -> None:
    written = write_demo(simulated, database, Relationship.KEY_ACTIONS, seed=1, today=TODAY)

    # Every onboarding ended by the deadline, onboarded or failed, as the workflow decided.
    assert written.in_flight == 0
    assert written.count(Stage.ONBOARDED) + written.count(Stage.FAILED) == CUSTOMERS
    assert written.count(Stage.ONBOARDED) >= 40 and written.count(Stage.FAILED) >= 40
    assert max(e.ended_at for e in written.endings).date() <= TODAY - timedelta(ENDED_DAYS_AGO)
    assert all(e.customer_id.startswith("demo-") for e in written.endings)
    # The planting read what the weekly measurements saw: onboarding needs 20 key actions.
    for ending in written.endings:
        if ending.outcome is Stage.ONBOARDED:
            assert ending.usage is not None and ending.usage.key_actions >= KEY_ACTIONS_LEVEL

    analysis = analyse(
        outcome_facts(database, playbook_version=written.playbook_version), as_of=TODAY
    )

    assert analysis.customers == CUSTOMERS
    year = analysis.horizon(12)
    # Planted: below 20 key actions a week 45% churn, at or above 15%.
    key_actions = next(k for k in year.criteria if k.criterion.metric == "key_actions")
    assert key_actions.churn_lift.verdict is Verdict.CONCLUSIVE
    assert (key_actions.churn_lift.low or 0) > 1
    assert key_actions.churn_lift.value == pytest.approx(3, abs=0.2)
    assert key_actions.health_lift.verdict is Verdict.CONCLUSIVE
    headline = analysis.headline
    assert headline is not None
    assert headline.churn_difference.verdict is Verdict.CONCLUSIVE
    assert (headline.churn_difference.low or 0) > 0
    assert headline.health_ratio.verdict is Verdict.CONCLUSIVE
    assert (headline.health_ratio.low or 0) > 1
    assert conclusions(analysis)["en"].count(": conclusive") == 2


def test_where_nothing_was_planted_after_the_same_run_nothing_is_concluded(
    simulated: SimulationRun, sqlite_database: Database
) -> None:
    written = write_demo(simulated, sqlite_database, Relationship.NONE, seed=1, today=TODAY)

    analysis = analyse(
        outcome_facts(sqlite_database, playbook_version=written.playbook_version), as_of=TODAY
    )

    assert analysis.customers == CUSTOMERS
    for horizon in analysis.horizons:
        for compared in horizon.comparisons:
            assert compared.churn_difference.verdict is not Verdict.CONCLUSIVE
            assert compared.health_ratio.verdict is not Verdict.CONCLUSIVE
        for criterion in horizon.criteria:
            for estimate in (criterion.churn_lift, criterion.health_lift):
                assert estimate.verdict is not Verdict.CONCLUSIVE, criterion.criterion.label
    assert conclusions(analysis)["en"].count(": not conclusive") == 2


def test_a_second_demo_into_the_same_database_is_refused_unless_it_replaces_the_first(
    simulated: SimulationRun, sqlite_database: Database
) -> None:
    first = write_demo(simulated, sqlite_database, Relationship.KEY_ACTIONS, seed=1, today=TODAY)

    with pytest.raises(DemoError, match="already holds 200 demo customers .* --replace"):
        write_demo(simulated, sqlite_database, Relationship.NONE, seed=1, today=TODAY)
    again = write_demo(
        simulated, sqlite_database, Relationship.NONE, seed=2, today=TODAY, replace=True
    )

    assert again.rows == first.rows
    facts = outcome_facts(sqlite_database, playbook_version=again.playbook_version)
    assert len(facts) == CUSTOMERS
    # The first demo's outcomes went with its customers: one renewal or churn each.
    assert all(len(customer_outcomes(sqlite_database, f.customer_id)) == 1 for f in facts)


async def test_the_leaders_pages_show_the_demo_cohort(
    simulated: SimulationRun, api: ApiHarness
) -> None:
    written = write_demo(simulated, api.database, Relationship.KEY_ACTIONS, seed=1, today=TODAY)
    version = written.playbook_version

    async with api.as_lead() as lead:
        outcomes = await lead.get("/cohort/outcomes", params={"playbook_version": version})
        review = await lead.get("/cohort/review", params={"version": version})
        cohort = await lead.get("/cohort")

    assert outcomes.status_code == 200
    assert "conclusive" in outcomes.text and version in outcomes.text
    assert review.status_code == 200 and version in review.text
    assert cohort.status_code == 200


def test_instants_dates_and_dates_in_text_move_back_by_whole_weeks() -> None:
    back = timedelta(weeks=3)
    at = datetime(2094, 1, 25, 10, 20, tzinfo=UTC)

    assert shifted(at, back) == datetime(2094, 1, 4, 10, 20, tzinfo=UTC)
    assert shifted(date(2094, 1, 25), back) == date(2094, 1, 4)
    assert shifted(
        {
            "window": ["2094-01-25T00:00:00Z", "2094-01-25"],
            "summary": "kickoff held on 2094-01-25 under 2026.12.2, asked 2026-12-05",
            "week": 3,
        },
        back,
    ) == {
        "window": ["2094-01-04T00:00:00Z", "2094-01-04"],
        "summary": "kickoff held on 2094-01-04 under 2026.12.2, asked 2026-12-05",
        "week": 3,
    }


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit:  # argparse refusals
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--customers", "10"], "argument --customers: 10 is not between 50 and 2000"),
        (["--customers", "5000"], "argument --customers: 5000 is not between 50 and 2000"),
        (["--customers", "many"], "argument --customers: 'many' is not a whole number"),
        (["--weeks", "0"], "argument --weeks: 0 is not between 1 and 104"),
        (["--seed", "-1"], "argument --seed: -1 is not between 0 and 4294967295"),
        (["--planted", "seats"], "argument --planted: invalid choice: 'seats'"),
        (
            ["--playbook", str(REPO / "playbooks" / "demo.toml")],
            "measurement.every is 0:00:07; the simulator needs at least 1 day",
        ),
        (["--database", "not a url"], "--database: 'not a url' is not a database URL"),
    ],
)
def test_demo_cohort_refuses_bad_arguments_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], said: str
) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    code, out, err = cli(capsys, "demo", "cohort", "--database", url, *argv)

    assert code == 2
    assert said in err
    assert len(err.strip().splitlines()) == 1
    assert out == ""


def test_the_command_offers_every_relationship_the_simulation_plants() -> None:
    assert PLANTED_RELATIONSHIPS == tuple(relationship.value for relationship in Relationship)


def test_demo_cohort_refuses_a_database_that_holds_a_demo_before_simulating(
    capsys: pytest.CaptureFixture[str], simulated: SimulationRun, sqlite_database: Database
) -> None:
    write_demo(simulated, sqlite_database, Relationship.KEY_ACTIONS, seed=1, today=TODAY)
    url = sqlite_database.url.render_as_string(hide_password=False)

    code, _, err = cli(capsys, "demo", "cohort", "--database", url)

    assert code == 2
    assert "already holds 200 demo customers (demo-…); pass --replace" in err


def test_demo_cohort_writes_the_simulated_cohort_and_says_where_the_pages_are(
    capsys: pytest.CaptureFixture[str], playbook_file: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"

    code, out, err = cli(
        capsys,
        "demo",
        "cohort",
        "--customers",
        "50",
        "--weeks",
        str(WEEKS),
        "--playbook",
        str(playbook_file),
        "--database",
        url,
        "--json",
    )

    assert code == 0, err
    summary = json.loads(out)
    assert summary["onboarded"] + summary["failed"] == 50
    assert summary["in_flight_not_written"] == 0
    version = summary["playbook_version"]
    assert version == "demo-2026.12.3"
    assert f"/cohort/outcomes?playbook_version={version}" in summary["pages"]
    target = Database(url)
    try:
        assert len(outcome_facts(target, playbook_version=version)) == 50
    finally:
        target.dispose()
