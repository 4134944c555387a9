"""Initial schema: content-addressed objects and the model response cache.

Revision ID: 0001
Revises:
Create Date: 2024-11-25

Rows of `objects` are versions named by the hash of their content, so changing one would make its name a
lie. A trigger per dialect rejects every UPDATE, which also catches writes that bypass honed's code.
The trigger code is written out here, not imported, so this revision stays what it was when released.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGER = """
CREATE TRIGGER objects_immutable BEFORE UPDATE ON objects
BEGIN
    SELECT RAISE(ABORT, 'objects rows are immutable: store the changed content as a new version');
END
"""
_PG_FUNCTION = """
CREATE FUNCTION honed_reject_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable: store the changed content as a new version', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
"""
_PG_TRIGGER = """
CREATE TRIGGER objects_immutable BEFORE UPDATE ON objects
FOR EACH ROW EXECUTE FUNCTION honed_reject_update()
"""


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("hash", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_objects")),
    )
    op.create_index(op.f("ix_objects_kind"), "objects", ["kind"])
    op.create_table(
        "response_cache",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_response_cache")),
    )
    op.create_index(op.f("ix_response_cache_model"), "response_cache", ["model"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS objects_immutable" + _on_objects())
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS honed_reject_update()")
    op.drop_index(op.f("ix_response_cache_model"), table_name="response_cache")
    op.drop_table("response_cache")
    op.drop_index(op.f("ix_objects_kind"), table_name="objects")
    op.drop_table("objects")


def _on_objects() -> str:
    # PostgreSQL triggers belong to a table; SQLite's are named database-wide.
    return " ON objects" if op.get_bind().dialect.name == "postgresql" else ""
