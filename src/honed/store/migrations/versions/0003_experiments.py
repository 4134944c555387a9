"""Experiments: runs, their results (one per model call) and scores (one per evaluator per result).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

A run is resumable because every finished call is a `results` row keyed by (run, variant, case, sample):
continuing a run skips the keys it already has. Scores are keyed the same way plus the evaluator.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = ("run_id", "variant", "case_id", "sample_index")


def _key_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=False),
        sa.Column("case_id", sa.String(length=200), nullable=False),
        sa.Column("sample_index", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_hash", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("budget_usd", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_spec_hash"), "runs", ["spec_hash"])
    op.create_table(
        "results",
        *_key_columns(),
        sa.Column("request_key", sa.String(length=100), nullable=False),
        sa.Column("prompt_hash", sa.String(length=100), nullable=True),
        sa.Column("dataset_hash", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("parsed", sa.JSON(), nullable=True),
        sa.Column("tool_calls", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_results_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(*_KEY, name=op.f("pk_results")),
    )
    op.create_table(
        "scores",
        *_key_columns(),
        sa.Column("evaluator", sa.String(length=200), nullable=False),
        sa.Column("evaluator_version", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_scores_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(*_KEY, "evaluator", name=op.f("pk_scores")),
    )


def downgrade() -> None:
    op.drop_table("scores")
    op.drop_table("results")
    op.drop_index(op.f("ix_runs_spec_hash"), table_name="runs")
    op.drop_table("runs")
