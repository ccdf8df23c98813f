"""Ending a bench script without the interpreter's finalization.

Seen here in `make bench` and the bench tests: after every figure was printed, a thread
of the Temporal SDK's core released the GIL while the interpreter was finalizing and
aborted the process (SIGABRT, "PyGILState_Release: thread state ... must be current").
A bench has nothing left to clean up by then, so it flushes and leaves.
"""

from __future__ import annotations

import logging
import os
import sys


def exit_without_finalizing(code: int | None) -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
