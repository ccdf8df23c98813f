"""A playbook version names one content: a unique index on the version string.

Databases written before it may hold a version recorded with several contents; the
first used keeps the version, each later one is renamed "<version>+<hash12>" so the
index can be built, and stays listed, diffable and found by its hash.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSION_CHARS = 64
HASH_CHARS = 12

versions = sa.table(
    "playbook_versions",
    sa.column("content_hash", sa.String),
    sa.column("version", sa.String),
    sa.column("first_used_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    connection = op.get_bind()
    shared = (
        sa.select(versions.c.version)
        .group_by(versions.c.version)
        .having(sa.func.count() > 1)
    )
    rows = connection.execute(
        sa.select(versions.c.version, versions.c.content_hash)
        .where(versions.c.version.in_(shared))
        .order_by(versions.c.version, versions.c.first_used_at, versions.c.content_hash)
    ).all()
    kept: set[str] = set()
    for version, digest in rows:
        if version not in kept:
            kept.add(version)
            continue
        renamed = f"{version[: VERSION_CHARS - HASH_CHARS - 1]}+{digest[:HASH_CHARS]}"
        connection.execute(
            versions.update().where(versions.c.content_hash == digest).values(version=renamed)
        )
    op.drop_index("ix_playbook_versions_version", table_name="playbook_versions")
    op.create_index(
        "ix_playbook_versions_version", "playbook_versions", ["version"], unique=True
    )


def downgrade() -> None:
    # Renamed versions keep their new names.
    op.drop_index("ix_playbook_versions_version", table_name="playbook_versions")
    op.create_index("ix_playbook_versions_version", "playbook_versions", ["version"])
