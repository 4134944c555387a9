"""The model response cache: request hash -> response, shared by every process on the database.

This is a hot path (an experiment looks up every case before calling a model), so it uses Core
statements in batches: one IN-list per chunk for reads, one executemany for writes. Writes are
insert-or-ignore: two runners caching the same request race harmlessly, first one wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import delete, func, select

from honed.store.schema import insert_ignore, response_cache, utcnow

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Row, Table

    from honed.store.database import Store

#: Keys per IN-list: far below SQLite's bound-parameter limit, and large enough that round trips are few.
CHUNK = 500

CacheRow = tuple[str, str, dict[str, Any], dict[str, Any]]
"""(key, model, request, response), as `put_many` takes them."""


class KeyedCache:
    """What the response and embedding caches share: a table keyed by a content hash (`key`) whose rows
    each belong to a `model`, read in IN-lists of `CHUNK` keys and written insert-or-ignore. Safe to share
    between threads (it holds no connection)."""

    table: ClassVar[Table]

    def __init__(self, store: Store) -> None:
        self._store = store

    def _rows(self, keys: Sequence[str], *columns: ColumnElement[Any]) -> list[Row[Any]]:
        """`columns` of the rows of the distinct `keys` that are cached, one IN-list per `CHUNK` keys."""
        unique = list(dict.fromkeys(keys))
        rows: list[Row[Any]] = []
        with self._store.read() as conn:
            for start in range(0, len(unique), CHUNK):
                chunk = unique[start : start + CHUNK]
                rows.extend(conn.execute(select(*columns).where(self.table.c.key.in_(chunk))))
        return rows

    def _insert(self, params: list[dict[str, Any]]) -> None:
        """Write `params` in one transaction (all or none), ignoring keys already cached."""
        with self._store.write() as conn:
            conn.execute(insert_ignore(self.table, conn.dialect.name), params)

    def clear(self, model: str | None = None) -> int:
        """Delete the rows of `model` (all models if None); returns how many were deleted."""
        stmt = delete(self.table)
        if model is not None:
            stmt = stmt.where(self.table.c.model == model)
        with self._store.write() as conn:
            return conn.execute(stmt).rowcount

    def count(self, model: str | None = None) -> int:
        """How many rows are cached (of `model`, if given)."""
        stmt = select(func.count()).select_from(self.table)
        if model is not None:
            stmt = stmt.where(self.table.c.model == model)
        with self._store.read() as conn:
            return int(conn.execute(stmt).scalar_one())


class ResponseCache(KeyedCache):
    """The `response_cache` table: request hash -> response, `model` the model that answered."""

    table = response_cache

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached response for the request hash `key`, or None."""
        stmt = select(response_cache.c.response).where(response_cache.c.key == key)
        with self._store.read() as conn:
            response = conn.execute(stmt).scalar_one_or_none()
        return response if isinstance(response, dict) else None

    def request(self, key: str) -> dict[str, Any] | None:
        """The request that was cached under `key` (what was sent: messages, params, tools), or None."""
        stmt = select(response_cache.c.request).where(response_cache.c.key == key)
        with self._store.read() as conn:
            request = conn.execute(stmt).scalar_one_or_none()
        return request if isinstance(request, dict) else None

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """`{key: response}` for those of `keys` that are cached; missing keys are simply absent."""
        return {row.key: row.response for row in self._rows(keys, self.table.c.key, self.table.c.response)}

    def put(self, key: str, model: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        """Cache `response` for `request`; if `key` is cached already, the first response is kept."""
        self.put_many([(key, model, request, response)])

    def put_many(self, rows: Sequence[CacheRow]) -> None:
        """Cache many responses in one transaction (all or none), ignoring keys already cached."""
        if not rows:
            return
        now = utcnow()
        params = [
            {"key": key, "model": model, "request": request, "response": response, "created_at": now}
            for key, model, request, response in rows
        ]
        self._insert(params)
