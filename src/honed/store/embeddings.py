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

from sqlalchemy import delete, func, select

from honed.store.schema import embedding_cache, insert_ignore, utcnow

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from honed.store.database import Store

#: Keys per IN-list: far below SQLite's bound-parameter limit, and large enough that round trips are few.
CHUNK = 500

#: The byte layout of a stored vector, the same on every machine (numpy is imported where vectors are
#: read or written: every command opens the store, few touch embeddings).
DTYPE = "<f4"

EmbeddingRow = tuple[str, str, "npt.ArrayLike"]
"""(key, model identity, vector), as `put_many` takes them."""


class EmbeddingCache:
    """The `embedding_cache` table. Safe to share between threads (it holds no connection)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get_many(self, keys: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        """`{key: vector}` for those of `keys` that are cached; missing keys are simply absent.

        The vectors are read-only views of the stored bytes (copy one to change it)."""
        import numpy as np

        unique = list(dict.fromkeys(keys))
        found: dict[str, npt.NDArray[np.float32]] = {}
        table = embedding_cache
        with self._store.read() as conn:
            for start in range(0, len(unique), CHUNK):
                chunk = unique[start : start + CHUNK]
                stmt = select(table.c.key, table.c.dim, table.c.vector).where(table.c.key.in_(chunk))
                for key, dim, blob in conn.execute(stmt):
                    vector = np.frombuffer(blob, dtype=DTYPE)
                    if vector.shape[0] == dim:  # a truncated row is a miss: it is embedded again
                        found[key] = vector
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
        with self._store.write() as conn:
            conn.execute(insert_ignore(embedding_cache, conn.dialect.name), params)

    def clear(self, model: str | None = None) -> int:
        """Delete the vectors of embedder identity `model` (all if None); returns how many were deleted."""
        stmt = delete(embedding_cache)
        if model is not None:
            stmt = stmt.where(embedding_cache.c.model == model)
        with self._store.write() as conn:
            return conn.execute(stmt).rowcount

    def count(self, model: str | None = None) -> int:
        """How many vectors are cached (of embedder identity `model`, if given)."""
        stmt = select(func.count()).select_from(embedding_cache)
        if model is not None:
            stmt = stmt.where(embedding_cache.c.model == model)
        with self._store.read() as conn:
            return int(conn.execute(stmt).scalar_one())
