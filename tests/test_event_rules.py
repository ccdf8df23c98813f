"""The registry of CSM event kinds: every kind has its rules, its form and its words
in both languages, and a kind the registry does not know is refused everywhere."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime
from typing import Literal

import pytest
from pydantic import BaseModel
from temporalio.client import WorkflowUpdateFailedError

from api.dashboard.forms import FORM_FIELDS, NEXT_STEP, OFFERED, offered
from api.dashboard.i18n import EN, EVENT_WORDS, JA
from client.onboarding import SUBMIT_EVENT
from models import limits
from models.events import EVENT_MODELS, ContactAdded, GoalAgreed, OnboardingEvent
from models.handoff import Contact, Role
from models.onboarding import Goal, OnboardingState, Stage
from testkit.factories import make_handoff, make_playbook
from tests.support.workflow_harness import Harness, through_training
from workflows import events

KINDS = list(EVENT_MODELS)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _sentence_fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    """The names a `tl_<kind>` sentence may use (api/dashboard/timeline.py)."""
    names = set()
    for name, info in model.model_fields.items():
        names.add(prefix + name)
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            names |= _sentence_fields(nested, f"{prefix}{name}_")
    return names


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_its_stages_form_and_words_in_english_and_japanese(kind: str) -> None:
    model = EVENT_MODELS[kind]
    assert events.STAGES[model].accepted, "a kind no stage accepts"
    assert kind in FORM_FIELDS
    words = EVENT_WORDS[kind]
    fields = _sentence_fields(model)
    for said in (words.en, words.ja):
        assert said.action and said.label and said.sentence
        assert _placeholders(said.sentence) <= fields, said.sentence
    for catalogue in (EN, JA):
        assert {f"action_{kind}", f"kind_{kind}", f"tl_{kind}"} <= catalogue.keys()
        for spec in FORM_FIELDS[kind]:
            assert f"field_{spec.name}" in catalogue


def test_forms_shown_per_stage_follow_the_stages_the_rules_accept() -> None:
    any_stage = {"meeting_requested", "meeting_held", "purpose_added", "contact_added"}
    any_stage |= {"task_completed", "cancelled", "paused", "resumed"}
    assert {stage: set(kinds) for stage, kinds in OFFERED.items()} == {
        Stage.HANDOFF: {"kickoff_held", *any_stage},
        Stage.KICKOFF: {"kickoff_held", *any_stage},
        Stage.TRAINING: {"training_held", "training_skipped", "goal_agreed", *any_stage},
        Stage.ADOPTION: {"goal_agreed", *any_stage},
        Stage.COMPLETION_REVIEW: {"completion_review_held", "goal_agreed", *any_stage},
    }
    assert {stage: set(kinds) for stage, kinds in NEXT_STEP.items()} == {
        Stage.HANDOFF: {"kickoff_held"},
        Stage.KICKOFF: {"kickoff_held"},
        Stage.TRAINING: {"training_held", "training_skipped"},
        Stage.ADOPTION: {"meeting_held", "goal_agreed"},
        Stage.COMPLETION_REVIEW: {"completion_review_held"},
    }


def test_a_paused_customer_is_offered_resume_and_an_active_one_pause() -> None:
    for stage in OFFERED:
        assert "paused" in offered(stage, paused=False)
        assert "resumed" not in offered(stage, paused=False)
        assert "resumed" in offered(stage, paused=True)
        assert "paused" not in offered(stage, paused=True)


class BrandNewThing(BaseModel):
    """An event kind from a newer client: a model the registry has no rules for."""

    kind: Literal["brand_new_thing"] = "brand_new_thing"
    event_id: str | None = None
    recorded_by: str | None = None


@pytest.mark.parametrize("stage", list(Stage))
def test_a_kind_the_registry_does_not_know_is_refused_in_every_stage(stage: Stage) -> None:
    reason = events.refusal(
        BrandNewThing(),  # type: ignore[arg-type]
        stage=stage,
        state=OnboardingState(stage=stage),
        handoff=make_handoff(),
        playbook=make_playbook(),
        today=date(2026, 12, 4),
    )
    assert reason is not None
    if not stage.terminal:
        assert reason == "unknown event kind 'brand_new_thing'"


async def test_an_unknown_kind_is_refused_by_the_update_and_recorded_as_rejected_as_a_signal(
    h: Harness,
) -> None:
    """A newer client's kind is refused where the workflow reads its payload, in any stage."""
    handoff = make_handoff()
    handle = await h.start(handoff)

    async def refused_both_ways(stage: Stage) -> None:
        status = await h.wait_for(handle, lambda s: s.state.stage is stage)
        rejected = len(status.state.rejected)
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await h.record(handle, BrandNewThing())  # type: ignore[arg-type]
        assert "unknown event kind 'brand_new_thing'" in str(failure.value.cause)
        await handle.signal(SUBMIT_EVENT, BrandNewThing())
        after = await h.wait_for(handle, lambda s: len(s.state.rejected) > rejected)
        assert after.state.rejected[-1].kind == "brand_new_thing"
        assert after.state.stage is stage
        assert after.state.transitions == status.state.transitions

    await refused_both_ways(Stage.KICKOFF)
    await through_training(h, handle)
    await refused_both_ways(Stage.ADOPTION)
    kinds = [row.kind for row in h.timeline(handoff.customer_id)]
    assert kinds.count("event_rejected") == 2
    assert "brand_new_thing" not in kinds


def test_goals_and_contacts_a_customer_accumulates_are_bounded() -> None:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    state = OnboardingState(
        stage=Stage.ADOPTION,
        goals=[Goal(text=f"goal {n}", agreed_at=now) for n in range(limits.GOALS)],
        added_contacts=[
            Contact(email=f"p{n}@acme.example", name="P", role=Role.END_USER)
            for n in range(limits.CONTACTS)
        ],
    )

    def refusal(event: OnboardingEvent) -> str | None:
        return events.refusal(
            event,
            stage=Stage.ADOPTION,
            state=state,
            handoff=make_handoff(contacts=[]),
            playbook=make_playbook(),
            today=now.date(),
        )

    assert refusal(GoalAgreed(goal="one more")) == (
        f"the customer already has {limits.GOALS} goals, the most it can hold"
    )
    new_contact = Contact(email="new@acme.example", name="New", role=Role.ADMINISTRATOR)
    assert refusal(ContactAdded(contact=new_contact)) == (
        f"the customer already has {limits.CONTACTS} contacts, the most it can hold"
    )
