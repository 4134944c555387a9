"""The value types every part of retrieval shares: documents, chunks, hits, and the two plugin contracts
(`Embedder`, `VectorStore`).

A `Document` is what a loader read (one file, or one record of a JSONL file); a `Chunk` is the unit that
is embedded, indexed and retrieved; a `Hit` is a chunk as one retrieval returned it, with the score of
each stage that ranked it (dense, bm25, fused, rerank) so a user can see why it came back.

Vectors are numpy float32 arrays of unit length: every store is asked for cosine similarity, and a dot
product is the cosine, whichever store or embedder produced them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from honed.hashing import content_hash

Vectors = npt.NDArray[np.float32]
"""A 2-D array, one unit-length row per text."""

Where = Mapping[str, Any]
"""A metadata filter: `{field: value}` or `{field: {"$in": [...]}}`, all keys ANDed (see `rag.filters`)."""


@dataclass(frozen=True, slots=True)
class Document:
    """One source document. `id` is stable across re-ingestion (the file path relative to the ingested
    root, or a record's own id); `metadata` holds `source`, `title` when known, and any user fields."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """Content hash of text and metadata: an unchanged document has the same hash, and is skipped."""
        return content_hash({"text": self.text, "metadata": self.metadata})


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document. `id` is `"{doc_id}#{position}"`; `metadata` is the document's metadata plus
    what the chunker knows (`heading`, `start`, `end` character offsets in the document's text)."""

    id: str
    doc_id: str
    position: int
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def make_id(doc_id: str, position: int) -> str:
        return f"{doc_id}#{position}"


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk. `score` orders the hits of one retrieval (higher is better); `scores` keeps each
    stage's own score (`dense`, `bm25`, `fused`, `rerank`), and `rank` is 1-based."""

    chunk: Chunk
    score: float
    rank: int
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.chunk.id,
            "doc_id": self.chunk.doc_id,
            "score": self.score,
            "scores": self.scores,
            "text": self.chunk.text,
            "metadata": self.chunk.metadata,
        }


class Embedder(ABC):
    """Turns texts into unit-length vectors. Plugins register a factory under a type name
    (`honed.embedders` entry points); `identity()` names the exact model (and its weights' fingerprint
    when they can change), so the embedding cache and a knowledge base's version change when it does."""

    @property
    @abstractmethod
    def dimension(self) -> int:
        """The length of each vector."""

    @abstractmethod
    def identity(self) -> str:
        """A stable string naming the model and its weights, e.g. `local:all-MiniLM-L6-v2`."""

    @abstractmethod
    def embed(self, texts: Sequence[str], *, query: bool = False) -> Vectors:
        """One unit-length float32 row per text, in order. `query` is True for search queries (models
        with asymmetric query/passage encodings use it; others ignore it)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or memory."""


class VectorStore(ABC):
    """Approximate or exact nearest-neighbour search over one collection of chunk vectors (cosine).

    Stores keep each chunk's id, its metadata (for filters) and its text; honed keeps the authoritative
    chunk text in its own database, so a store may be rebuilt from it at any time."""

    @abstractmethod
    def upsert(self, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Insert or replace these chunks (row i of `vectors` is chunk i)."""

    @abstractmethod
    def delete(self, chunk_ids: Sequence[str]) -> None:
        """Remove these chunks; ids the store does not have are ignored."""

    @abstractmethod
    def query(self, vector: Vectors, k: int, where: Where | None = None) -> list[tuple[str, float]]:
        """The `k` nearest chunks to `vector` (1-D) as (chunk id, cosine similarity), best first."""

    def query_many(
        self, vectors: Vectors, k: int, where: Where | None = None
    ) -> list[list[tuple[str, float]]]:
        """`query` for each row of `vectors`; stores with a batch API override this."""
        return [self.query(v, k, where) for v in vectors]

    @abstractmethod
    def count(self) -> int:
        """How many chunks the collection holds."""

    @abstractmethod
    def drop(self) -> None:
        """Delete the whole collection."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
