"""Knowledge bases: source documents, the chunks of each index built from them, and an embedding cache.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Documents belong to a knowledge base; chunks belong to an *index* (one chunking + embedding config over
a knowledge base's documents), so a retrieval experiment can build several indexes over the same documents
without reading the files again. The embedding cache maps the hash of (embedder identity, text) to the
vector as float32 bytes: re-ingesting or re-querying the same text never embeds it twice. Results gain
`retrieved`: what retrieval put into the prompt of that call.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "embedding_cache",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_embedding_cache")),
    )
    op.create_table(
        "kb_documents",
        sa.Column("kb", sa.String(length=200), nullable=False),
        sa.Column("doc_id", sa.String(length=500), nullable=False),
        sa.Column("hash", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kb", "doc_id", name=op.f("pk_kb_documents")),
    )
    op.create_table(
        "kb_indexes",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("kb", sa.String(length=200), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=100), nullable=True),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_indexes")),
    )
    op.create_index(op.f("ix_kb_indexes_kb"), "kb_indexes", ["kb"])
    op.create_table(
        "kb_chunks",
        sa.Column("index_id", sa.String(length=100), nullable=False),
        sa.Column("chunk_id", sa.String(length=600), nullable=False),
        sa.Column("doc_id", sa.String(length=500), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["index_id"], ["kb_indexes.id"], name=op.f("fk_kb_chunks_index_id_kb_indexes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("index_id", "chunk_id", name=op.f("pk_kb_chunks")),
    )
    op.create_index(op.f("ix_kb_chunks_index_id_doc_id"), "kb_chunks", ["index_id", "doc_id"])
    # What retrieval put into a result's prompt (chunk ids, scores, texts, kb version and index).
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("retrieved", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.drop_column("retrieved")
    op.drop_index(op.f("ix_kb_chunks_index_id_doc_id"), table_name="kb_chunks")
    op.drop_table("kb_chunks")
    op.drop_index(op.f("ix_kb_indexes_kb"), table_name="kb_indexes")
    op.drop_table("kb_indexes")
    op.drop_table("kb_documents")
    op.drop_table("embedding_cache")
