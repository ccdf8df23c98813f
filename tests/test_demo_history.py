"""`make run` seeds a few dozen past customers once, so the leader's pages have a year
of outcomes to show on first start."""

from __future__ import annotations

from records.database import Database
from records.outcomes import ended_playbook_versions, outcome_facts
from scripts.run_local import PAST_CUSTOMERS, seed_past_customers


def test_past_customers_are_seeded_once_with_their_outcomes(database: Database) -> None:
    assert seed_past_customers(database, "demo-3") == PAST_CUSTOMERS
    facts = outcome_facts(database, playbook_version="demo-3")
    assert len(facts) == PAST_CUSTOMERS
    assert ended_playbook_versions(database) == ["demo-3"]
    # Another start of the demo adds nothing, whatever the day.
    assert seed_past_customers(database, "demo-3") == 0
    assert len(outcome_facts(database, playbook_version="demo-3")) == PAST_CUSTOMERS
