"""Checks a sales handoff must pass against the playbook it will run on.

Shared by the CLI and the HTTP API, so both refuse the same handoffs with the same words.
"""

from __future__ import annotations

from models.handoff import CustomerHandoff
from models.playbook import Playbook


class UnknownPurposeError(ValueError):
    """The handoff names purposes the playbook does not offer; nothing was started."""

    def __init__(self, unknown: list[str], offered: list[str]) -> None:
        super().__init__(
            f"unknown purpose(s) {', '.join(unknown)}: the playbook offers {', '.join(offered)}"
        )
        self.unknown = unknown
        self.offered = offered


def check_purposes(handoff: CustomerHandoff, playbook: Playbook) -> None:
    known = {purpose.id for purpose in playbook.purposes}
    unknown = [purpose for purpose in handoff.purposes if purpose not in known]
    if unknown:
        raise UnknownPurposeError(unknown, sorted(known))
