"""Schemathesis against the app's own OpenAPI schema: no generated input, valid or not,
gets a server error.

Requests go in-process to the app built by the `api` fixture, with a lead token, on
the event loop where the Temporal client and the worker live. Hypothesis runs in a
thread meanwhile, so the worker keeps answering the queries and updates it causes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from records.tokens import TokenRole
from testkit.factories import make_handoff
from tests.support.api_harness import BASE_URL, ApiHarness

# Schemathesis's own negative strategies use `random`; Hypothesis warns about it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"
)

# Bounded for CI: about a thousand requests in all, derandomized.
EXAMPLES_PER_OPERATION = 30
REQUEST_TIMEOUT_SECONDS = 30.0

Case = schemathesis.Case[Any]
Operation = APIOperation[Any, Any, Any, Any]

_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _httpx_kwargs(case: Case, token: str) -> dict[str, Any]:
    """The case as httpx arguments (schemathesis serialises for `requests`), always sent
    with the lead token: the generated Authorization headers are auth tests of their own."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    headers = {**kwargs.get("headers", {}), "Authorization": f"Bearer {token}"}
    if kwargs.get("cookies"):
        headers["Cookie"] = "; ".join(
            f"{name}={value}" for name, value in kwargs["cookies"].items()
        )
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "params": kwargs.get("params"),
        "headers": headers,
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    if "data" in kwargs:
        request["content"] = kwargs["data"]
    return request


def _fuzz(
    operation: Operation,
    mode: GenerationMode,
    send: Callable[[Case], httpx.Response],
    seen: dict[str, set[int]],
    path_parameters: dict[str, str] | None = None,
) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @_SETTINGS
    @given(case=strategy)
    def check(case: Case) -> None:
        response = send(case)
        seen.setdefault(operation.label, set()).add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    check()


async def test_no_generated_input_gets_a_server_error(api: ApiHarness) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    operations: list[Operation] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise AssertionError(f"the app's schema has an unusable operation: {result.err()}")
        operations.append(result.ok())
    token = api.token(TokenRole.LEAD)
    loop = asyncio.get_running_loop()
    seen: dict[str, set[int]] = {}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url=BASE_URL
    ) as http:

        def send(case: Case) -> httpx.Response:
            request = http.request(**_httpx_kwargs(case, token))
            future = asyncio.run_coroutine_threadsafe(request, loop)
            return future.result(timeout=REQUEST_TIMEOUT_SECONDS)

        # Random ids name no customer; one live customer lets events reach the workflow.
        live = make_handoff().model_dump(mode="json")
        started = await http.post(
            "/api/customers", json=live, headers={"Authorization": f"Bearer {token}"}
        )
        assert started.status_code == 201, started.text
        for operation in operations:
            # A probe such as GET /healthz takes no input: nothing to make invalid.
            takes_input = bool(list(operation.iter_parameters())) or bool(operation.body)
            modes = [GenerationMode.POSITIVE] + [GenerationMode.NEGATIVE] * takes_input
            for mode in modes:
                await asyncio.to_thread(_fuzz, operation, mode, send, seen)
            if "{customer_id}" in operation.path:
                on_live = {"customer_id": live["customer_id"]}
                await asyncio.to_thread(
                    _fuzz, operation, GenerationMode.POSITIVE, send, seen, on_live
                )

    # Every operation was exercised, and generated handoffs did start customers.
    assert seen.keys() == {operation.label for operation in operations}
    assert "POST /webhooks/sendgrid" in seen
    assert {200, 201} & seen["POST /api/customers"], seen
    assert {200, 409} <= seen["POST /api/customers/{customer_id}/events"], seen
