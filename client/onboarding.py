"""The one client layer over customers' onboarding workflows.

The CLI and the HTTP app (REST API and dashboard) both use it, so they get the
same idempotent start, the same refusals and the same listing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NoReturn

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from client.errors import (
    CommandRejectedError,
    LiftoffClientError,
    OnboardingClosedError,
    UnknownCustomerError,
)
from client.payload_storage import stores_by_reference
from models import visibility
from models.events import SUBMIT_EVENT as SUBMIT_EVENT  # re-exported for callers
from models.events import OnboardingEvent
from models.handoff import CustomerHandoff
from models.migration import (
    MigrationPlan,
    MigrationPreviewRequest,
    MigrationRequest,
    OverridesResult,
)
from models.onboarding import (
    EventResult,
    OnboardingInput,
    OnboardingResult,
    OnboardingStatus,
    Stage,
)
from models.overrides import OverridesRequest
from models.playbook import Playbook
from models.tables import CustomerProjection

WORKFLOW_TYPE = "CustomerOnboardingWorkflow"
# The workflow's update and signal take an event's JSON (workflows/onboarding.py reads
# it by its kind), so callers name them rather than pass the typed method.
RECORD_EVENT = "record_event"
MIGRATE_PLAYBOOK = "migrate_playbook"
PREVIEW_MIGRATION = "preview_migration"
SET_OVERRIDES = "set_overrides"
# Customers asked at once by a migration of many (queries and updates are short).
MIGRATION_CONCURRENCY = 8


class StartResult(BaseModel):
    customer_id: str
    workflow_id: str
    run_id: str | None
    already_running: bool


class EachResult(BaseModel):
    """One customer's answer to a command sent to many: its result, or why it was refused."""

    customer_id: str
    result: EventResult | None = None
    refused: str | None = None


class CustomerSummary(BaseModel):
    customer_id: str
    workflow_id: str
    stage: Stage | None
    csm: str | None
    stalled: bool
    setup_stuck: bool
    workflow_status: str
    started_at: datetime | None
    # From the customer projection; Temporal's search attributes do not hold them.
    paused: bool = False
    playbook_version: str | None = None

    @classmethod
    def from_projection(cls, row: CustomerProjection) -> CustomerSummary:
        """A customer as the projection has it (`records.customer_lists.SUMMARY_COLUMNS`)."""
        stage = Stage(row.stage)
        return cls(
            customer_id=row.customer_id,
            workflow_id=visibility.workflow_id_for(row.customer_id),
            stage=stage,
            csm=row.csm,
            stalled=row.stalled,
            setup_stuck=row.setup_stuck,
            # An onboarding that ended (onboarded, failed, cancelled) completed its workflow.
            workflow_status="completed" if stage.terminal else "running",
            started_at=row.started_at,
            paused=row.paused,
            playbook_version=row.playbook_version or None,
        )


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def list_query(
    *,
    stage: Stage | None = None,
    csm: str | None = None,
    stalled: bool | None = None,
    setup_stuck: bool | None = None,
) -> str:
    """A visibility query over Liftoff's search attributes."""
    # A continued-as-new run is the same customer; only its newest run counts.
    clauses = [f"WorkflowType = {_quote(WORKFLOW_TYPE)}", "ExecutionStatus != 'ContinuedAsNew'"]
    if stage is not None:
        clauses.append(f"{visibility.STAGE.name} = {_quote(stage.value)}")
    if csm is not None:
        clauses.append(f"{visibility.CSM.name} = {_quote(csm.strip().lower())}")
    if stalled is not None:
        clauses.append(f"{visibility.STALLED.name} = {str(stalled).lower()}")
    if setup_stuck is not None:
        clauses.append(f"{visibility.SETUP_STUCK.name} = {str(setup_stuck).lower()}")
    return " AND ".join(clauses)


def _stage(value: str | None) -> Stage | None:
    try:
        return Stage(value) if value is not None else None
    except ValueError:  # a stage name from a newer version of Liftoff
        return None


def start_args(
    handoff: CustomerHandoff,
    playbook: Playbook,
    converter: DataConverter,
    *,
    max_history_events: int | None = None,
) -> list[object]:
    """The workflow's start arguments. With playbooks by reference the playbook travels
    apart, as a payload of its own that the history holds as a reference
    (client/payload_storage.py); otherwise inside the input, as every version before."""
    input = OnboardingInput(handoff=handoff, max_history_events=max_history_events)
    if stores_by_reference(converter):
        return [input, playbook]
    return [input.model_copy(update={"playbook": playbook})]


