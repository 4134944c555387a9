"""`CachedEmbedder`: any embedder, with its vectors kept in the database's embedding cache.

Each text's key is the content hash of (the inner embedder's identity, "q" or "d", the text): a new model
or new weights (a new identity) never meet old vectors, and a query and a passage with the same text stay
apart for models that encode them differently. One `embed` call is one batched read of all its keys, one
call of the inner embedder with the distinct misses, and one write of their vectors, so re-ingesting an
unchanged corpus costs a database read instead of a forward pass per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from honed.hashing import content_hash
from honed.rag.types import Embedder, Vectors

if TYPE_CHECKING:
    from honed.store.database import Store


class CachedEmbedder(Embedder):
    """`inner` with a read-through cache in `store` (`store.embeddings`); with no store, `inner` itself.

    It is an Embedder with the same identity and dimension as `inner`: a cache changes cost, not vectors.
    """

    def __init__(self, inner: Embedder, store: Store | None) -> None:
        self.inner = inner
        self.store = store
        self.hits = 0  # texts served from the cache, over this object's life
        self.misses = 0  # texts the inner embedder embedded

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def identity(self) -> str:
        return self.inner.identity()

    def keys(self, texts: Sequence[str], *, query: bool = False) -> list[str]:
        """The cache key of each text."""
        identity = self.inner.identity()
        role = "q" if query else "d"
        return [content_hash([identity, role, text]) for text in texts]

    def embed(self, texts: Sequence[str], *, query: bool = False) -> Vectors:
        if self.store is None or not texts:
            return self.inner.embed(texts, query=query)
        keys = self.keys(texts, query=query)
        found = self.store.embeddings.get_many(keys)
        missing: dict[str, str] = {}  # key -> text, first occurrence: a duplicate text is embedded once
        for key, text in zip(keys, texts, strict=True):
            if key not in found and key not in missing:
                missing[key] = text
        if missing:
            vectors = self.inner.embed(list(missing.values()), query=query)
            identity = self.inner.identity()
            self.store.embeddings.put_many(
                [(key, identity, vector) for key, vector in zip(missing, vectors, strict=True)]
            )
            found.update(zip(missing, vectors, strict=True))
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        dimension = len(next(iter(found.values())))
        out = np.empty((len(texts), dimension), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = found[key]
        return out

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.inner!r}, {self.store!r})"
