"""The CSM dashboard: server-rendered pages over the same client layer as the API."""

from __future__ import annotations

from api.dashboard.pages import router

__all__ = ["router"]
