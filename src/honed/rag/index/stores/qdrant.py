"""Qdrant as a vector store: local mode (a folder, or `url = ":memory:"`) or a server (`url`).

Local mode is qdrant-client's pure-Python engine: exact (brute-force) search, fine for a few thousand
chunks and slow past ~20k; use a server for more. It also locks its folder against a second client, so
stores in one process that share a folder share one client here.

Qdrant point ids must be UUIDs or integers: a chunk id maps to a uuid5 of itself, and the chunk id and
text are kept in the payload next to the metadata (under reserved `_honed_*` keys). Filters become a
Qdrant `Filter` of must / must_not conditions; numbers are compared with ranges, so an int filter
matches a float field of the same value, as it does in Chroma and in `filters.matches`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honed.errors import InvalidInputError, RetrievalError
from honed.rag.index.filters import check
from honed.rag.index.stores.base import NOTHING, ClientStore, Place, positive_int
from honed.rag.index.stores.registry import store_metadata
from honed.rag.types import Chunk, Vectors, Where

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from qdrant_client import models as qm


MEMORY = ":memory:"
ID_KEY = "_honed_id"
TEXT_KEY = "_honed_text"
_NAMESPACE = uuid.UUID("7b0c6f0e-4d2a-5c43-9a51-3f1c2b8e6d10")  # fixed forever: point ids depend on it
_BATCH = 256


def open_qdrant(
    config: Mapping[str, Any], *, collection: str, dimension: int, root: Path | None
) -> QdrantStore:
    """The `qdrant` factory: `url` for a server (or ":memory:"), else `path` (default `root/qdrant`)."""
    where = QdrantStore.place(config, collection=collection, dimension=dimension, root=root)
    api_key: str | None = None
    env = config.get("api_key_env")
    if env is not None:
        if not isinstance(env, str) or where.url in (None, MEMORY):
            raise InvalidInputError("qdrant 'api_key_env' names an environment variable, for a server url")
        api_key = os.environ.get(env)
        if not api_key:
            raise InvalidInputError(f"qdrant api_key_env: environment variable {env} is not set")
    hnsw_ef = positive_int(config, "hnsw_ef", store="qdrant")
    exact = config.get("exact", False)
    if not isinstance(exact, bool):
        raise InvalidInputError(f"qdrant setting 'exact' must be true or false, not {exact!r}")
    return QdrantStore(where, api_key=api_key, hnsw_ef=hnsw_ef, exact=exact)


def point_id(chunk_id: str) -> str:
    """The Qdrant point id of a chunk: stable, and the same in every collection and process."""
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


class QdrantStore(ClientStore["QdrantClient"]):
    """One Qdrant collection, created (cosine) on open if missing; after `drop`, the next write
    creates it again."""

    kind = "qdrant"
    example_url = "http://127.0.0.1:6333"

    def __init__(
        self, place: Place, *, api_key: str | None = None, hnsw_ef: int | None = None, exact: bool = False
    ) -> None:
        super().__init__(place)
        self.path = None if place.path is None else place.path.resolve()
        self._server = place.url is not None and place.url != MEMORY
        self._search = (hnsw_ef, exact)
        self._client = self._connect(api_key)
        self._ready = False
        self._open_now()

    # --- ClientStore -------------------------------------------------------------------------------

    def _upsert(self, chunks: list[Chunk], array: Vectors) -> None:
        from qdrant_client import models

        client = self._open()
        for start in range(0, len(chunks), _BATCH):
            points = [
                models.PointStruct(
                    id=point_id(chunk.id),
                    vector=row.tolist(),
                    payload={
                        **store_metadata(chunk.metadata, reserved=(ID_KEY, TEXT_KEY)),
                        ID_KEY: chunk.id,
                        TEXT_KEY: chunk.text,
                    },
                )
                for chunk, row in zip(
                    chunks[start : start + _BATCH], array[start : start + _BATCH], strict=True
                )
            ]
            with self._errors():
                client.upsert(self.name, points=points, wait=True)

    def _delete(self, chunk_ids: list[str]) -> None:
        from qdrant_client import models

        ids = [point_id(i) for i in chunk_ids]
        client = self._open()
        for start in range(0, len(ids), _BATCH):
            selector = models.PointIdsList(points=list(ids[start : start + _BATCH]))
            with self._errors():
                client.delete(self.name, points_selector=selector, wait=True)

    def _filter(self, where: Where | None) -> Any:
        return qdrant_filter(where)

    def _query_many(self, array: Vectors, k: int, query_filter: Any) -> list[list[tuple[str, float]]]:
        from qdrant_client import models

        assert query_filter is None or isinstance(query_filter, models.Filter)
        client = self._open()
        hnsw_ef, exact = self._search
        # Local mode is always exact and warns when given search parameters.
        params = models.SearchParams(hnsw_ef=hnsw_ef, exact=exact) if self._server else None
        out: list[list[tuple[str, float]]] = []
        for start in range(0, len(array), _BATCH):
            requests = [
                models.QueryRequest(
                    query=row.tolist(), limit=k, filter=query_filter, params=params, with_payload=[ID_KEY]
                )
                for row in array[start : start + _BATCH]
            ]
            with self._errors():
                responses = client.query_batch_points(self.name, requests=requests)
            for response in responses:
                # Qdrant's score for cosine distance is the cosine similarity itself.
                out.append([(str((p.payload or {})[ID_KEY]), float(p.score)) for p in response.points])
        return out

    def count(self) -> int:
        client = self._open()
        with self._errors():
            return int(client.count(self.name, exact=True).count)

    def drop(self) -> None:
        client = self._api()
        with self._errors():
            if client.collection_exists(self.name):
                client.delete_collection(self.name)
        self._ready = False

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if self._server or self.url == MEMORY:
            with contextlib.suppress(Exception):
                client.close()
        else:
            assert self.path is not None
            _release_local(self.path)

    # --- internals ---------------------------------------------------------------------------------

    def _connect(self, api_key: str | None) -> QdrantClient:
        from qdrant_client import QdrantClient

        if self.url == MEMORY:
            return QdrantClient(location=MEMORY)
        if self.path is not None:
            return _local_client(self.path)
        # No compatibility check: it costs a request and, when the server is down, a warning instead of
        # the clear error the first real request gives.
        return QdrantClient(url=self.url, api_key=api_key, check_compatibility=False, timeout=30)

    def _open(self) -> QdrantClient:
        from qdrant_client import models

        client = self._api()
        if self._ready:
            return client
        with self._errors():
            if not client.collection_exists(self.name):
                client.create_collection(
                    self.name,
                    vectors_config=models.VectorParams(size=self.dimension, distance=models.Distance.COSINE),
                )
            params = client.get_collection(self.name).config.params.vectors
        if not isinstance(params, models.VectorParams):
            raise RetrievalError(
                f"qdrant collection {self.name!r} has named vectors; honed uses one unnamed vector",
                hint="it was not made by honed: use another collection name or drop it",
            )
        if params.size != self.dimension:
            raise self._wrong_dimension(params.size)
        if params.distance != models.Distance.COSINE:
            raise self._wrong_distance(params.distance.value)
        if self.path is not None:
            _fast_local_writes(client, self.name)
        self._ready = True
        return client

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """qdrant-client's and the network's errors as `RetrievalError`s naming the store."""
        import httpx
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        try:
            yield
        except (ResponseHandlingException, httpx.TransportError, ConnectionError) as exc:
            raise RetrievalError(
                f"cannot reach the qdrant server at {self.url} ({_cause(exc)})",
                hint="start it (`docker run -p 6333:6333 qdrant/qdrant`), or use local mode (set 'path')",
            ) from None
        except UnexpectedResponse as exc:
            hint = "check 'api_key_env'" if exc.status_code in (401, 403) else None
            raise RetrievalError(
                f"qdrant {self._where}: HTTP {exc.status_code} {' '.join(str(exc.content)[:200].split())}",
                hint=hint,
            ) from None
        except ValueError as exc:  # local mode reports bad input (e.g. a dimension) as ValueError
            raise RetrievalError(f"qdrant {self._where}: {' '.join(str(exc).split())}") from None


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    return type(inner).__name__ if inner is not None else type(exc).__name__


def qdrant_filter(where: Where | None) -> qm.Filter | object | None:
    """A `honed.rag.index.filters` filter as a Qdrant `Filter`: None for no filter, `NOTHING` for one no
    chunk satisfies. `$ne`/`$nin` become must_not conditions, so a chunk without the field passes them, as in
    `filters.matches` (Qdrant's MatchExcept would drop such chunks)."""
    from qdrant_client import models

    must: list[Any] = []
    must_not: list[Any] = []
    for key, ops in check(where).items():
        for op, value in ops.items():
            if op == "$eq":
                must.append(_equals(key, value))
            elif op == "$ne":
                must_not.append(_equals(key, value))
            elif op in ("$in", "$nin"):
                if not value:
                    if op == "$in":
                        return NOTHING
                    continue
                condition = _any_of(key, value)
                (must if op == "$in" else must_not).append(condition)
            else:
                bound = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}[op]
                must.append(models.FieldCondition(key=key, range=models.Range(**{bound: value})))
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)


