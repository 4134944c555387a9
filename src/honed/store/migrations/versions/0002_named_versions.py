"""Named versions: a name's history of content-addressed versions, and movable labels.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Prompts, datasets and evaluators are stored as immutable `objects`; `versions` records which of them
belong to a name (prompt "qa", dataset "faq") and when, and `labels` points names like `production` at
one of them. Labels move; versions never change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "versions",
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hash", sa.String(length=100), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["hash"], ["objects.hash"], name=op.f("fk_versions_hash_objects")),
        sa.PrimaryKeyConstraint("kind", "name", "hash", name=op.f("pk_versions")),
    )
    op.create_index(op.f("ix_versions_kind_name_created_at"), "versions", ["kind", "name", "created_at"])
    op.create_table(
        "labels",
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("hash", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["hash"], ["objects.hash"], name=op.f("fk_labels_hash_objects")),
        sa.PrimaryKeyConstraint("kind", "name", "label", name=op.f("pk_labels")),
    )


def downgrade() -> None:
    op.drop_table("labels")
    op.drop_index(op.f("ix_versions_kind_name_created_at"), table_name="versions")
    op.drop_table("versions")
