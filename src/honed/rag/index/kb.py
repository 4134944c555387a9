"""Knowledge bases: documents in, chunks indexed (dense and BM25), hits out, every state a version.

A knowledge base is a name with a config (chunking, embedder, vector store). Its *documents* live in
honed's database; an *index* is one (chunking, embedder, store) config built over them, identified by the
hash of that config, so a retrieval experiment can build a second index with other chunks or another
embedder over the same documents without touching the files again. Each ingest that changes anything
records a new version of the knowledge base (`kind="kb"`): the config plus the hash of its documents, so
every retrieval can name exactly which content and index produced it.

Ingest does the least work that keeps the index true: documents whose content hash is unchanged are
skipped (re-ingesting an unchanged folder embeds nothing and writes nothing); changed ones are re-chunked,
their old chunks deleted from the vector store, their new chunks embedded (through the embedding cache)
and upserted. The database changes of one ingest are one transaction. The vector store cannot join that
transaction, so the index is marked stale first and stamped with the new content hash last: an
interrupted ingest leaves an index that says it is stale, and the next ingest rebuilds it from the
stored documents (cheaply: the embeddings are cached).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Unpack

from pydantic import BaseModel, ConfigDict, Field

from honed.errors import InvalidInputError, NotFoundError, RetrievalError
from honed.hashing import content_hash, short
from honed.rag.index import filters
from honed.rag.ingest.chunking import ChunkingConfig, chunk_documents
from honed.rag.types import Chunk, Document, Embedder, Hit, VectorStore, Where
from honed.userfiles import Lines, validate

if TYPE_CHECKING:
    from honed.config import Settings
    from honed.rag.index.lexical import BM25Index
    from honed.rag.ingest.loaders import LoadOptions, LoadResult
    from honed.rag.retrieve.rank import SearchOptions
    from honed.store import Store
    from honed.store.kb import IndexRow
    from honed.store.names import Version

KIND = "kb"
DEFAULT_EMBEDDER = "local/all-MiniLM-L6-v2"
Method = Literal["dense", "bm25", "hybrid"]
Progress = Callable[[str, int, int], None]
"""`progress(phase, done, total)`; phases "embed" and "store"."""

#: Chunks embedded and upserted per batch: large enough for the embedder's own batching to pay off,
#: small enough that progress moves and memory stays flat on a 100,000-chunk ingest.
_BATCH = 1024


class KnowledgeBaseConfig(BaseModel):
    """How a knowledge base is chunked, embedded and stored. `store` is a vector-store spec such as
    `{"type": "chroma"}` (embedded, in the workspace), `{"type": "chroma", "url": ...}` or
    `{"type": "qdrant", "path": ...}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    embedder: str = DEFAULT_EMBEDDER
    store: dict[str, Any] = Field(default_factory=lambda: {"type": "chroma"})

    @classmethod
    def parse(
        cls, data: Mapping[str, Any], *, where: str = "knowledge base config", lines: Lines | None = None
    ) -> KnowledgeBaseConfig:
        """Validate `data`; errors name `where`, the line when `lines` maps field paths to lines, and
        the field (see `honed.userfiles`)."""
        return validate(cls, dict(data), where=where, lines=lines)

    @classmethod
    def from_body(cls, body: Mapping[str, Any], *, where: str) -> KnowledgeBaseConfig:
        """The config a stored version holds (the inverse of `body()`; the chunking body's derived keys,
        such as the tokenizer and the chunker's algorithm number, are not settings)."""
        data = dict(body)
        settings = set(ChunkingConfig.model_fields)
        data["chunking"] = {k: v for k, v in dict(body.get("chunking", {})).items() if k in settings}
        return cls.parse(data, where=where)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "chunking": self.chunking.body(),
            "embedder": self.embedder,
            "store": dict(self.store),
        }
        if self.description is not None:
            out["description"] = self.description
        return out

    def with_overrides(self, **overrides: Any) -> KnowledgeBaseConfig:
        """This config with some fields replaced (None leaves a field as it is); used by experiments."""
        data = self.model_dump()
        for key, value in overrides.items():
            if value is not None:
                data[key] = value.model_dump() if isinstance(value, BaseModel) else value
        return KnowledgeBaseConfig.parse(data)


@dataclass(frozen=True)
class IngestReport:
    """What one ingest did. `version` is the knowledge base's version afterwards; `duplicates` holds
    (dropped id, id of the document whose text it repeats), filled only when de-duplication was asked for."""

    kb: str
    version: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    followed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_total: int = 0
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.rebuilt)

    def with_load(self, loaded: LoadResult) -> IngestReport:
        """This report plus what loading the files reported (skipped files, followed links, warnings)."""
        return dataclasses.replace(
            self,
            duplicates=[*loaded.duplicates, *self.duplicates],
            skipped=loaded.skipped,
            followed=loaded.followed,
            warnings=loaded.warnings,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kb": self.kb,
            "version": self.version,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "duplicates": [{"dropped": a, "duplicate_of": b} for a, b in self.duplicates],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "followed_links": [{"link": p, "target": t} for p, t in self.followed],
            "warnings": [{"path": p, "warning": w} for p, w in self.warnings],
            "chunks_embedded": self.chunks_embedded,
            "chunks_total": self.chunks_total,
            "rebuilt": self.rebuilt,
        }


def create_kb(store: Store, name: str, config: KnowledgeBaseConfig, *, exist_ok: bool = False) -> Version:
    """Record a knowledge base (its first version, with no documents). Creating an existing name is an
    error unless `exist_ok` and the config is the same; a different config is `honed kb config`'s job."""
    history = store.names.history(KIND, name)
    if history:
        _, body = store.names.get(KIND, name)
        if exist_ok and body.get("config") == config.body():
            return history[-1]
        raise InvalidInputError(
            f"knowledge base {name!r} exists already",
            hint="choose another name, or change its config with `honed kb config`",
        )
    version, _ = store.names.record(KIND, name, _body(config, content_hash([]), 0, 0), note="created")
    return version


def list_kbs(store: Store) -> list[tuple[str, int, Any]]:
    """(name, number of versions, last change) of every knowledge base."""
    return store.names.names(KIND)


def get_kb(store: Store, settings: Settings, name: str, ref: str | None = None) -> KnowledgeBase:
    """The knowledge base `name` (at `ref`'s config; search always uses the current documents)."""
    try:
        version, body = store.names.get(KIND, name, ref)
    except NotFoundError:
        known = ", ".join(n for n, _, _ in list_kbs(store)) or "none yet"
        raise NotFoundError(
            f"no knowledge base {name!r}", hint=f"create it with `honed kb create {name}`; known: {known}"
        ) from None
    config = KnowledgeBaseConfig.from_body(body["config"], where=f"stored knowledge base {name!r}")
    return KnowledgeBase(store, settings, name, config, version)


def set_config(store: Store, name: str, config: KnowledgeBaseConfig) -> Version:
    """Record `config` as the knowledge base's config (a new version; the next ingest builds its index)."""
    _, body = store.names.get(KIND, name)
    version, _ = store.names.record(
        KIND, name, _body(config, body["content"], body["documents"], 0), note="config changed"
    )
    return version


def _body(config: KnowledgeBaseConfig, content: str, documents: int, chunks: int) -> dict[str, Any]:
    return {"config": config.body(), "content": content, "documents": documents, "chunks": chunks}


def documents_hash(hashes: Mapping[str, str]) -> str:
    """The content identity of a knowledge base: its (document id, document hash) pairs."""
    return content_hash(sorted(hashes.items()))


class KnowledgeBase:
    """One knowledge base, opened: ingest into it, search it, build further indexes over it."""

    def __init__(
        self, store: Store, settings: Settings, name: str, config: KnowledgeBaseConfig, version: Version
    ) -> None:
        self.store = store
        self.settings = settings
        self.name = name
        self.config = config
        self.version = version
        self._indexes: dict[str, Index] = {}
        self._lock = threading.Lock()

    # -- indexes ------------------------------------------------------------------------------------------

    def index(self, config: KnowledgeBaseConfig | None = None) -> Index:
        """The index for `config` (default: the knowledge base's own), opened once per object."""
        config = config or self.config
        index_id = index_id_for(self.name, config)
        with self._lock:
            if index_id not in self._indexes:
                self._indexes[index_id] = Index(self, config, index_id)
            return self._indexes[index_id]

    def close(self) -> None:
        for index in self._indexes.values():
            index.close()
        self._indexes.clear()

    # -- ingest -------------------------------------------------------------------------------------------

    def ingest(
        self,
        paths: Sequence[str | Path],
        *,
        prune: bool = False,
        dedupe: bool = False,
        progress: Progress | None = None,
        **load: Unpack[LoadOptions],
    ) -> IngestReport:
        """Load files, folders and globs into the knowledge base (see `honed.rag.ingest.loaders`): only
        regular files inside the folders named, each within `limits`; `follow_links` also reads links
        that lead out of them (each reported in `followed`); the other `load` options as for
        `load_documents`. `dedupe` as for `ingest_documents`."""
        from honed.rag.ingest.loaders import load_documents

        loaded = load_documents(paths, **load)
        report = self.ingest_documents(loaded.documents, prune=prune, dedupe=dedupe, progress=progress)
        return report.with_load(loaded)

    def ingest_documents(
        self,
        documents: Sequence[Document],
        *,
        prune: bool = False,
        dedupe: bool = False,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Add or update `documents` (by id); with `prune`, remove the documents not among them. Every
        document with its own id is kept; `dedupe` drops those whose text repeats an earlier one's, each
        reported in `duplicates` (a repeat stored by an earlier ingest stays unless `prune`)."""
        ids = [d.id for d in documents]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise InvalidInputError(
                f"document ids repeat: {', '.join(dupes)}", hint="give each document its own id"
            )
        duplicates: list[tuple[str, str]] = []
        if dedupe:
            from honed.rag.ingest.loaders import drop_repeats

            documents, duplicates = drop_repeats(documents)
        old = self.store.kb.document_hashes(self.name)
        new = {d.id: d for d in documents}
        added = sorted(i for i in new if i not in old)
        updated = sorted(i for i in new if i in old and old[i] != new[i].hash)
        removed = sorted(i for i in old if i not in new) if prune else []
        after = {**old, **{i: new[i].hash for i in added + updated}}
        for i in removed:
            after.pop(i)
        content = documents_hash(after)
        index = self.index()
        row = index.row()
        if not (added or updated or removed) and row.content_hash == content:
            return IngestReport(
                self.name,
                self.version.hash,
                unchanged=len(new),
                duplicates=duplicates,
                chunks_total=row.chunks,
            )
        changed_docs = [new[i] for i in added + updated]
        # Incremental only when the index reflects the documents as they were before this ingest;
        # otherwise (a new config, an interrupted ingest, documents added under another config) rebuild
        # it from every document (cheap where embeddings are cached).
        rebuild = row.content_hash != documents_hash(old)
        to_chunk: list[Document] = changed_docs
        if rebuild:
            skip = set(new) | set(removed)
            to_chunk = [_document(r) for r in self.store.kb.documents(self.name) if r[0] not in skip]
            to_chunk += list(documents)
        embedded, total = index.apply(
            to_chunk,
            drop_docs=updated + removed,
            rebuild=rebuild,
            put_documents=[(d.id, d.hash, d.text, d.metadata) for d in changed_docs],
            remove_documents=removed,
            content=content,
            progress=progress,
        )
        version, _ = self.store.names.record(
            KIND,
            self.name,
            _body(self.config, content, len(after), total),
            note=f"ingest: +{len(added)} ~{len(updated)} -{len(removed)}",
        )
        self.version = version
        return IngestReport(
            self.name,
            version.hash,
            added=added,
            updated=updated,
            removed=removed,
            unchanged=len(new) - len(added) - len(updated),
            duplicates=duplicates,
            chunks_embedded=embedded,
            chunks_total=total,
            rebuilt=rebuild and bool(old),
        )

    def documents(self) -> list[Document]:
        return [_document(r) for r in self.store.kb.documents(self.name)]

    # -- search -------------------------------------------------------------------------------------------

    def search(self, query: str, **options: Unpack[SearchOptions]) -> list[Hit]:
        """The `k` best chunks (or documents) for `query` from the knowledge base's own index."""
        return self.index().search_many([query], **options)[0]


def index_id_for(kb: str, config: KnowledgeBaseConfig) -> str:
    return content_hash(
        {"kb": kb, "chunking": config.chunking.body(), "embedder": config.embedder, "store": config.store}
    )


@dataclass(frozen=True)
class IndexState:
    """An index of a knowledge base and where it stands: `current` (built over the documents as they are
    now), `out of date` (over other documents) or `incomplete` (never finished); `default` when the
    knowledge base's config builds it."""

    row: IndexRow
    state: Literal["current", "out of date", "incomplete"]
    default: bool

    def to_dict(self) -> dict[str, Any]:
        row = self.row
        return {
            "id": row.id,
            "config": row.config,
            "chunks": row.chunks,
            "state": self.state,
            "default": self.default,
        }


def index_states(store: Store, kb: KnowledgeBase) -> list[IndexState]:
    """Every index of `kb`, with its state (what `honed kb show` and the web UI list)."""
    current = documents_hash(store.kb.document_hashes(kb.name))
    own = index_id_for(kb.name, kb.config)
    return [
        IndexState(
            i,
            "current"
            if i.content_hash == current
            else ("incomplete" if i.content_hash is None else "out of date"),
            i.id == own,
        )
        for i in store.kb.indexes(kb.name)
    ]


def _document(row: tuple[str, str, str, dict[str, Any]]) -> Document:
    return Document(row[0], row[2], row[3])


class Index:
    """One index over a knowledge base's documents: chunks in the database, vectors in the vector store,
    and a BM25 index built from the chunks on first use (and saved beside the vector store)."""

    def __init__(self, kb: KnowledgeBase, config: KnowledgeBaseConfig, index_id: str) -> None:
        self.kb = kb
        self.config = config
        self.id = index_id
        self._embedder: Embedder | None = None
        self._vectors: VectorStore | None = None
        self._bm25: BM25Index | None = None
        self._chunks: dict[str, Chunk] | None = None
        self._keys: set[str] | None = None
        self._lock = threading.Lock()

    @property
    def short_id(self) -> str:
        return short(self.id, 12)

    def row(self) -> IndexRow:
        return self.kb.store.kb.ensure_index(self.id, self.kb.name, self.describe())

    def describe(self) -> dict[str, Any]:
        return {
            "chunking": self.config.chunking.body(),
            "embedder": self.config.embedder,
            "store": dict(self.config.store),
        }

    # -- parts, opened lazily (each costs seconds: model weights, a store client) --------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from honed.rag.index.embedders import CachedEmbedder, build_embedder

            self._embedder = CachedEmbedder(
                build_embedder(self.config.embedder, self.kb.settings), self.kb.store
            )
        return self._embedder

    @property
    def vectors(self) -> VectorStore:
        if self._vectors is None:
            from honed.rag.index.stores import open_vector_store

            self._vectors = open_vector_store(
                self.config.store,
                collection=f"honed-{self.kb.name}-{self.short_id}",
                dimension=self.embedder.dimension,
                root=self.folder(),
            )
        return self._vectors

    def folder(self) -> Path | None:
        data = self.kb.settings.data_folder
        return data / "kb" if data is not None else None

    def close(self) -> None:
        if self._vectors is not None:
            self._vectors.close()
        if self._embedder is not None:
            self._embedder.close()

    # -- writing ------------------------------------------------------------------------------------------

    def apply(
        self,
        documents: Sequence[Document],
        *,
        drop_docs: Sequence[str],
        rebuild: bool,
        put_documents: Sequence[tuple[str, str, str, dict[str, Any]]],
        remove_documents: Sequence[str],
        content: str,
        progress: Progress | None = None,
    ) -> tuple[int, int]:
        """Chunk and embed `documents` into this index; returns (chunks embedded, chunks in the index)."""
        store = self.kb.store
        chunks = chunk_documents(documents, self.config.chunking)
        store.kb.mark_stale(self.id)
        old_ids = store.kb.chunk_ids(self.id) if rebuild else store.kb.chunk_ids(self.id, drop_docs)
        new_ids = {c.id for c in chunks}
        stale = [i for i in old_ids if i not in new_ids]
        if stale:
            self.vectors.delete(stale)
        for start in range(0, len(chunks), _BATCH):
            batch = chunks[start : start + _BATCH]
            vectors = self.embedder.embed([c.text for c in batch])
            self.vectors.upsert(batch, vectors)
            if progress is not None:
                progress("embed", min(start + _BATCH, len(chunks)), len(chunks))
        total = store.kb.commit_ingest(
            self.kb.name,
            put_documents=put_documents,
            remove_documents=remove_documents,
            index_id=self.id,
            replace_all_chunks=rebuild,
            chunks_of=[*drop_docs, *(d.id for d in documents)],
            new_chunks=[(c.id, c.doc_id, c.position, c.text, c.metadata) for c in chunks],
            content_hash=content,
        )
        with self._lock:
            self._chunks = None
            self._bm25 = None
            self._keys = None
        return len(chunks), total

    def build(self, progress: Progress | None = None) -> int:
        """Make this index reflect the knowledge base's current documents (no-op if it does already).
        Returns the number of chunks embedded."""
        hashes = self.kb.store.kb.document_hashes(self.kb.name)
        content = documents_hash(hashes)
        row = self.row()
        if row.content_hash == content:
            return 0
        docs = self.kb.documents()
        embedded, _ = self.apply(
            docs,
            drop_docs=[],
            rebuild=True,
            put_documents=[],
            remove_documents=[],
            content=content,
            progress=progress,
        )
        return embedded

    # -- reading ------------------------------------------------------------------------------------------

    def chunks(self) -> dict[str, Chunk]:
        """Every chunk of the index by id (loaded once: hits are looked up here, BM25 is built from it)."""
        with self._lock:
            if self._chunks is None:
                row = self.row()
                current = documents_hash(self.kb.store.kb.document_hashes(self.kb.name))
                if row.content_hash != current and (row.chunks or current != documents_hash({})):
                    state = (
                        "incomplete (an ingest was interrupted)"
                        if row.content_hash is None
                        else "out of date"
                    )
                    raise RetrievalError(
                        f"knowledge base {self.kb.name!r}: index {self.short_id} is {state}",
                        hint=f"run `honed kb ingest {self.kb.name}` to bring it up to date",
                    )
                self._chunks = {
                    cid: Chunk(cid, doc, pos, text, meta)
                    for cid, doc, pos, text, meta in self.kb.store.kb.chunks(self.id)
                }
            return self._chunks

    def metadata_keys(self) -> set[str]:
        """Every metadata field some chunk of the index has (the documents' fields, e.g. from front
        matter or JSONL, plus what the chunker records: heading, start, end, page)."""
        chunks = self.chunks()
        with self._lock:
            if self._keys is None:
                self._keys = set().union(*(c.metadata for c in chunks.values()))
            return set(self._keys)

    def unknown_fields(self, where: Where | None) -> list[str]:
        """The fields `where` filters on that no chunk has (such a filter matches nothing, or with
        $ne/$nin everything)."""
        norm = filters.check(where)
        if not norm:
            return []
        known = self.metadata_keys()
        return [key for key in norm if key not in known]

    def bm25(self) -> BM25Index:
        chunks = self.chunks()
        with self._lock:
            if self._bm25 is None:
                from honed.rag.index.lexical import BM25Index

                ids = list(chunks)
                self._bm25 = BM25Index.build(ids, [chunks[i].text for i in ids])
            return self._bm25

    def search_many(self, queries: Sequence[str], **options: Unpack[SearchOptions]) -> list[list[Hit]]:
        """The `k` best chunks (or documents) for each query: `honed.rag.retrieve.rank` on this index."""
        from honed.rag.retrieve.rank import rank

        return rank(self, queries, **options)