def _equals(key: str, value: Any) -> Any:
    from qdrant_client import models

    if isinstance(value, bool | str):
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))
    # Numbers as a one-point range: MatchValue takes no floats, and would not match 1 against 1.0.
    return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))


def _any_of(key: str, values: list[Any]) -> Any:
    from qdrant_client import models

    if all(isinstance(v, str) for v in values):
        return models.FieldCondition(key=key, match=models.MatchAny(any=list(values)))
    return models.Filter(should=[_equals(key, v) for v in values])


def _fast_local_writes(client: QdrantClient, name: str) -> None:
    """Local mode keeps each collection in SQLite and commits every point on its own; with the default
    journal each commit waits for the disk (500 points: 5.5 s here). Write-ahead logging with
    synchronous=NORMAL makes that 0.07 s and still survives a crash of the process (a power cut may lose
    the last writes, and honed can rebuild an index from its own database). This reaches into
    qdrant-client's internals, so any surprise leaves the defaults in place."""
    with contextlib.suppress(Exception):
        connection = client._client.collections[name].storage.storage  # type: ignore[attr-defined]
        if isinstance(connection, sqlite3.Connection):
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")


# --- local clients shared per folder -----------------------------------------------------------------

_local_lock = threading.Lock()
_local: dict[Path, tuple[QdrantClient, int]] = {}


def _local_client(path: Path) -> QdrantClient:
    from qdrant_client import QdrantClient

    with _local_lock:
        if path in _local:
            client, users = _local[path]
            _local[path] = (client, users + 1)
            return client
        path.mkdir(parents=True, exist_ok=True)
        try:
            client = QdrantClient(path=str(path))
        except RuntimeError as exc:  # the folder is locked by another process
            raise RetrievalError(
                f"qdrant folder {path} is in use: {' '.join(str(exc).split())}",
                hint="close the other program using it, or run a qdrant server and set 'url'",
            ) from None
        _local[path] = (client, 1)
        return client


def _release_local(path: Path) -> None:
    with _local_lock:
        client, users = _local[path]
        if users > 1:
            _local[path] = (client, users - 1)
            return
        del _local[path]
    with warnings.catch_warnings(), contextlib.suppress(Exception):
        warnings.simplefilter("ignore")
        client.close()
