"""Playbook versions: recorded once per content on SQLite and PostgreSQL, listed with
their customers, diffed in words, and the `liftoff migrate` command's dry run and apply
against a real worker on the time-skipping server."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli import connections
from cli.commands.playbooks import cmd_migrate, cmd_playbook_diff, cmd_playbook_list
from cli.errors import BadInput
from cli.inputs import read_playbook
from cli.parser import build_parser
from client.errors import UnknownCustomerError
from client.onboarding import OnboardingClient
from models.playbook import Playbook, PlaybookError
from models.playbook_diff import differences
from records.database import Database
from records.playbook_versions import (
    VersionConflict,
    check_recorded,
    check_version,
    content_hash,
    find_version,
    list_versions,
    record_version,
)
from settings import Settings
from testkit.factories import REPO, make_handoff, make_playbook, store_customer
from testkit.projections import insert_projection_rows, projection_row
from tests.support.workflow_harness import Harness

DEFAULT = REPO / "playbooks" / "default.toml"


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def variant(tmp_path: Path, version: str, old: str, new: str) -> Path:
    """The default playbook file with one line changed and another version string."""
    text = DEFAULT.read_text(encoding="utf-8")
    assert old in text, old
    lines = [
        f'version = "{version}"' if line.startswith("version =") else line
        for line in text.replace(old, new, 1).splitlines()
    ]
    return write_toml(tmp_path / f"{version}.toml", "\n".join(lines) + "\n")


def test_a_version_is_recorded_once_per_content_and_listed_with_its_customers(
    database: Database,
) -> None:
    playbook = make_playbook(version="v1")
    first = record_version(database, playbook, "playbooks/default.toml")
    again = record_version(database, playbook.model_copy(), "elsewhere.toml")
    assert first == again == content_hash(playbook)
    changed = playbook.model_copy(update={"version": "v2", "deadline": timedelta(days=200)})
    record_version(database, changed, "x" * 400)  # a long path is kept by its end
    store_customer(database, make_handoff())  # on version "1", which was never recorded

    rows = list_versions(database)
    assert [(row.version, row.source[-14:]) for row in rows] == [
        ("v1", "s/default.toml"),
        ("v2", "x" * 14),
    ]
    assert find_version(database, "v2") == changed
    assert find_version(database, first[:12]) == playbook
    with pytest.raises(PlaybookError, match="no playbook version 'v9' was recorded"):
        find_version(database, "v9")
    with pytest.raises(PlaybookError, match="no playbook version 'v9' was recorded"):
        check_recorded(database, "v9")
    check_recorded(database, "v2")
    check_recorded(database, first[:12])
    # A customer started before versions were recorded follows one never recorded.
    now = datetime.now(UTC)
    insert_projection_rows(database, [projection_row("old", now, playbook_version="0.9")])
    check_recorded(database, "0.9")
    same_version = playbook.model_copy(update={"deadline": timedelta(days=210)})
    with pytest.raises(
        VersionConflict,
        match="^playbook version 'v1' was already recorded with different content: bump",
    ):
        record_version(database, same_version, "edited.toml")
    with pytest.raises(VersionConflict):
        check_version(database, same_version)
    assert check_version(database, playbook) == first
    assert find_version(database, "v1") == playbook
    assert len(list_versions(database)) == 2


def test_two_contents_racing_for_one_version_leave_one_recorded(database: Database) -> None:
    # Starts on two machines at once: the version's unique index decides, the other is refused.
    for round in range(5):
        contents = [
            make_playbook(version=f"race-{round}", deadline=timedelta(days=days))
            for days in (180, 190)
        ]
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(record_version, database, content, "race.toml") for content in contents
            ]
        errors = [future.exception() for future in futures]
        assert sorted(type(error).__name__ for error in errors) == ["NoneType", "VersionConflict"]
        kept = contents[errors.index(None)]
        assert find_version(database, f"race-{round}") == kept
    assert [row.version for row in list_versions(database)] == [f"race-{n}" for n in range(5)]


def test_the_diff_names_each_change_in_words() -> None:
    old = make_playbook(campaign=True)
    purpose = old.purposes[0]
    tips = purpose.steps[1].model_copy(update={"id": "tips", "after_business_days": 2})
    new = old.model_copy(
        update={
            "version": "next",
            "deadline": old.deadline + timedelta(days=14),
            "completion_criteria": [
                old.completion_criteria[0].model_copy(update={"at_least": 0.75}),
                *old.completion_criteria[1:],
            ],
            "purposes": [
                purpose.model_copy(update={"steps": [*purpose.steps, tips]}),
                *(p for p in old.purposes[1:] if p.id != "C"),
            ],
        }
    )
    found = differences(old, new)
    assert f"version: {old.version} → next" in found
    assert "criterion active_seat_ratio at_least: 0.6 → 0.75" in found
    assert "deadline: 180 days → 194 days" in found
    assert "purpose A step tips added: purpose_welcome, after 2 business day(s)" in found
    assert "purpose C removed (was Share contacts across the team)" in found
    assert len(found) == 5
    assert differences(old, old) == []


@pytest.fixture
def cli_on(h: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI's commands talk to this harness's worker and database."""

    @contextlib.contextmanager
    def the_database(settings: Settings) -> Iterator[Database]:
        yield h.database

    async def the_client(settings: Settings) -> OnboardingClient:
        return h.onboarding

    monkeypatch.setattr(connections, "database", the_database)
    monkeypatch.setattr(connections, "onboarding_client", the_client)
    yield


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    args = build_parser().parse_args(list(argv))
    code = await args.handler(args, Settings())
    return code, capsys.readouterr().out


