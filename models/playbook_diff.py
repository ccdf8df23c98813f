"""Two playbook versions compared in words: what a CS team reads before it migrates
customers from one to the other (`liftoff playbook diff`, the REST API, the dashboard)."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from models.playbook import BusinessDays, Playbook

_MISSING = object()


def differences(old: Playbook, new: Playbook) -> list[str]:
    """One sentence per difference, in the playbook's own order; empty if the same."""
    found: list[str] = []
    _compare([], _words(old.model_dump()), _words(new.model_dump()), found)
    return found


# Lists whose items are told apart by identity, not position: a purpose moved in the
# file is the same purpose.
def _words(value: Any) -> Any:
    """A dumped playbook with each business-day wait as one value ("5 business days"),
    so a change reads as such rather than as a change of its parts."""
    if isinstance(value, dict):
        if value.get("business") is True and set(value) == {"days", "business"}:
            return str(BusinessDays(days=value["days"]))
        return {key: _words(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_words(item) for item in value]
    return value


def _identity(list_name: str, item: dict[str, Any]) -> str:
    if list_name == "purposes":
        return f"purpose {item['id']}"
    if list_name == "steps":
        return f"step {item['id']}"
    if list_name in ("completion_criteria", "rules"):
        kind = "criterion" if list_name == "completion_criteria" else "rule"
        purpose = f"[{item['purpose']}]" if item.get("purpose") else ""
        return f"{kind} {item['metric']}{purpose}"
    if list_name == "ladder":
        return f"ladder step {item['action']} after {item['after_weeks']} week(s)"
    return str(item)


def _compare(path: list[str], old: Any, new: Any, found: list[str]) -> None:
    if old == new:
        return
    where = " ".join(path) or "playbook"
    if old is _MISSING:
        found.append(f"{where} added: {_brief(new)}")
    elif new is _MISSING:
        found.append(f"{where} removed (was {_brief(old)})")
    elif isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            _compare([*path, _label(key)], old.get(key, _MISSING), new.get(key, _MISSING), found)
    elif _is_records(old) and _is_records(new) and path:
        name = path[-1]
        before = {_identity(name, item): item for item in old}
        after = {_identity(name, item): item for item in new}
        for key in [*before, *(k for k in after if k not in before)]:
            _compare([*path[:-1], key], before.get(key, _MISSING), after.get(key, _MISSING), found)
    else:
        found.append(f"{where}: {_show(old)} → {_show(new)}")


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _label(key: Any) -> str:
    return str(getattr(key, "value", key))


def _brief(value: Any) -> str:
    """An added or removed item in a few words: a purpose by its title, a step by its
    template and offset."""
    if isinstance(value, dict) and "title" in value:
        return str(value["title"])
    if isinstance(value, dict) and "template" in value and "after_business_days" in value:
        return f"{value['template']}, after {value['after_business_days']} business day(s)"
    return _show(value)


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, timedelta):
        return _duration(value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, dict):
        return ", ".join(
            f"{_label(k)}={_show(v)}" for k, v in value.items() if v not in (None, {}, [])
        )
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    text = str(getattr(value, "value", value))
    return text if len(text) <= 80 else text[:77] + "..."


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
