"""Chroma as a vector store: embedded (a folder, the default) or a server (`chroma run`).

The collection is created for cosine distance with the HNSW settings asked for; `ef_search` can also be
changed on an existing collection (it is a search-time setting), while `ef_construction` and
`max_neighbors` are fixed when the index is built, so asking for other values than the collection has is
an error rather than a setting silently ignored. The vector dimension is recorded in the collection's
metadata, so an index built by another embedder is caught when it is opened, not on the first query.

Filters (`honed.rag.index.filters`) map onto Chroma's `where` almost one to one; the differences are Chroma's
rules that `$in`/`$nin` lists be non-empty and of one type, and its int-versus-float comparisons (see
`_number`), which are handled here.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from honed.errors import InvalidInputError, RetrievalError
from honed.rag.index.filters import check
from honed.rag.index.stores.base import NOTHING, ClientStore, Place, positive_int
from honed.rag.index.stores.registry import store_metadata
from honed.rag.types import Chunk, Vectors, Where

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.collection_configuration import CreateCollectionConfiguration
    from chromadb.api.models.Collection import Collection


_HNSW = ("ef_search", "ef_construction", "max_neighbors")
_DIMENSION_KEY = "honed_dimension"


def open_chroma(
    config: Mapping[str, Any], *, collection: str, dimension: int, root: Path | None
) -> ChromaStore:
    """The `chroma` factory: `url` for a server, else `path` (default `root/chroma`) for an embedded one."""
    where = ChromaStore.place(config, collection=collection, dimension=dimension, root=root)
    hnsw: dict[str, int] = {}
    for key in _HNSW:
        value = positive_int(config, key, store="chroma")
        if value is not None:
            hnsw[key] = value
    return ChromaStore(where, hnsw=hnsw)


class ChromaStore(ClientStore["ClientAPI"]):
    """One Chroma collection. Opening it connects (a server must be up) and creates the collection if
    needed; after `drop`, the next write creates it again."""

    kind = "chroma"
    example_url = "http://127.0.0.1:8000"

    def __init__(self, place: Place, *, hnsw: Mapping[str, int] | None = None) -> None:
        super().__init__(place)
        self.path = place.path
        self._hnsw = dict(hnsw or {})
        self._client = self._connect()
        self._collection: Collection | None = None
        self._open_now()

    # --- ClientStore -------------------------------------------------------------------------------

    def _upsert(self, chunks: list[Chunk], array: Vectors) -> None:
        collection = self._open()
        batch = self._batch_size()
        for start in range(0, len(chunks), batch):
            part = chunks[start : start + batch]
            metadatas = [{k: _number(v) for k, v in store_metadata(c.metadata).items()} or None for c in part]
            with self._errors():
                collection.upsert(
                    ids=[c.id for c in part],
                    embeddings=array[start : start + batch],
                    metadatas=metadatas,  # type: ignore[arg-type]  # None rows are allowed
                    documents=[c.text for c in part],
                )

    def _delete(self, ids: list[str]) -> None:
        collection = self._open()
        batch = self._batch_size()
        for start in range(0, len(ids), batch):
            with self._errors():
                collection.delete(ids=ids[start : start + batch])

    def _filter(self, where: Where | None) -> Any:
        return chroma_where(where)

    def _query_many(self, array: Vectors, k: int, translated: Any) -> list[list[tuple[str, float]]]:
        collection = self._open()
        out: list[list[tuple[str, float]]] = []
        batch = self._batch_size()
        for start in range(0, len(array), batch):
            with self._errors():
                result = collection.query(
                    query_embeddings=array[start : start + batch],
                    n_results=k,
                    where=translated,
                    include=["distances"],
                )
            distances = result["distances"] or []
            for ids, dists in zip(result["ids"], distances, strict=True):
                # Chroma's cosine distance is 1 - cosine similarity.
                out.append([(i, 1.0 - float(d)) for i, d in zip(ids, dists, strict=True)])
        return out

    def count(self) -> int:
        with self._errors():
            return self._open().count()

    def drop(self) -> None:
        from chromadb.errors import NotFoundError

        with self._errors(), contextlib.suppress(NotFoundError):
            self._api().delete_collection(self.name)
        self._collection = None

    def close(self) -> None:
        self._collection = None
        client, self._client = self._client, None
        if client is not None:
            close = getattr(client, "close", None)  # on the client classes, not on the ClientAPI protocol
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    # --- internals ---------------------------------------------------------------------------------

    def _connect(self) -> ClientAPI:
        with warnings.catch_warnings():
            # chromadb's import pulls in optional dependencies that warn about their own deprecations.
            warnings.simplefilter("ignore")
            import chromadb
            from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            with self._errors():
                # Chroma shares one system per folder within a process, keyed by this exact string.
                return chromadb.PersistentClient(path=str(self.path.resolve()), settings=settings)
        parts = urlsplit(self.url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise InvalidInputError(
                f"chroma url {self.url!r} is not http(s)://host:port", hint=f"e.g. {self.example_url}"
            )
        try:
            port = parts.port or (443 if parts.scheme == "https" else 8000)
        except ValueError:
            raise InvalidInputError(f"chroma url {self.url!r} has a bad port") from None
        try:
            return chromadb.HttpClient(
                host=parts.hostname, port=port, ssl=parts.scheme == "https", settings=settings
            )
        except Exception as exc:  # chromadb raises a bare ValueError when nothing answers
            raise self._unreachable(exc) from None

    def _open(self) -> Collection:
        if self._collection is not None:
            return self._collection
        with self._errors():
            collection = self._api().get_or_create_collection(
                self.name,
                configuration=cast(
                    "CreateCollectionConfiguration", {"hnsw": {"space": "cosine", **self._hnsw}}
                ),
                metadata={_DIMENSION_KEY: self.dimension},
                embedding_function=None,
            )
        self._check(collection)
        self._collection = collection
        return collection

    def _check(self, collection: Collection) -> None:
        """Refuse a collection made for another dimension or distance; apply a new `ef_search`."""
        have = (collection.metadata or {}).get(_DIMENSION_KEY)
        if have is not None and have != self.dimension:
            raise self._wrong_dimension(have)
        with warnings.catch_warnings():
            # Reading the configuration of a collection made without an embedding function warns.
            warnings.simplefilter("ignore", DeprecationWarning)
            config = dict(collection.configuration.get("hnsw") or {})
        if config.get("space", "cosine") != "cosine":
            raise self._wrong_distance(repr(config["space"]))
        for key in ("ef_construction", "max_neighbors"):
            want = self._hnsw.get(key)
            if want is not None and config.get(key) not in (None, want):
                raise RetrievalError(
                    f"chroma collection {self.name!r} was built with {key}={config[key]}, not {want}",
                    hint=f"{key} is fixed when the index is built: drop and rebuild it to change it",
                )
        ef_search = self._hnsw.get("ef_search")
        if ef_search is not None and config.get("ef_search") != ef_search:
            with self._errors():
                collection.modify(configuration={"hnsw": {"ef_search": ef_search}})

    def _batch_size(self) -> int:
        with self._errors():
            return max(1, int(self._api().get_max_batch_size()))

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Chroma's and the network's errors as `RetrievalError`s naming the store."""
        import httpx
        from chromadb.errors import ChromaError

        try:
            yield
        except (httpx.TransportError, ConnectionError) as exc:
            raise self._unreachable(exc) from None
        except (ChromaError, ValueError) as exc:
            message = " ".join(str(exc).split())
            if "dimension" in message:
                raise RetrievalError(
                    f"chroma {self._where}: {message}",
                    hint="the embedder changed: rebuild the index with the new embedder",
                ) from None
            if self.url is not None and "connect" in message.lower():
                raise self._unreachable(exc) from None
            raise RetrievalError(f"chroma {self._where}: {message}") from None

    def _unreachable(self, exc: BaseException) -> RetrievalError:
        return RetrievalError(
            f"cannot reach the chroma server at {self.url} ({type(exc).__name__})",
            hint="start it with `chroma run --path DIR --port N`, or use an embedded store (set 'path')",
        )


