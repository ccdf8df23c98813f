"""One decoded copy of each playbook for every workflow pinned to it.

Every customer's start input carries the whole playbook (it pins the customer to the
version it started with), and the payload converter decodes a fresh copy for each
workflow the worker starts or replays: ~60 KB of objects per cached customer, all
equal. Workflows keep the first copy seen of each content instead, so a worker
caching thousands of customers on a few playbook versions holds a few copies.

Deterministic: the copy returned is equal to the one given, and no code mutates a
playbook (a changed playbook is always a new object: `model_copy`, a migration). The
table holds its copies weakly: a version no cached workflow uses any more is freed.
The sandbox passes this module through (worker.sandboxed_runner), so the table is
the worker's, not one per workflow.
"""

from __future__ import annotations

import hashlib
import weakref

from models.playbook import Playbook

_copies: weakref.WeakValueDictionary[bytes, Playbook] = weakref.WeakValueDictionary()


def shared(playbook: Playbook) -> Playbook:
    """The worker's copy of a playbook with this content (this one, if first)."""
    key = hashlib.blake2b(playbook.__pydantic_serializer__.to_json(playbook)).digest()
    return _copies.setdefault(key, playbook)
