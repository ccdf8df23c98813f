"""Liveness and readiness for whatever runs the API (a load balancer, Kubernetes).

Unauthenticated, as probes are, and they tell nothing but "ok" or "unreachable"
per dependency (observability/health.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from observability.health import Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is unreachable"}})
async def readyz(request: Request) -> JSONResponse:
    """The database and Temporal answer: send this process work."""
    readiness: Readiness = request.app.state.readiness  # create_app's, shared by every probe
    checks = await readiness.check()
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse(checks, status_code=200 if healthy else 503)