class OnboardingClient:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    @property
    def temporal(self) -> Client:
        return self._client

    async def start(self, handoff: CustomerHandoff, playbook: Playbook) -> StartResult:
        """Start a customer's onboarding once; a repeat reports the running one."""
        workflow_id = visibility.workflow_id_for(handoff.customer_id)
        try:
            handle = await self._client.start_workflow(
                WORKFLOW_TYPE,
                args=start_args(handoff, playbook, self._client.data_converter),
                id=workflow_id,
                task_queue=self._task_queue,
                # Fail on a running duplicate and never reuse a closed id: a
                # customer's journey happens once, whatever the retries.
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                # Set at start so `list` shows the customer before its first task.
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(visibility.STAGE, Stage.HANDOFF.value),
                        SearchAttributePair(visibility.CSM, handoff.csm),
                        SearchAttributePair(visibility.CUSTOMER_ID, handoff.customer_id),
                        SearchAttributePair(visibility.STALLED, False),
                        SearchAttributePair(visibility.SETUP_STUCK, False),
                    ]
                ),
                result_type=OnboardingResult,
            )
        except WorkflowAlreadyStartedError as err:
            description = await self._client.get_workflow_handle(workflow_id).describe()
            if description.status != WorkflowExecutionStatus.RUNNING:
                await self._raise_closed(handoff.customer_id, description.status)
            return StartResult(
                customer_id=handoff.customer_id,
                workflow_id=workflow_id,
                run_id=err.run_id or description.run_id,
                already_running=True,
            )
        return StartResult(
            customer_id=handoff.customer_id,
            workflow_id=workflow_id,
            run_id=handle.result_run_id,
            already_running=False,
        )

    async def record(self, customer_id: str, event: OnboardingEvent) -> EventResult:
        """Send a CSM command as an update: accepted with its effect, or refused with why."""
        handle = self._handle(customer_id)
        try:
            result: EventResult = await handle.execute_update(
                RECORD_EVENT, event, result_type=EventResult
            )
            return result
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise CommandRejectedError(message or f"{event.kind} was rejected") from None
        except RPCError as err:
            await self._raise_not_found(customer_id, err)

    async def record_each(
        self, customer_ids: Sequence[str], event: OnboardingEvent
    ) -> list[EachResult]:
        """The same command to each customer in turn (a lead pausing a playbook version):
        one customer's refusal or ended onboarding is its answer, not the end of the run."""
        answers = []
        for customer_id in customer_ids:
            try:
                result = await self.record(customer_id, event)
            except LiftoffClientError as err:
                answers.append(EachResult(customer_id=customer_id, refused=str(err)))
            else:
                answers.append(EachResult(customer_id=customer_id, result=result))
        return answers

    async def preview_migration(
        self, customer_id: str, playbook: Playbook, *, now: datetime | None = None
    ) -> MigrationPlan:
        """What moving the customer to `playbook` at `now` (by default the wall clock)
        would change: a query, nothing moves."""
        handle = self._handle(customer_id)
        request = MigrationPreviewRequest(playbook=playbook, now=now or datetime.now(UTC))
        try:
            plan: MigrationPlan = await handle.query(
                PREVIEW_MIGRATION, request, result_type=MigrationPlan
            )
            return plan
        except WorkflowQueryFailedError as err:
            # A worker older than migrations, or a query it could not answer.
            raise CommandRejectedError(f"the dry run failed: {err}") from None
        except RPCError as err:
            await self._raise_not_found(customer_id, err)

    async def migrate(self, customer_id: str, request: MigrationRequest) -> MigrationPlan:
        """Move the customer to `request.playbook`: the plan it followed, or refused with why."""
        handle = self._handle(customer_id)
        try:
            plan: MigrationPlan = await handle.execute_update(
                MIGRATE_PLAYBOOK, request, result_type=MigrationPlan
            )
            return plan
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise CommandRejectedError(message or "the migration was refused") from None
        except RPCError as err:
            await self._raise_not_found(customer_id, err)

    async def set_overrides(self, customer_id: str, request: OverridesRequest) -> OverridesResult:
        """Set the customer's overrides (the whole set; empty clears them): each value
        beside the playbook's and what moved, or refused with why."""
        handle = self._handle(customer_id)
        try:
            result: OverridesResult = await handle.execute_update(
                SET_OVERRIDES, request, result_type=OverridesResult
            )
            return result
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise CommandRejectedError(message or "the overrides were refused") from None
        except RPCError as err:
            await self._raise_not_found(customer_id, err)

    async def migrate_each(
        self, customer_ids: Sequence[str], request: MigrationRequest, *, dry_run: bool
    ) -> list[MigrationPlan]:
        """Preview or apply a migration for each customer, a few at a time: a customer that
        cannot move is refused with its reason and the others go ahead."""
        gate = asyncio.Semaphore(MIGRATION_CONCURRENCY)

        async def one(customer_id: str) -> MigrationPlan:
            async with gate:
                try:
                    if dry_run:
                        plan = await self.preview_migration(customer_id, request.playbook)
                    else:
                        plan = await self.migrate(customer_id, request)
                except LiftoffClientError as err:
                    return MigrationPlan(
                        customer_id=customer_id,
                        from_version=await self._version_of(customer_id),
                        to_version=request.playbook.version,
                        refused=str(err),
                    )
                return plan

        return list(await asyncio.gather(*(one(customer_id) for customer_id in customer_ids)))

    async def _version_of(self, customer_id: str) -> str:
        """The version a refused customer follows, for its line; "?" when none can say
        (an unknown customer)."""
        try:
            return (await self.status(customer_id)).playbook_version
        except (LiftoffClientError, RPCError, WorkflowQueryFailedError):
            return "?"

    async def status(self, customer_id: str) -> OnboardingStatus:
        handle = self._handle(customer_id)
        try:
            status: OnboardingStatus = await handle.query("status", result_type=OnboardingStatus)
            return status
        except RPCError as err:
            await self._raise_not_found(customer_id, err)

    async def list(
        self,
        *,
        stage: Stage | None = None,
        csm: str | None = None,
        stalled: bool | None = None,
        setup_stuck: bool | None = None,
        limit: int | None = None,
    ) -> list[CustomerSummary]:
        query = list_query(stage=stage, csm=csm, stalled=stalled, setup_stuck=setup_stuck)
        summaries: dict[str, CustomerSummary] = {}
        async for execution in self._client.list_workflows(query, limit=limit):
            if execution.id in summaries:
                continue
            attributes = execution.typed_search_attributes
            summaries[execution.id] = CustomerSummary(
                customer_id=attributes.get(visibility.CUSTOMER_ID)
                or execution.id.removeprefix(visibility.WORKFLOW_ID_PREFIX),
                workflow_id=execution.id,
                stage=_stage(attributes.get(visibility.STAGE)),
                csm=attributes.get(visibility.CSM),
                stalled=bool(attributes.get(visibility.STALLED)),
                setup_stuck=bool(attributes.get(visibility.SETUP_STUCK)),
                workflow_status=execution.status.name.lower() if execution.status else "unknown",
                started_at=execution.start_time,
            )
        return sorted(summaries.values(), key=lambda s: s.customer_id)

    def _handle(self, customer_id: str) -> WorkflowHandle[object, OnboardingResult]:
        return self._client.get_workflow_handle(
            visibility.workflow_id_for(customer_id), result_type=OnboardingResult
        )

    async def _raise_not_found(self, customer_id: str, err: RPCError) -> NoReturn:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise err
        # NOT_FOUND also means "already completed" for updates: tell them apart.
        try:
            description = await self._handle(customer_id).describe()
        except RPCError as describe_err:
            if describe_err.status == RPCStatusCode.NOT_FOUND:
                raise UnknownCustomerError(customer_id) from None
            raise
        await self._raise_closed(customer_id, description.status)

    async def _raise_closed(
        self, customer_id: str, status: WorkflowExecutionStatus | None
    ) -> NoReturn:
        """Name the stage it ended in (onboarded, failed, cancelled) when a worker can say."""
        ended = status.name.lower() if status is not None else "closed"
        if status == WorkflowExecutionStatus.COMPLETED:
            try:
                status_now: OnboardingStatus = await self._handle(customer_id).query(
                    "status", result_type=OnboardingStatus
                )
                ended = status_now.state.stage.value
            except RPCError:
                pass  # no worker to answer the query: the workflow status will do
        raise OnboardingClosedError(customer_id, ended)
