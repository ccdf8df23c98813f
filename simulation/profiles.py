"""Usage profiles of a synthetic cohort, read from a small TOML file (see profiles.toml).

A profile says what a kind of customer does: when its CSM holds the kickoff, the
training and the completion review, how many goals are agreed, and week by week how
much of the product it uses. The simulator turns each profile into customers
(simulation/cohort.py) and their usage into stored usage events.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PROFILES_FILE = Path(__file__).resolve().parent / "profiles.toml"
# Bounds on what a profile file may ask for: a cohort of a few hundred customers over
# half a year stays a minute's work, and no curve outgrows the longest simulation.
MAX_PROFILES = 20
MAX_CURVE_WEEKS = 104
MAX_SEATS = 10_000
MAX_KEY_ACTIONS_PER_WEEK = 1_000
MAX_DAY = 728
MAX_PROFILE_FILE_BYTES = 100_000
_T = TypeVar("_T")

_Ratio = Annotated[float, Field(ge=0, le=1)]
_Actions = Annotated[int, Field(ge=0, le=MAX_KEY_ACTIONS_PER_WEEK)]
_Day = Annotated[int, Field(ge=0, le=MAX_DAY)]


class ProfileError(Exception):
    """A profile file the simulator refuses; the message names the file and the field."""


class UsageProfile(BaseModel):
    """One kind of customer (see profiles.toml for each field's meaning)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    share: float = Field(gt=0, le=1)
    seats: int = Field(ge=1, le=MAX_SEATS)
    quota: float | None = Field(default=None, gt=0, le=1e9)
    kickoff_day: _Day | None = None
    training_day: _Day | None = None
    goals: int = Field(default=1, ge=0, le=10)
    review_after_days: _Day | None = None
    active_seat_ratio: list[_Ratio] = Field(min_length=1, max_length=MAX_CURVE_WEEKS)
    key_actions: list[_Actions] = Field(min_length=1, max_length=MAX_CURVE_WEEKS)
    quota_share: list[_Ratio] = Field(default_factory=lambda: [0.0], max_length=MAX_CURVE_WEEKS)
    jitter_days: int = Field(default=0, ge=0, le=14)
    noise: float = Field(default=0.0, ge=0, le=0.9)

    @model_validator(mode="after")
    def _training_after_kickoff(self) -> UsageProfile:
        if self.training_day is not None and self.kickoff_day is None:
            raise ValueError("training_day needs a kickoff_day: training follows the kickoff")
        if (
            self.training_day is not None
            and self.kickoff_day is not None
            and self.training_day < self.kickoff_day
        ):
            raise ValueError("training_day must not come before kickoff_day")
        if not self.quota_share:
            raise ValueError("quota_share needs at least one week")
        return self

    def week(self, index: int) -> tuple[float, int, float]:
        """(active seat ratio, key actions, quota share) of week `index` (0-based);
        past the end of a curve its last value holds."""
        return (
            _at(self.active_seat_ratio, index),
            _at(self.key_actions, index),
            _at(self.quota_share, index),
        )


def _at(curve: Sequence[_T], index: int) -> _T:
    return curve[min(index, len(curve) - 1)]


class ProfileSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profiles: list[UsageProfile] = Field(min_length=1, max_length=MAX_PROFILES)

    @model_validator(mode="after")
    def _unique_names(self) -> ProfileSet:
        names = [profile.name for profile in self.profiles]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"profile names must be unique; repeated: {', '.join(repeated)}")
        return self


def load_profiles(path: Path | str = PROFILES_FILE) -> ProfileSet:
    """The profiles of `path`, or ProfileError naming the file and the first bad field."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_PROFILE_FILE_BYTES:
            raise ProfileError(
                f"{path}: a profile file is at most {MAX_PROFILE_FILE_BYTES:,} bytes"
            )
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile file") from None
    except IsADirectoryError:
        raise ProfileError(f"{path}: a directory, not a profile file") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise ProfileError(f"{path}: not valid TOML: {err}") from None
    try:
        return ProfileSet.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = _location(first["loc"]) or "(top)"
        raise ProfileError(f"{path}: {where}: {first['msg']}") from None


def _location(loc: tuple[int | str, ...]) -> str:
    """profiles[2].share, as a person finds it in the file (1-based entries)."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part + 1}]"
        else:
            text += f".{part}" if text else part
    return text
