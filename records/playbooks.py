"""Playbook files: read from disk and validated, every problem in one message."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from models.playbook import FROM_FILE, Playbook, PlaybookError


def load_playbook(path: Path | str) -> Playbook:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlaybookError(f"{path}: no such playbook file") from None
    except tomllib.TOMLDecodeError as err:
        raise PlaybookError(f"{path}: not valid TOML: {err}") from None
    try:
        return Playbook.model_validate(data, context={FROM_FILE: True})
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(top)'}: {_said(e['msg'])}"
            for e in err.errors()
        )
        raise PlaybookError(f"{path}: {problems}") from None


def _said(message: str) -> str:
    # A rule of ours speaks for itself, without pydantic's label for its kind.
    return message.removeprefix("Value error, ")
