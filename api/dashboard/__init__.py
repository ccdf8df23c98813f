"""The CSM dashboard: server-rendered pages over the same client layer as the API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
