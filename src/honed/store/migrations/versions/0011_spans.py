"""The spans of ingested traces: `spans`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

OTLP trace ingestion (`POST /v1/traces`) keeps every span of a trace, so a trace is a tree: generation
spans as logs (linked by `log_id`), tool calls, retrievals and agent steps as spans. Keyed by the trace
and span ids, so a span an exporter sends twice is stored once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("span_id", sa.String(16), primary_key=True),
        sa.Column("parent_span_id", sa.String(16), nullable=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("log_id", sa.String(100), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
    )
    op.create_index("ix_spans_started_at", "spans", ["started_at"])


def downgrade() -> None:
    op.drop_table("spans")
