"""The `logs`, `feedback` and `log_scores` tables: logged generations and what was said about them.

`insert_many` is the batch writer's one statement per batch (executemany), which is what makes ingestion
fast. Feedback and scores refer to a log by id; `add_feedback` checks every id first and writes all of a
batch or none of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, Table, and_, exists, func, or_, select

from honed.errors import NotFoundError
from honed.store.prefixes import resolve_prefix
from honed.store.schema import feedback, log_scores, logs, mask_errors, upsert

if TYPE_CHECKING:
    from honed.store.database import Store

_CHUNK = 500
#: Where a page of logs ends: the last log's (created_at, id); the next page starts after it.
LogCursor = tuple[datetime, str]


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which logs to select. Every field narrows; None means "any".

    `feedback` is a kind that must be present (e.g. "correction"); `thumbs` requires a thumbs value
    (1 up, 0 down); `approved` keeps what a person vouched for: the latest thumbs is up, or someone gave
    a correction (the output it should have been); `min_scores` maps evaluator -> minimum score.
    """

    prompt: str | None = None
    prompt_version: str | None = None
    model: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    trace_id: str | None = None
    session_id: str | None = None
    has_error: bool | None = None
    feedback: str | None = None
    thumbs: int | None = None
    approved: bool = False
    min_rating: float | None = None
    min_scores: dict[str, float] = field(default_factory=dict)
    limit: int | None = None
    newest_first: bool = True


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A log row with its feedback and scores (as plain dicts, newest feedback last)."""

    log: dict[str, Any]
    feedback: list[dict[str, Any]]
    scores: list[dict[str, Any]]


class LogRepository:
    """Safe to share between threads (each call is its own transaction)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- writing ----------------------------------------------------------------------------------------

    def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert log rows (`LogRecord.row()` dicts) in one transaction; a duplicate id fails the batch."""
        if not rows:
            return
        with self._store.write() as conn:
            for i in range(0, len(rows), 5000):
                conn.execute(logs.insert(), mask_errors(rows[i : i + 5000]))

    def add_feedback(self, rows: Sequence[dict[str, Any]]) -> None:
        """Attach feedback rows (`FeedbackRecord.row()`); NotFoundError names the first unknown log id."""
        if not rows:
            return
        with self._store.write() as conn:
            wanted = sorted({r["log_id"] for r in rows})
            found = _existing(conn, logs, wanted)
            missing = [w for w in wanted if w not in found]
            if missing:
                raise NotFoundError(
                    f"no logged generation with id {missing[0]!r}"
                    + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                    hint="feedback refers to the id a log was written with; see `honed logs list`",
                )
            conn.execute(feedback.insert(), list(rows))

    def put_scores(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert `log_scores` rows (one per log and evaluator; a re-score replaces the old one)."""
        if not rows:
            return
        with self._store.write() as conn:
            conn.execute(upsert(log_scores, ("log_id", "evaluator"), self._store.dialect), mask_errors(rows))

    # -- reading ----------------------------------------------------------------------------------------

    def resolve_id(self, ref: str) -> str:
        """The id of the log `ref` names: its id or a unique prefix of it (`log-27cb8bdf`)."""
        with self._store.read() as conn:
            return self._resolve(conn, ref)

    def get(self, ref: str) -> LogEntry:
        """A log with its feedback and scores, by id or unique id prefix."""
        with self._store.read() as conn:
            log_id = self._resolve(conn, ref)
            row = conn.execute(select(logs).where(logs.c.id == log_id)).mappings().one()
            fb = conn.execute(
                select(feedback).where(feedback.c.log_id == log_id).order_by(feedback.c.created_at)
            ).mappings()
            sc = conn.execute(
                select(log_scores).where(log_scores.c.log_id == log_id).order_by(log_scores.c.evaluator)
            ).mappings()
            return LogEntry(dict(row), [dict(f) for f in fb], [dict(s) for s in sc])

    def existing_log_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of `ids` that a stored log already has (to refuse a batch before writing any of it)."""
        with self._store.read() as conn:
            return _existing(conn, logs, ids)

    def existing_feedback_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of `ids` that stored feedback already has."""
        with self._store.read() as conn:
            return _existing(conn, feedback, ids)

    @staticmethod
    def _resolve(conn: Connection, ref: str) -> str:
        log_id = resolve_prefix(conn, logs.c.id, ref, plural="logs")
        if log_id is None:
            raise NotFoundError(f"no log {ref!r}", hint="see `honed logs list` for ids")
        return log_id

    def query(self, where: LogFilter | None = None) -> list[dict[str, Any]]:
        """Log rows matching `where` (newest first unless asked otherwise)."""
        stmt = self._select(where or LogFilter())
        with self._store.read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def page(
        self, where: LogFilter | None = None, *, limit: int, after: LogCursor | None = None
    ) -> tuple[list[dict[str, Any]], LogCursor | None]:
        """Up to `limit` log rows matching `where`, in its order (newest first unless asked otherwise),
        after the cursor a previous page returned; with the cursor of the next page, None when no log is
        left. The filter's own `limit` is ignored.

        Keyset pagination on (created_at, id), the order `query` uses: a page costs the same however deep
        it is, and logs written meanwhile (newer than the first page) neither shift nor repeat a row.
        """
        if limit < 1:
            raise ValueError(f"a page holds at least one row, not {limit}")
        f = replace(where or LogFilter(), limit=limit + 1)
        stmt = self._select(f)
        if after is not None:
            at, log_id = after
            beyond = logs.c.created_at < at if f.newest_first else logs.c.created_at > at
            stmt = stmt.where(or_(beyond, and_(logs.c.created_at == at, logs.c.id > log_id)))
        with self._store.read() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        if len(rows) <= limit:
            return rows, None
        last = rows[limit - 1]
        return rows[:limit], (last["created_at"], last["id"])

    def count(self, where: LogFilter | None = None) -> int:
        stmt = self._select(where or LogFilter(), count=True)
        with self._store.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def feedback_for(self, log_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        ids = sorted(set(log_ids))
        out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        with self._store.read() as conn:
            for i in range(0, len(ids), _CHUNK):
                stmt = (
                    select(feedback)
                    .where(feedback.c.log_id.in_(ids[i : i + _CHUNK]))
                    .order_by(feedback.c.created_at)
                )
                for row in conn.execute(stmt).mappings():
                    out[row["log_id"]].append(dict(row))
        return out

    def scores_for(self, log_ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """log id -> evaluator -> score row."""
        ids = sorted(set(log_ids))
        out: dict[str, dict[str, dict[str, Any]]] = {i: {} for i in ids}
        with self._store.read() as conn:
            for i in range(0, len(ids), _CHUNK):
                stmt = select(log_scores).where(log_scores.c.log_id.in_(ids[i : i + _CHUNK]))
                for row in conn.execute(stmt).mappings():
                    out[row["log_id"]][row["evaluator"]] = dict(row)
        return out

    def _select(self, f: LogFilter, *, count: bool = False) -> Select[Any]:
        conds: list[Any] = []
        for column, value in (
            (logs.c.prompt, f.prompt),
            (logs.c.prompt_version, f.prompt_version),
            (logs.c.model, f.model),
            (logs.c.source, f.source),
            (logs.c.trace_id, f.trace_id),
            (logs.c.session_id, f.session_id),
        ):
            if value is not None:
                conds.append(column == value)
        if f.since is not None:
            conds.append(logs.c.created_at >= f.since)
        if f.until is not None:
            conds.append(logs.c.created_at < f.until)
        if f.has_error is not None:
            conds.append(logs.c.error.is_not(None) if f.has_error else logs.c.error.is_(None))
        if f.feedback is not None:
            conds.append(exists().where(and_(feedback.c.log_id == logs.c.id, feedback.c.kind == f.feedback)))
        # The latest thumbs wins: a user who changed their mind counts once, as they ended.
        latest = (
            select(feedback.c.value)
            .where(and_(feedback.c.log_id == logs.c.id, feedback.c.kind == "thumbs"))
            .order_by(feedback.c.created_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        if f.thumbs is not None:
            conds.append(latest == float(f.thumbs))
        if f.approved:
            corrected = exists().where(and_(feedback.c.log_id == logs.c.id, feedback.c.kind == "correction"))
            conds.append(or_(latest == 1.0, corrected))
        if f.min_rating is not None:
            conds.append(
                exists().where(
                    and_(
                        feedback.c.log_id == logs.c.id,
                        feedback.c.kind == "rating",
                        feedback.c.value >= f.min_rating,
                    )
                )
            )
        for evaluator, minimum in f.min_scores.items():
            conds.append(
                exists().where(
                    and_(
                        log_scores.c.log_id == logs.c.id,
                        log_scores.c.evaluator == evaluator,
                        log_scores.c.value >= minimum,
                    )
                )
            )
        if count:
            return select(func.count()).select_from(logs).where(*conds)
        order = logs.c.created_at.desc() if f.newest_first else logs.c.created_at.asc()
        stmt = select(logs).where(*conds).order_by(order, logs.c.id)
        if f.limit is not None:
            stmt = stmt.limit(f.limit)
        return stmt


def _existing(conn: Connection, table: Table, ids: Iterable[str]) -> set[str]:
    """Those of `ids` present in `table`, asked in chunks so that no statement outgrows the backends'
    limits on bound parameters."""
    wanted = sorted(set(ids))
    found: set[str] = set()
    for i in range(0, len(wanted), _CHUNK):
        found.update(conn.execute(select(table.c.id).where(table.c.id.in_(wanted[i : i + _CHUNK]))).scalars())
    return found
