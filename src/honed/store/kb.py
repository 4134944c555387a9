"""Knowledge-base tables: documents per knowledge base, indexes over them, and each index's chunks.

The vector store holds vectors; these tables hold what honed must never lose or guess: the source text
(so any index can be rebuilt without the original files), each index's config, which content it
reflects (`content_hash`; NULL while an ingest is under way or was interrupted), and its chunks.
`commit_ingest` writes one ingest's document and chunk changes in one transaction: all or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, select, update

from honed.store.schema import kb_chunks, kb_documents, kb_indexes, utcnow

if TYPE_CHECKING:
    from honed.store.database import Store

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class IndexRow:
    id: str
    kb: str
    config: dict[str, Any]
    content_hash: str | None
    chunks: int
    built_at: datetime | None


ChunkRow = tuple[str, str, int, str, dict[str, Any]]
"""(chunk_id, doc_id, position, text, metadata)."""

DocumentRow = tuple[str, str, str, dict[str, Any]]
"""(doc_id, hash, text, metadata)."""


class KnowledgeBaseRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- documents ----------------------------------------------------------------------------------------

    def document_hashes(self, kb: str) -> dict[str, str]:
        stmt = select(kb_documents.c.doc_id, kb_documents.c.hash).where(kb_documents.c.kb == kb)
        with self._store.read() as conn:
            return {row.doc_id: row.hash for row in conn.execute(stmt)}

    def documents(self, kb: str) -> list[DocumentRow]:
        stmt = (
            select(kb_documents.c.doc_id, kb_documents.c.hash, kb_documents.c.text, kb_documents.c.metadata)
            .where(kb_documents.c.kb == kb)
            .order_by(kb_documents.c.doc_id)
        )
        with self._store.read() as conn:
            return [(r.doc_id, r.hash, r.text, dict(r.metadata)) for r in conn.execute(stmt)]

    def document_count(self, kb: str) -> int:
        stmt = select(func.count()).select_from(kb_documents).where(kb_documents.c.kb == kb)
        with self._store.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    # -- indexes ------------------------------------------------------------------------------------------

    def index(self, index_id: str) -> IndexRow | None:
        stmt = select(kb_indexes).where(kb_indexes.c.id == index_id)
        with self._store.read() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _index_row(row)

    def indexes(self, kb: str) -> list[IndexRow]:
        stmt = select(kb_indexes).where(kb_indexes.c.kb == kb).order_by(kb_indexes.c.built_at)
        with self._store.read() as conn:
            return [_index_row(r) for r in conn.execute(stmt)]

    def ensure_index(self, index_id: str, kb: str, config: Mapping[str, Any]) -> IndexRow:
        existing = self.index(index_id)
        if existing is not None:
            return existing
        with self._store.write() as conn:
            conn.execute(
                kb_indexes.insert(),
                {"id": index_id, "kb": kb, "config": dict(config), "content_hash": None, "chunks": 0},
            )
        found = self.index(index_id)
        assert found is not None
        return found

    def mark_stale(self, index_id: str) -> None:
        """Say the index no longer matches any content: set before touching the vector store, so an
        interrupted ingest leaves an index that the next ingest rebuilds instead of one that lies."""
        with self._store.write() as conn:
            conn.execute(update(kb_indexes).where(kb_indexes.c.id == index_id).values(content_hash=None))

    # -- chunks -------------------------------------------------------------------------------------------

    def chunks(self, index_id: str) -> list[ChunkRow]:
        c = kb_chunks.c
        stmt = (
            select(c.chunk_id, c.doc_id, c.position, c.text, c.metadata)
            .where(c.index_id == index_id)
            .order_by(c.doc_id, c.position)
        )
        with self._store.read() as conn:
            return [(r.chunk_id, r.doc_id, r.position, r.text, dict(r.metadata)) for r in conn.execute(stmt)]

    def chunk_ids(self, index_id: str, doc_ids: Iterable[str] | None = None) -> list[str]:
        c = kb_chunks.c
        with self._store.read() as conn:
            if doc_ids is None:
                return list(conn.execute(select(c.chunk_id).where(c.index_id == index_id)).scalars())
            ids = list(doc_ids)
            out: list[str] = []
            for start in range(0, len(ids), _CHUNK):
                stmt = select(c.chunk_id).where(
                    c.index_id == index_id, c.doc_id.in_(ids[start : start + _CHUNK])
                )
                out.extend(conn.execute(stmt).scalars())
            return out

    # -- one ingest, atomically ---------------------------------------------------------------------------

    def commit_ingest(
        self,
        kb: str,
        *,
        put_documents: Sequence[DocumentRow],
        remove_documents: Sequence[str],
        index_id: str,
        replace_all_chunks: bool,
        chunks_of: Sequence[str],
        new_chunks: Sequence[ChunkRow],
        content_hash: str,
    ) -> int:
        """Apply one ingest: upsert and remove documents; in the index, drop the chunks of `chunks_of`
        (or all of them) and add `new_chunks`; stamp the index with `content_hash`. Returns its chunk
        count. One transaction."""
        now = utcnow()
        with self._store.write() as conn:
            gone = list(remove_documents) + [d[0] for d in put_documents]
            _delete_in(conn, kb_documents, kb_documents.c.doc_id, gone, kb_documents.c.kb == kb)
            if put_documents:
                conn.execute(
                    kb_documents.insert(),
                    [
                        {"kb": kb, "doc_id": d, "hash": h, "text": t, "metadata": m, "updated_at": now}
                        for d, h, t, m in put_documents
                    ],
                )
            if replace_all_chunks:
                conn.execute(delete(kb_chunks).where(kb_chunks.c.index_id == index_id))
            else:
                _delete_in(conn, kb_chunks, kb_chunks.c.doc_id, chunks_of, kb_chunks.c.index_id == index_id)
            if new_chunks:
                conn.execute(
                    kb_chunks.insert(),
                    [
                        {
                            "index_id": index_id,
                            "chunk_id": i,
                            "doc_id": d,
                            "position": p,
                            "text": t,
                            "metadata": m,
                        }
                        for i, d, p, t, m in new_chunks
                    ],
                )
            count = int(
                conn.execute(
                    select(func.count()).select_from(kb_chunks).where(kb_chunks.c.index_id == index_id)
                ).scalar_one()
            )
            conn.execute(
                update(kb_indexes)
                .where(kb_indexes.c.id == index_id)
                .values(content_hash=content_hash, chunks=count, built_at=now)
            )
        return count

    def delete_kb(self, kb: str) -> list[str]:
        """Remove a knowledge base's documents, indexes and chunks; returns the index ids removed."""
        ids = [i.id for i in self.indexes(kb)]
        with self._store.write() as conn:
            for index_id in ids:
                conn.execute(delete(kb_chunks).where(kb_chunks.c.index_id == index_id))
            conn.execute(delete(kb_indexes).where(kb_indexes.c.kb == kb))
            conn.execute(delete(kb_documents).where(kb_documents.c.kb == kb))
        return ids


def _delete_in(conn: Connection, table: Any, column: Any, values: Sequence[str], scope: Any) -> None:
    for start in range(0, len(values), _CHUNK):
        conn.execute(delete(table).where(scope, column.in_(list(values[start : start + _CHUNK]))))


def _index_row(row: Any) -> IndexRow:
    return IndexRow(row.id, row.kb, dict(row.config), row.content_hash, row.chunks, row.built_at)
