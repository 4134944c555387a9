"""The embedding cache: key -> float32 vector, shared by every process on the database.

The key is the content hash of (embedder identity, query or document, text), built by
`honed.rag.index.embedders.cache.CachedEmbedder`; this module only stores and fetches rows. Like the response
cache it is a hot path (ingestion looks up every chunk), so reads are batched IN-lists and writes are one
executemany, insert-or-ignore: two processes embedding the same text race harmlessly, first one wins.

Vectors are stored as little-endian float32 bytes, exactly as given, with their length in `dim`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from honed.store.cache import CHUNK as CHUNK
from honed.store.cache import KeyedCache
from honed.store.schema import embedding_cache, utcnow

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


#: The byte layout of a stored vector, the same on every machine (numpy is imported where vectors are
#: read or written: every command opens the store, few touch embeddings).
DTYPE = "<f4"

EmbeddingRow = tuple[str, str, "npt.ArrayLike"]
"""(key, model identity, vector), as `put_many` takes them."""


class EmbeddingCache(KeyedCache):
    """The `embedding_cache` table: key -> vector, `model` the embedder identity."""

    table = embedding_cache

    def get_many(self, keys: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        """`{key: vector}` for those of `keys` that are cached; missing keys are simply absent.

        The vectors are read-only views of the stored bytes (copy one to change it)."""
        import numpy as np

        found: dict[str, npt.NDArray[np.float32]] = {}
        table = self.table
        for row in self._rows(keys, table.c.key, table.c.dim, table.c.vector):
            vector = np.frombuffer(row.vector, dtype=DTYPE)
            if vector.shape[0] == row.dim:  # a truncated row is a miss: it is embedded again
                found[row.key] = vector
        return found

    def put_many(self, rows: Sequence[EmbeddingRow]) -> None:
        """Cache many vectors in one transaction (all or none), ignoring keys already cached."""
        if not rows:
            return
        import numpy as np

        now = utcnow()
        params = []
        for key, model, vector in rows:
            data = np.ascontiguousarray(vector, dtype=DTYPE).reshape(-1)
            params.append(
                {
                    "key": key,
                    "model": model,
                    "dim": data.shape[0],
                    "vector": data.tobytes(),
                    "created_at": now,
                }
            )
        self._insert(params)
