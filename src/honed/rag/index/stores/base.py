"""What the built-in stores (Chroma, Qdrant) do alike around their client libraries.

Both live either in a folder or behind a server url, open one collection through a client object, and
answer the `VectorStore` calls by checking the vectors, dropping what needs no request (no rows, `k <= 0`,
a filter nothing satisfies) and then asking their client in batches. That shared part is here, once, so
the two read their settings, refuse a foreign collection and word their errors alike; a store module keeps
only what its client library makes different.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Generic, TypeVar

from honed.errors import InvalidInputError, RetrievalError
from honed.rag.index.stores.registry import check_vectors, collection_name, last_wins
from honed.rag.types import Chunk, Vectors, VectorStore, Where

#: A translated filter no chunk can satisfy (`$in: []`): stores reject or mishandle it, so never ask.
NOTHING: Final = object()

ClientT = TypeVar("ClientT")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a store's collection lives: in a folder (`path`) or on a server (`url`), never both."""

    collection: str
    dimension: int
    url: str | None
    path: Path | None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.url is None):
            raise InvalidInputError("a vector store needs exactly one of 'path' and 'url'")


def positive_int(config: Mapping[str, Any], key: str, *, store: str) -> int | None:
    """The setting `key`, which must be a positive integer when given."""
    value = config.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise InvalidInputError(f"{store} setting {key!r} must be a positive integer, not {value!r}")
    return value


class ClientStore(VectorStore, Generic[ClientT]):
    """One collection, at a `Place`, reached through a client of type `ClientT`. A subclass connects in
    its `__init__` (after this one's), then calls `_open_now`; it implements the `_`-prefixed batch
    calls, which get checked, non-empty input."""

    kind: ClassVar[str]  # the store type's name, as in settings and error messages
    example_url: ClassVar[str]  # a server url for hints: the server's default port

    @classmethod
    def place(cls, config: Mapping[str, Any], *, collection: str, dimension: int, root: Path | None) -> Place:
        """The place `config` gives: `url` for a server, else `path` (default `root/<kind>`)."""
        url, path = config.get("url"), config.get("path")
        if url is not None and path is not None:
            raise InvalidInputError(
                f"{cls.kind} settings 'url' and 'path' exclude each other", hint="keep one"
            )
        if path is not None and not isinstance(path, str | Path):
            raise InvalidInputError(f"{cls.kind} path must be a folder name, not {path!r}")
        if url is not None and not isinstance(url, str):
            raise InvalidInputError(
                f"{cls.kind} url must be a string, not {url!r}", hint=f"e.g. {cls.example_url}"
            )
        if url is None and path is None:
            if root is None:
                raise InvalidInputError(f"{cls.kind} needs a 'path' (there is no workspace to keep it in)")
            path = root / cls.kind
        return Place(collection, dimension, url, None if path is None else Path(path))

    def __init__(self, place: Place) -> None:
        self.name = collection_name(place.collection)
        self.dimension = place.dimension
        self.url = place.url
        self._where = place.url or str(place.path)
        self._client: ClientT | None = None

    # --- VectorStore -------------------------------------------------------------------------------

    def upsert(self, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        array = check_vectors(vectors, len(chunks), self.dimension, store=self.kind)
        if chunks:
            self._upsert(*last_wins(chunks, array))

    def delete(self, chunk_ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(chunk_ids))
        if ids:
            self._delete(ids)

    def query(self, vector: Vectors, k: int, where: Where | None = None) -> list[tuple[str, float]]:
        return self.query_many(check_vectors(vector, 1, self.dimension, store=self.kind), k, where)[0]

    def query_many(
        self, vectors: Vectors, k: int, where: Where | None = None
    ) -> list[list[tuple[str, float]]]:
        array = check_vectors(vectors, None, self.dimension, store=self.kind)
        translated = self._filter(where)
        if k <= 0 or translated is NOTHING or len(array) == 0:
            return [[] for _ in range(len(array))]
        return self._query_many(array, k, translated)

    # --- what a store implements -------------------------------------------------------------------

    @abstractmethod
    def _upsert(self, chunks: list[Chunk], array: Vectors) -> None:
        """Write these chunks (ids unique, at least one)."""

    @abstractmethod
    def _delete(self, ids: list[str]) -> None:
        """Remove these chunk ids (unique, at least one)."""

    @abstractmethod
    def _filter(self, where: Where | None) -> Any:
        """`where` in the client's terms: None for no filter, `NOTHING` for one no chunk satisfies."""

    @abstractmethod
    def _query_many(self, array: Vectors, k: int, translated: Any) -> list[list[tuple[str, float]]]:
        """The `k` nearest of each row (at least one row, `k` > 0) under the translated filter."""

    @abstractmethod
    def _open(self) -> Any:
        """Make sure the collection exists and suits this store (see `_wrong_dimension`)."""

    # --- shared internals --------------------------------------------------------------------------

    def _open_now(self) -> None:
        """Open the collection at once, so that a foreign one is an error here and not on first use; a
        failure releases the client the subclass connected."""
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _api(self) -> ClientT:
        if self._client is None:
            raise RetrievalError(f"{self.kind} store {self._where} is closed", hint="open it again")
        return self._client

    def _wrong_dimension(self, have: object) -> RetrievalError:
        return RetrievalError(
            f"{self.kind} collection {self.name!r} holds {have}-dimensional vectors, "
            f"the embedder makes {self.dimension}",
            hint="the embedder changed: rebuild the index (or use the embedder it was built with)",
        )

    def _wrong_distance(self, distance: str) -> RetrievalError:
        return RetrievalError(
            f"{self.kind} collection {self.name!r} uses {distance} distance, not cosine",
            hint="it was not made by honed: use another collection name or drop it",
        )
