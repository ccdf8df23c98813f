"""Playbooks by reference (LIFTOFF_PLAYBOOKS_BY_REFERENCE): the playbook is kept once in
the database and every history names it by its SHA-256; a journey runs, continues as
new and replays the same; every process reads references whatever its own setting; a
missing or altered row is refused in one sentence, never read as something else."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import col, func, select, update
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from client.codec import COMPRESSED_ENCODING, ENCODING, CompressionCodec, LiftoffCodec
from client.connection import data_converter
from client.payload_storage import CLAIM_KEY, DRIVER_NAME, stores_by_reference
from client.payloads import STORED_BY_REFERENCE, LiftoffPayloadConverter
from models.events import KickoffHeld
from models.onboarding import OnboardingInput, Stage
from models.tables import StoredPayload
from records.database import Database
from records.stored_payloads import (
    MAX_PAYLOAD_BYTES,
    StoredPayloadError,
    load_payloads,
    payload_key,
    store_payloads,
)
from settings import Settings
from testkit.factories import make_handoff, make_playbook
from testkit.temporal import with_data_converter
from tests.support.workflow_harness import (
    running_harness,
    save_history,
    save_stored_payloads,
    through_training,
)
from workflows.onboarding import CustomerOnboardingWorkflow

REFERENCE_TYPE = b"temporal.api.sdk.v1.ExternalStorageReference"


def url_of(database: Database) -> str:
    return database.url.render_as_string(hide_password=False)


def by_reference(database: Database, **overrides: Any) -> Settings:
    return Settings(
        **{"database_url": url_of(database), "playbooks_by_reference": True, **overrides}
    )


def keyed(database: Database, **overrides: Any) -> Settings:
    entry = f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    return by_reference(database, encryption_keys=SecretStr(entry), **overrides)


def stored_rows(database: Database) -> int:
    with database.session() as session:
        return session.exec(select(func.count()).select_from(StoredPayload)).one()


def start_payloads(history: WorkflowHistory) -> list[Payload]:
    started = history.events[0].workflow_execution_started_event_attributes
    return list(started.input.payloads)


def claim_of(payload: Payload) -> str:
    assert payload.metadata["encoding"] == b"json/protobuf"
    assert payload.metadata["messageType"] == REFERENCE_TYPE
    reference = json.loads(payload.data)
    assert reference["driverName"] == DRIVER_NAME
    claim: str = reference["claimData"][CLAIM_KEY]
    return claim


# The store itself, on SQLite and PostgreSQL.


def test_a_payload_is_kept_once_under_its_hash_and_read_back_whole(database: Database) -> None:
    blob = Payload(metadata={"encoding": b"json/plain"}, data=b'{"a": 1}' * 500)
    data = blob.SerializeToString()

    first = store_payloads(database, [data])
    again = store_payloads(database, [data, data])

    assert first == [payload_key(data)] == again[:1] == again[1:]
    assert stored_rows(database) == 1
    assert load_payloads(database, first * 2) == [data, data]


def test_a_missing_or_altered_row_is_refused_with_its_key(database: Database) -> None:
    [key] = store_payloads(database, [b"the playbook"])
    absent = payload_key(b"never stored")
    with database.session() as session:
        session.exec(  # type: ignore[call-overload]
            update(StoredPayload).where(col(StoredPayload.sha256) == key).values(data=b"forged")
        )

    with pytest.raises(StoredPayloadError, match=f"{absent} is not in the database"):
        load_payloads(database, [absent])
    with pytest.raises(StoredPayloadError, match=f"{key} does not match its key"):
        load_payloads(database, [key])


def test_a_payload_over_the_bound_is_refused_and_nothing_is_kept(database: Database) -> None:
    with pytest.raises(StoredPayloadError, match="over the 2,097,152 kept"):
        store_payloads(database, [b"small", bytes(MAX_PAYLOAD_BYTES + 1)])

    assert stored_rows(database) == 0


# What marks a payload, and what the codec does with a marked one.


def test_only_a_playbook_given_as_a_value_of_its_own_is_marked() -> None:
    playbook = make_playbook()
    converter = LiftoffPayloadConverter()

    alone, inside = converter.to_payloads(
        [playbook, OnboardingInput(handoff=make_handoff(), playbook=playbook)]
    )

    assert alone.metadata[STORED_BY_REFERENCE] == b"playbook"
    assert STORED_BY_REFERENCE not in inside.metadata


async def test_with_storing_on_a_marked_payload_is_compressed_not_encrypted(
    sqlite_database: Database,
) -> None:
    on = data_converter(keyed(sqlite_database, payload_compression=True)).payload_codec
    off = data_converter(
        keyed(sqlite_database, payload_compression=True, playbooks_by_reference=False)
    ).payload_codec
    assert isinstance(on, LiftoffCodec) and isinstance(off, LiftoffCodec)
    converter = LiftoffPayloadConverter()
    playbook, handoff = converter.to_payloads([make_playbook(), make_handoff()])

    [kept, sealed] = await on.encode([playbook, handoff])
    [sealed_playbook] = await off.encode([playbook])

    assert kept.metadata["encoding"] == COMPRESSED_ENCODING
    assert kept.metadata[STORED_BY_REFERENCE] == b"playbook"
    # The same playbook, the same bytes: one row for every customer on it.
    assert (await on.encode([playbook]))[0] == kept
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed_playbook.metadata["encoding"] == ENCODING
    assert await on.decode([kept, sealed]) == [playbook, handoff]
    assert await CompressionCodec(compress=False).decode([kept]) == [playbook]


# Journeys (the first on SQLite and PostgreSQL: the worker and the client store and read
# the row through the database the deployment names).


@pytest.mark.parametrize("keys", [False, True], ids=["plain", "encrypted-compressed"])
async def test_customers_on_one_playbook_share_one_row_and_their_histories_name_it(
    env: WorkflowEnvironment,
    task_queue: str,
    database: Database,
    tmp_path: Path,
    keys: bool,
) -> None:
    settings = keyed(database, payload_compression=True) if keys else by_reference(database)
    converter = data_converter(settings)
    assert stores_by_reference(converter)
    playbook = make_playbook()

    async with running_harness(
        env, with_data_converter(env.client, converter), task_queue, database, tmp_path
    ) as h:
        first = await h.start(make_handoff(customer_id="cust-ref-1"), playbook)
        second = await h.start(make_handoff(customer_id="cust-ref-2"), playbook)
        await h.record(first, KickoffHeld(held_on=await h.today(), goals=["Go live"]))
        status = await h.wait_for(first, lambda s: s.state.stage is Stage.TRAINING)
        histories = [await handle.fetch_history() for handle in (first, second)]

    assert status.playbook_name == playbook.name
    if not keys and database.dialect == "sqlite":
        save_history("playbook_by_reference", histories[0].to_json())
        save_stored_payloads(database)
    claims = {claim_of(start_payloads(history)[1]) for history in histories}
    assert len(claims) == 1
    assert stored_rows(database) == 1
    for history in histories:
        [input_payload, reference] = start_payloads(history)
        assert len(reference.SerializeToString()) < 300
        # The history holds no part of the playbook, only its hash.
        assert playbook.name.encode() not in history.to_json().encode()
        replayer = Replayer(workflows=[CustomerOnboardingWorkflow], data_converter=converter)
        await replayer.replay_workflow(history)


async def test_a_process_with_the_setting_off_reads_a_journey_stored_by_reference(
    env: WorkflowEnvironment, task_queue: str, sqlite_database: Database, tmp_path: Path
) -> None:
    on = data_converter(by_reference(sqlite_database))
    off = data_converter(by_reference(sqlite_database, playbooks_by_reference=False))
    assert not stores_by_reference(off)

    async with running_harness(
        env, with_data_converter(env.client, on), task_queue, sqlite_database, tmp_path
    ) as h:
        handle = await h.start(make_handoff())
        history = await handle.fetch_history()
    # A worker of this version with the setting still off replays it.
    replayer = Replayer(workflows=[CustomerOnboardingWorkflow], data_converter=off)
    await replayer.replay_workflow(history)


async def test_a_history_whose_row_is_gone_fails_its_replay_in_one_sentence(
    env: WorkflowEnvironment,
    task_queue: str,
    sqlite_database: Database,
    tmp_path: Path,
) -> None:
    converter = data_converter(by_reference(sqlite_database))
    async with running_harness(
        env, with_data_converter(env.client, converter), task_queue, sqlite_database, tmp_path
    ) as h:
        handle = await h.start(make_handoff())
        history = await handle.fetch_history()
    elsewhere = Database(f"sqlite:///{tmp_path / 'other.db'}")
    elsewhere.migrate()
    stranger = data_converter(by_reference(elsewhere))

    replayer = Replayer(workflows=[CustomerOnboardingWorkflow], data_converter=stranger)
    # The replayer, like a worker's workflow task, reports the driver's sentence.
    with pytest.raises(RuntimeError, match="stored payload [0-9a-f]{64} is not in the database"):
        await replayer.replay_workflow(history)


async def test_a_continued_run_carries_the_reference_again(
    env: WorkflowEnvironment, task_queue: str, sqlite_database: Database, tmp_path: Path
) -> None:
    converter = data_converter(by_reference(sqlite_database))
    async with running_harness(
        env, with_data_converter(env.client, converter), task_queue, sqlite_database, tmp_path
    ) as h:
        handoff = make_handoff()
        handle = await h.start(handoff, max_history_events=100)
        await through_training(h, handle)
        for _ in range(5):
            await h.usage(handoff, active_users=1, actions_per_user=1)
            await h.next_week(handle)
        latest = h.client.get_workflow_handle_for(CustomerOnboardingWorkflow.run, handle.id)
        status = await latest.query(CustomerOnboardingWorkflow.status)
        history = await latest.fetch_history()

    assert status.state.runs > 0, "no continue-as-new within five weeks"
    assert status.playbook_name == make_playbook().name

    [_, reference] = start_payloads(history)
    claim_of(reference)
    assert stored_rows(sqlite_database) == 1
    replayer = Replayer(workflows=[CustomerOnboardingWorkflow], data_converter=converter)
    await replayer.replay_workflow(history)


async def test_a_start_without_a_playbook_fails_the_workflow_in_one_sentence(
    env: WorkflowEnvironment, task_queue: str, sqlite_database: Database, tmp_path: Path
) -> None:
    async with running_harness(env, env.client, task_queue, sqlite_database, tmp_path) as h:
        handle = await h.client.start_workflow(
            CustomerOnboardingWorkflow.run,
            OnboardingInput(handoff=make_handoff()),
            id="onboarding-no-playbook",
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()

    assert "the start input has no playbook" in str(failure.value.cause)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["a customer"], "the start input is not one Liftoff reads: it is not a JSON object"),
        ([{"handoff": {"customer_id": "x"}}], "the start input is not one Liftoff reads: handoff."),
        (
            [{"handoff": None}, {"name": "not a playbook", "secret": "zora@hidden.example"}],
            "the playbook argument is not one Liftoff reads",
        ),
    ],
    ids=["not-an-object", "handoff-incomplete", "playbook-not-a-playbook"],
)
async def test_an_unreadable_start_fails_the_workflow_in_one_sentence_without_its_values(
    env: WorkflowEnvironment,
    task_queue: str,
    sqlite_database: Database,
    tmp_path: Path,
    args: list[Any],
    said: str,
) -> None:
    if len(args) == 2:
        # A readable input beside the unreadable playbook: the playbook is refused.
        args = [OnboardingInput(handoff=make_handoff()), args[1]]
    async with running_harness(env, env.client, task_queue, sqlite_database, tmp_path) as h:
        handle = await h.client.start_workflow(
            "CustomerOnboardingWorkflow",
            args=args,
            id=f"onboarding-unreadable-{secrets.token_hex(4)}",
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()

    message = str(failure.value.cause)
    assert said in message
    assert "zora" not in message