async def test_diff_reads_files_and_recorded_versions(
    h: Harness, cli_on: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = variant(tmp_path, "v-diff", "at_least = 0.6", "at_least = 0.7")
    record_version(h.database, make_playbook(version="recorded"), "old.toml")
    code, out = await run(capsys, "playbook", "diff", str(DEFAULT), str(new))
    assert code == 0
    assert "criterion active_seat_ratio at_least: 0.6 → 0.7" in out
    code, out = await run(capsys, "playbook", "diff", "recorded", str(new), "--json")
    assert json.loads(out)["to"] == "v-diff"
    with pytest.raises(BadInput, match="no playbook version 'nope' was recorded"):
        await run(capsys, "playbook", "diff", "nope", str(new))
    assert cmd_playbook_diff and cmd_playbook_list  # the handlers the parser names


async def test_migrate_dry_run_changes_nothing_then_applies_and_records_the_version(
    h: Harness, cli_on: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"v-{uuid.uuid4().hex[:6]}"
    old: Playbook = make_playbook(version=source)
    customers = [make_handoff(), make_handoff()]
    handles = [await h.start(handoff, old) for handoff in customers]
    lacking = make_handoff(purposes=["C"])
    handles.append(await h.start(lacking, old))
    for handle in handles:
        await h.wait_for(handle, lambda s: True)
    # v-next: kickoff reminders a day later, and no purpose C.
    text = variant(tmp_path, "v-next", 'remind_csm_after = "7d"', 'remind_csm_after = "8d"')
    lines = text.read_text(encoding="utf-8").split("[[purposes]]")
    without_c = "[[purposes]]".join(part for part in lines if 'id = "C"' not in part)
    target = write_toml(tmp_path / "v-next.toml", without_c)

    argv = ["migrate", "--to", str(target), "--from-version", source, "--reason", "kickoff sla"]
    code, out = await run(capsys, *argv, "--dry-run")
    assert code == 2, out  # one refused
    assert "timer remind_csm (kickoff)" in out
    assert f"{lacking.customer_id}: ? → v-next: refused" not in out
    assert "version v-next has no purpose C, which the customer holds" in out
    assert out.splitlines()[-1] == "2 would move to v-next, 1 refused; nothing changed (dry run)"
    for handoff in customers:
        assert (await h.onboarding.status(handoff.customer_id)).playbook_version == source
    assert "v-next" not in [row.version for row in list_versions(h.database)]

    code, out = await run(capsys, *argv, "--by", "Lena Lead")
    assert code == 2
    assert out.splitlines()[-1] == "2 moved to v-next, 1 refused"
    # The workflow refused the update; the line still names the version it follows.
    assert f"{lacking.customer_id}: {source} → v-next: refused: version v-next has no" in out
    for handle, handoff in zip(handles, customers, strict=False):
        await h.wait_for(handle, lambda s: s.playbook_version == "v-next")
        entry = [e for e in h.timeline(handoff.customer_id) if e.kind == "playbook_migrated"]
        assert entry and entry[0].details["by"] == "Lena Lead"
    assert (await h.onboarding.status(lacking.customer_id)).playbook_version == source
    assert "v-next" in [row.version for row in list_versions(h.database)]

    code, out = await run(capsys, "playbook", "list")
    assert code == 0 and "v-next" in out

    with pytest.raises(BadInput, match="one of --customer"):
        await run(
            capsys, "migrate", "--to", str(target), "--all", "--customer", "x", "--reason", "r"
        )
    with pytest.raises(BadInput, match="reason"):
        await run(capsys, "migrate", "--to", str(target), "--all", "--reason", "x" * 5000)
    assert cmd_migrate


async def test_an_edited_playbook_under_a_recorded_version_starts_and_migrates_nothing(
    h: Harness, cli_on: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = f"v-{uuid.uuid4().hex[:6]}"
    original = variant(tmp_path, version, "at_least = 0.6", "at_least = 0.6")
    edited = write_toml(
        tmp_path / "edited.toml",
        original.read_text(encoding="utf-8").replace("at_least = 0.6", "at_least = 0.7", 1),
    )
    first, second = make_handoff(), make_handoff()

    record_version(h.database, read_playbook(original), str(original))  # as its start did
    await h.start(first, read_playbook(original))
    refused = f"^playbook version '{version}' was already recorded with different content: bump"
    with pytest.raises(BadInput, match=refused):
        await run(
            capsys,
            *("start", "--customer-id", second.customer_id, "--name", "Beta"),
            *("--csm", second.csm, "--leader", second.cs_leader, "--seats", "10"),
            *("--playbook", str(edited)),
        )
    csv_file = tmp_path / "handoffs.csv"
    csv_file.write_text(
        "customer_id,name,csm,cs_leader,contacts,seats\n"
        f"{second.customer_id},Beta,csm@x.example,lead@x.example,end_user:lin@beta.example,5\n",
        encoding="utf-8",
    )
    with pytest.raises(BadInput, match=refused):
        await run(capsys, "start", "--csv", str(csv_file), "--playbook", str(edited))
    with pytest.raises(UnknownCustomerError):
        await h.onboarding.status(second.customer_id)

    for dry_run in (["--dry-run"], []):
        argv = ["migrate", "--to", str(edited), "--customer", first.customer_id, "--reason", "x"]
        with pytest.raises(BadInput, match=refused):
            await run(capsys, *argv, *dry_run)
    assert [row.content_hash for row in list_versions(h.database) if row.version == version] == [
        content_hash(read_playbook(original))
    ]


async def test_a_version_never_recorded_is_refused_where_a_command_selects_customers_by_it(
    h: Harness, cli_on: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = variant(tmp_path, "v-next", "at_least = 0.6", "at_least = 0.7")
    missing = "^no playbook version '2026.1.2' was recorded"
    for argv in (
        ["migrate", "--to", str(target), "--from-version", "2026.1.2", "--reason", "x"],
        [
            "migrate",
            "--to",
            str(target),
            "--from-version",
            "2026.1.2",
            "--reason",
            "x",
            "--dry-run",
        ],
        ["pause", "--playbook-version", "2026.1.2", "--reason", "freeze"],
        ["resume", "--playbook-version", "2026.1.2"],
    ):
        with pytest.raises(BadInput, match=missing):
            await run(capsys, *argv)
    assert "v-next" not in [row.version for row in list_versions(h.database)]
    # Recorded, and no customer on it: nobody to pause, not an error.
    record_version(h.database, make_playbook(version="2026.1.2"), "2026.1.2.toml")
    code, out = await run(capsys, "pause", "--playbook-version", "2026.1.2", "--reason", "freeze")
    assert (code, out) == (0, "0 paused, 0 refused (playbook version 2026.1.2)\n")
