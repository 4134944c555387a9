"""Review (annotation) queues: `review_queues`, `review_items`, `review_labels`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-14

A queue holds items to label (a run's results or logs, copied with their input and output); labels are
events, one row per change by one reviewer, so two people labelling the same queue at once never write the
same row. See `honed.store.review`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "review_queues",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=True),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("scale", sa.String(20), nullable=False),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_review_queues_created_at", "review_queues", ["created_at"])
    op.create_table(
        "review_items",
        sa.Column(
            "queue_id",
            sa.String(40),
            sa.ForeignKey("review_queues.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("variant", sa.String(100), nullable=True),
        sa.Column("case_id", sa.String(200), nullable=True),
        sa.Column("sample_index", sa.Integer(), nullable=True),
        sa.Column("log_id", sa.String(100), nullable=True),
        sa.Column("input", sa.JSON(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("reference", sa.JSON(), nullable=True),
    )
    op.create_table(
        "review_labels",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "queue_id", sa.String(40), sa.ForeignKey("review_queues.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("feedback_ids", sa.JSON(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("undone_at", _TS, nullable=True),
    )
    op.create_index("ix_review_labels_queue_id_position", "review_labels", ["queue_id", "position"])
    op.create_index("ix_review_labels_queue_id_reviewer_at", "review_labels", ["queue_id", "reviewer", "at"])


def downgrade() -> None:
    op.drop_table("review_labels")
    op.drop_table("review_items")
    op.drop_table("review_queues")
