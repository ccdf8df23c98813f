"""The one logging set-up, called by entry points only (worker, `liftoff serve`, `make run`).

Never at import: a module that imports this one configures nothing. Settings
choose the format (`LIFTOFF_LOG_FORMAT`: text, or json for log pipelines) and
the level (`LIFTOFF_LOG_LEVEL`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry import trace
from temporalio import activity

from models.visibility import WORKFLOW_ID_PREFIX
from settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else was passed as `extra=`. The SDK core's
# forwarded lines carry their raw entry as `temporal_log`, already in the message.
_STANDARD_RECORD_KEYS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "temporal_log",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with `extra=` fields kept as keys for log pipelines.

    A line logged inside an activity carries its workflow id and customer id, and one
    logged inside a traced span its trace and span ids, so a log pipeline can join a
    line to the customer and the trace it belongs to.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_context(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_RECORD_KEYS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _context() -> dict[str, str]:
    found: dict[str, str] = {}
    if activity.in_activity():
        workflow_id = activity.info().workflow_id
        if workflow_id:
            found["workflow_id"] = workflow_id
            found["customer_id"] = workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        found["trace_id"] = format(span.trace_id, "032x")
        found["span_id"] = format(span.span_id, "016x")
    return found


def configure_logging(
    settings: Settings, *, path: Path | None = None, level: str | None = None
) -> None:
    """Replace the root logger's handlers with one, to stderr or appending to `path`.

    `level` overrides `settings.log_level` (the demo always logs INFO to its file).
    """
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr)
        if path is None
        else logging.FileHandler(path, encoding="utf-8")
    )
    handler.setFormatter(
        JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or settings.log_level)
