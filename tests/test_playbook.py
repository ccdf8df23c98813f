"""Playbook files: the shipped ones validate, broken ones say exactly what is wrong."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from models.playbook import MeasurementPolicy, Playbook, PlaybookError, parse_duration
from records.playbooks import load_playbook
from testkit.factories import REPO


@pytest.mark.parametrize("name", ["default.toml", "demo.toml"])
def test_shipped_playbooks_validate(name: str) -> None:
    playbook = load_playbook(REPO / "playbooks" / name)
    assert [p.id for p in playbook.purposes] == ["A", "B", "C", "D", "E", "F"]
    assert (
        playbook.timers.kickoff.remind_csm_after < playbook.timers.kickoff.escalate_to_leader_after
    )


def test_durations_read_as_people_write_them() -> None:
    assert parse_duration("14d") == timedelta(days=14)
    assert parse_duration("1d12h") == timedelta(days=1, hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("P3D") == "P3D"  # left to pydantic's ISO 8601 parser


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "playbook.toml"
    path.write_text(text)
    return path


def test_every_problem_is_named_with_its_place(tmp_path: Path) -> None:
    source = (REPO / "playbooks" / "default.toml").read_text()
    broken = source.replace(
        'escalate_to_leader_after = "14d"', 'escalate_to_leader_after = "3d"', 1
    )
    broken = broken.replace("at_least = 0.6", "at_least = -1")
    with pytest.raises(PlaybookError) as error:
        load_playbook(write(tmp_path, broken))
    message = str(error.value)
    assert "timers.kickoff: escalate_to_leader_after must be later" in message
    assert "completion_criteria.0.at_least: Input should be greater than or equal to 0" in message


def test_a_misspelt_key_or_an_unreachable_threshold_is_refused_by_name(tmp_path: Path) -> None:
    # Ignored, the misspelt condition sent the nudge step to every customer.
    source = (REPO / "playbooks" / "default.toml").read_text()
    broken = source.replace("only_if_key_actions_below =", "only_if_key_action_below =", 1)
    broken = broken.replace("daily_cap", "daily_capp", 1)
    with pytest.raises(PlaybookError) as error:
        load_playbook(write(tmp_path, broken))
    message = str(error.value)
    assert (
        "purposes.0.steps.3: unknown key 'only_if_key_action_below' "
        "(did you mean 'only_if_key_actions_below'?)" in message
    )
    assert "campaign: unknown key 'daily_capp' (did you mean 'daily_cap'?)" in message
    with pytest.raises(
        PlaybookError, match=r"\(top\): unknown key 'stal' \(did you mean 'stall'\?\)"
    ):
        load_playbook(write(tmp_path, source.replace("[stall]", "[stal]", 1)))
    unreachable = source.replace("at_least = 0.6", "at_least = 60", 1)
    with pytest.raises(PlaybookError, match="active_seat_ratio is at most 1; at_least 60 is never"):
        load_playbook(write(tmp_path, unreachable))


def test_a_playbook_in_a_history_with_a_key_this_version_lacks_still_reads() -> None:
    # Workflow inputs are read without the check: a key a later Liftoff drops must
    # not fail the histories that carry it.
    playbook = load_playbook(REPO / "playbooks" / "default.toml")
    stored = playbook.model_dump(mode="json")
    stored["retired_setting"] = 1
    stored["campaign"]["retired_too"] = True
    assert Playbook.model_validate(stored) == playbook


def test_measurement_grace_is_proportionate_and_shorter_than_the_week(tmp_path: Path) -> None:
    default = load_playbook(REPO / "playbooks" / "default.toml").measurement
    demo = load_playbook(REPO / "playbooks" / "demo.toml").measurement
    assert default.grace_period == timedelta(hours=6)
    # The demo compresses a week into seconds; its grace is the same share of it,
    # as is the default of a playbook that names none (one pinned before grace existed).
    assert demo.grace_period / demo.every == default.grace_period / default.every
    unset = MeasurementPolicy(every=timedelta(seconds=7), align_to_weekday=False)
    assert unset.grace_period == demo.grace_period == timedelta(seconds=0.25)
    source = (REPO / "playbooks" / "default.toml").read_text()
    with pytest.raises(PlaybookError, match="grace must be at least 0 and shorter than every"):
        load_playbook(write(tmp_path, source.replace('grace = "6h"', 'grace = "7d"')))


def test_unknown_purpose_in_criteria_is_refused(tmp_path: Path) -> None:
    source = (REPO / "playbooks" / "default.toml").read_text()
    broken = source.replace(
        'metric = "key_actions"\nat_least = 20',
        'metric = "key_actions"\nat_least = 20\npurpose = "Q"',
    )
    with pytest.raises(PlaybookError, match="criteria name unknown purposes: Q"):
        load_playbook(write(tmp_path, broken))


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="not valid TOML"):
        load_playbook(write(tmp_path, "name = ["))
    with pytest.raises(PlaybookError, match="no such playbook file"):
        load_playbook(tmp_path / "missing.toml")
