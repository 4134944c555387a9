"""Latency measured one call at a time after a run: `latency_probe` on runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

On a provider that batches (the local model) a run's own latencies are those of calls sharing a batch; a
few calls per variant timed one at a time after the run (`honed.experiments.latency`) are stored here as
`{"calls": N, "variants": {variant: [seconds, ...]}}`. NULL: none were made.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE, not Alembic's batch mode: on SQLite a batch recreates `runs`, and dropping the old
# table with foreign keys on deletes every result and score of every run (ON DELETE CASCADE). SQLite has
# had ADD and DROP COLUMN since 3.35.


def upgrade() -> None:
    op.add_column("runs", sa.Column("latency_probe", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "latency_probe")
