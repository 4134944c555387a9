"""Time queued apart from time in the model: `queue_s` on results and logs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

`latency_s` now means the time in the model only (a call's own service time); `queue_s` is the time the
call waited around it: for the endpoint's concurrency slot, for a batch of the local model, for retries.
Rows written before this revision keep `queue_s` NULL (not known): their `latency_s` may include
queueing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("results", "logs")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("queue_s", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("queue_s")
