"""Playbook versions as they were first used: recorded whole when a customer is started
or migrated with them, then listed, diffed and migrated to by their version string."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from models.playbook import Playbook, PlaybookError
from models.tables import CustomerProjection, PlaybookVersionRecord, utc_now
from records.customer_lists import ENDED
from records.database import Database, insert_ignore

SOURCE_CHARS = 255


def content_hash(playbook: Playbook) -> str:
    """SHA-256 of the validated playbook's canonical JSON: the same content, whatever
    the file's layout or comments, is the same version."""
    canonical = json.dumps(playbook.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class VersionConflict(PlaybookError):
    """A playbook whose version string was recorded with other content."""

    def __init__(self, version: str) -> None:
        super().__init__(
            f"playbook version {version!r} was already recorded with different content: "
            "bump `version` in this playbook"
        )


def check_version(database: Database, playbook: Playbook) -> str:
    """Refuses a playbook whose version was recorded with other content (a version
    names one content, or lists, diffs and migrations mix them); returns its hash."""
    digest = content_hash(playbook)
    with database.session() as session:
        recorded = session.exec(
            select(PlaybookVersionRecord.content_hash).where(
                PlaybookVersionRecord.version == playbook.version
            )
        ).first()
    if recorded is not None and recorded != digest:
        raise VersionConflict(playbook.version)
    return digest


def record_version(database: Database, playbook: Playbook, source: str) -> str:
    """Keeps the playbook unless its content is known already; returns its hash.
    Raises VersionConflict if its version was recorded with other content."""
    try:
        with database.session() as session:
            insert_ignore(
                session,
                PlaybookVersionRecord,
                {
                    "content_hash": content_hash(playbook),
                    "name": playbook.name,
                    "version": playbook.version,
                    "source": source[-SOURCE_CHARS:],
                    "first_used_at": utc_now(),
                    "content": playbook.model_dump(mode="json"),
                },
                ["content_hash"],
            )
    except IntegrityError:
        pass  # the version's unique index: other content (perhaps a racing start) holds it
    return check_version(database, playbook)


@dataclass(frozen=True)
class VersionRow:
    version: str
    name: str
    content_hash: str
    source: str
    first_used_at: datetime
    ongoing: int
    ended: int


def list_versions(database: Database) -> list[VersionRow]:
    """Every recorded version, the oldest first, with its customers ongoing and ended."""
    P = CustomerProjection
    with database.session() as session:
        records = session.exec(
            select(PlaybookVersionRecord).order_by(col(PlaybookVersionRecord.first_used_at))
        ).all()
        counts = session.exec(
            select(P.playbook_version, P.stage, func.count()).group_by(P.playbook_version, P.stage)
        ).all()
    customers: dict[tuple[str, bool], int] = {}
    for version, stage, count in counts:
        key = (version, stage in ENDED)
        customers[key] = customers.get(key, 0) + count
    return [
        VersionRow(
            version=record.version,
            name=record.name,
            content_hash=record.content_hash,
            source=record.source,
            first_used_at=record.first_used_at,
            ongoing=customers.get((record.version, False), 0),
            ended=customers.get((record.version, True), 0),
        )
        for record in records
    ]


def _records(database: Database, version: str) -> list[PlaybookVersionRecord]:
    """The records of this version string (or of this hash, 8 characters or more);
    refused if none."""
    with database.session() as session:
        matches = list(
            session.exec(
                select(PlaybookVersionRecord).where(PlaybookVersionRecord.version == version)
            ).all()
        )
        if not matches and len(version) >= 8 and all(c in "0123456789abcdef" for c in version):
            matches = list(
                session.exec(
                    select(PlaybookVersionRecord).where(
                        col(PlaybookVersionRecord.content_hash).startswith(version)
                    )
                ).all()
            )
    if not matches:
        raise PlaybookError(f"no playbook version {version!r} was recorded (see playbook list)")
    return matches


def check_recorded(database: Database, version: str) -> None:
    """Refused unless the version was recorded: a lead's command or report on a mistyped
    version is an error, not an empty cohort. A version customers follow passes too:
    those started before versions were recorded have none."""
    with database.session() as session:
        followed = session.exec(
            select(CustomerProjection.customer_id)
            .where(CustomerProjection.playbook_version == version)
            .limit(1)
        ).first()
    if followed is None:
        _records(database, version)


def find_version(database: Database, version: str) -> Playbook:
    """The recorded playbook of this version string (or of this hash, 8 characters or
    more); refused if none or several contents match."""
    matches = _records(database, version)
    if len(matches) > 1:
        hashes = ", ".join(record.content_hash[:12] for record in matches)
        raise PlaybookError(
            f"version {version!r} was recorded with {len(matches)} different contents "
            f"({hashes}): name one by its hash"
        )
    try:
        return Playbook.model_validate(matches[0].content)
    except ValidationError as err:
        raise PlaybookError(
            f"recorded version {version!r} does not validate with this Liftoff: "
            f"{err.errors()[0]['msg']}"
        ) from None
