"""Liveness and readiness for whatever runs the API (a load balancer, Kubernetes).

Unauthenticated, as probes are, and they tell nothing but "ok" or "unreachable"
per dependency (observability/health.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import AppServices
from observability.health import Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is unreachable"}})
async def readyz(request: Request, services: AppServices) -> JSONResponse:
    """The database and Temporal answer: send this process work."""
    readiness: Readiness | None = getattr(request.app.state, "readiness", None)
    if readiness is None:  # one per app: its checks are shared by every probe
        readiness = Readiness(services.database, services.onboarding.temporal)
        request.app.state.readiness = readiness
    checks = await readiness.check()
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse(checks, status_code=200 if healthy else 503)
