"""Who started a run: `created_by` on runs.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

The web UI lists runs with who ran them: the system user of the process that ran it (the CLI, a script),
or the UI's user. NULL for runs made before this revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE (see 0007): a batch on SQLite would recreate `runs` and cascade-delete its results.


def upgrade() -> None:
    op.add_column("runs", sa.Column("created_by", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "created_by")
