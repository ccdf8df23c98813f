"""Usage intake in the Segment tracking API's format."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
