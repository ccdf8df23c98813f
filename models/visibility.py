"""Search attributes that make customers listable through Temporal visibility."""

from temporalio.common import SearchAttributeKey

STAGE = SearchAttributeKey.for_keyword("LiftoffStage")
CSM = SearchAttributeKey.for_keyword("LiftoffCsm")
CUSTOMER_ID = SearchAttributeKey.for_keyword("LiftoffCustomerId")
STALLED = SearchAttributeKey.for_bool("LiftoffStalled")
SETUP_STUCK = SearchAttributeKey.for_bool("LiftoffSetupStuck")

ALL = (STAGE, CSM, CUSTOMER_ID, STALLED, SETUP_STUCK)

WORKFLOW_ID_PREFIX = "onboarding-"


def workflow_id_for(customer_id: str) -> str:
    """Deterministic id: a repeated start of the same customer is visibly the same run."""
    return f"{WORKFLOW_ID_PREFIX}{customer_id}"
