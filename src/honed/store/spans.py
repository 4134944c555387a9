"""The `spans` table: every span of the traces instrumented applications send (see `honed.logs.otlp`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from honed.store.schema import insert_new, logs, mask_errors, spans

if TYPE_CHECKING:
    from honed.store.database import Store


class SpanRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add_trace_parts(
        self, log_rows: Sequence[dict[str, Any]], span_rows: Sequence[dict[str, Any]]
    ) -> None:
        """Store generation logs and spans in one transaction. A span (by trace and span id) or a log (by
        id) already stored is left as it is, so an exporter's retry of a batch stores nothing twice."""
        dialect = self._store.dialect
        with self._store.write() as conn:
            if log_rows:
                conn.execute(insert_new(logs, ("id",), dialect), mask_errors(list(log_rows)))
            if span_rows:
                conn.execute(insert_new(spans, ("trace_id", "span_id"), dialect), list(span_rows))

    def for_trace(self, trace_id: str, limit: int) -> list[dict[str, Any]]:
        """The spans of `trace_id`, oldest first, at most `limit`."""
        stmt = (
            select(spans)
            .where(spans.c.trace_id == trace_id)
            .order_by(spans.c.started_at, spans.c.span_id)
            .limit(limit)
        )
        with self._store.read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]
