"""The CLI's commands, one module per kind of work; each checks its input, then connects.

A command module imports heavy dependencies (the database, templates, the HTTP
server) inside the command, so `liftoff --help` and the Temporal-only commands
stay quick to start.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import Any

from settings import Settings

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