def chroma_where(where: Where | None) -> dict[str, Any] | object | None:
    """A `honed.rag.index.filters` filter as Chroma's `where`: None for no filter, `NOTHING` for one no chunk
    satisfies. Several conditions are wrapped in `$and`; `$in`/`$nin` lists of mixed types are split per
    type (Chroma wants one type per list), and empty ones are resolved here (Chroma rejects them)."""
    clauses: list[dict[str, Any]] = []
    for key, ops in check(where).items():
        for op, value in ops.items():
            if op not in ("$in", "$nin"):
                clauses.append({key: {op: _number(value)}})
                continue
            if not value:
                if op == "$in":
                    return NOTHING
                continue
            by_type: dict[type, list[Any]] = {}
            for item in map(_number, value):
                by_type.setdefault(type(item), []).append(item)
            parts = [{key: {op: items}} for items in by_type.values()]
            if len(parts) == 1:
                clauses.append(parts[0])
            else:
                clauses.append({"$or" if op == "$in" else "$and": parts})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _number(value: Any) -> Any:
    """Integers as floats, in stored metadata and in filters alike. Chroma compares an int field with a
    float bound by truncating the bound (`2 < 2.5` is false, `$in: [2.5]` matches 2), but compares floats
    exactly as f64; with every number a float, filters mean what `filters.matches` says. (Integers past
    2**53 lose precision; honed never reads metadata back from the store.)"""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
