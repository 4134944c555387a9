"""Experiment runs, their results and scores.

A run's results are keyed by (run, variant, case, sample), so resuming a run is "skip the keys already
stored without an error". Writes are upserts: a retried call or a re-scored result replaces its row, and
two writers of the same key race harmlessly.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, func, select, update

from honed.errors import NotFoundError
from honed.store.schema import mask_errors, results, runs, scores, upsert, utcnow

if TYPE_CHECKING:
    from honed.store.database import Store

RESULT_KEY = ("run_id", "variant", "case_id", "sample_index")
SCORE_KEY = (*RESULT_KEY, "evaluator")
STATUSES = frozenset({"running", "completed", "stopped", "failed", "budget_exceeded"})
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    name: str | None
    spec: dict[str, Any]
    spec_hash: str
    status: str
    budget_usd: float | None
    created_at: datetime
    updated_at: datetime


class RunRepository:
    """The `runs`, `results` and `scores` tables. Safe to share between threads."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(
        self,
        spec: dict[str, Any],
        spec_hash: str,
        *,
        name: str | None = None,
        budget_usd: float | None = None,
    ) -> Run:
        now = utcnow()
        run_id = uuid.uuid4().hex[:12]
        with self._store.write() as conn:
            conn.execute(
                runs.insert(),
                {
                    "id": run_id,
                    "name": name,
                    "spec": spec,
                    "spec_hash": spec_hash,
                    "status": "running",
                    "budget_usd": budget_usd,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        return self.get(run_id)

    def get(self, ref: str) -> Run:
        """A run by id or unique id prefix (4+ characters), or by name (the newest run of that name)."""
        with self._store.read() as conn:
            row = conn.execute(select(runs).where(runs.c.id == ref)).first()
            if row is None and len(ref) >= 4:
                found = conn.execute(select(runs).where(runs.c.id.startswith(ref, autoescape=True))).all()
                if len(found) > 1:
                    raise NotFoundError(
                        f"run prefix {ref!r} matches {len(found)} runs", hint="give more characters"
                    )
                row = found[0] if found else None
            if row is None:
                row = conn.execute(
                    select(runs).where(runs.c.name == ref).order_by(runs.c.created_at.desc()).limit(1)
                ).first()
        if row is None:
            raise NotFoundError(f"no experiment run {ref!r}", hint="list runs with `honed experiments list`")
        return Run(**row._mapping)

    def find_unfinished(self, spec_hash: str) -> Run | None:
        """The newest run of this exact spec that did not complete (to resume it), if any."""
        stmt = (
            select(runs)
            .where(runs.c.spec_hash == spec_hash, runs.c.status != "completed")
            .order_by(runs.c.created_at.desc())
            .limit(1)
        )
        with self._store.read() as conn:
            row = conn.execute(stmt).first()
        return Run(**row._mapping) if row is not None else None

    def list(self, limit: int = 50) -> builtins.list[Run]:
        with self._store.read() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.created_at.desc()).limit(limit)).all()
        return [Run(**r._mapping) for r in rows]

    def set_status(self, run_id: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self._store.write() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(status=status, updated_at=utcnow()))

    def put_results(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace result rows (a retried call replaces its errored row)."""
        self._put(results, RESULT_KEY, rows)

    def put_scores(self, rows: Sequence[dict[str, Any]]) -> None:
        self._put(scores, SCORE_KEY, rows)

    def _put(self, table: Table, key: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        now = utcnow()
        rows = mask_errors(rows)
        with self._store.write() as conn:
            stmt = upsert(table, key, conn.dialect.name)
            for start in range(0, len(rows), _CHUNK):
                conn.execute(stmt, [{"created_at": now, **r} for r in rows[start : start + _CHUNK]])

    def done_keys(self, run_id: str) -> set[tuple[str, str, int]]:
        """(variant, case_id, sample_index) of the calls this run finished without an error."""
        stmt = select(results.c.variant, results.c.case_id, results.c.sample_index).where(
            results.c.run_id == run_id, results.c.error.is_(None)
        )
        with self._store.read() as conn:
            return {(r.variant, r.case_id, int(r.sample_index)) for r in conn.execute(stmt)}

    def results(self, run_id: str) -> builtins.list[dict[str, Any]]:
        return self._rows(results, run_id)

    def scores(self, run_id: str) -> builtins.list[dict[str, Any]]:
        return self._rows(scores, run_id)

    def _rows(self, table: Table, run_id: str) -> builtins.list[dict[str, Any]]:
        stmt = select(table).where(table.c.run_id == run_id).order_by(*[table.c[k] for k in RESULT_KEY])
        with self._store.read() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def retrieved(self, run_id: str) -> builtins.list[tuple[str, str, int, builtins.list[dict[str, Any]]]]:
        """(variant, case_id, sample_index, retrieval trace) of the run's results whose prompts retrieved."""
        c = results.c
        stmt = select(c.variant, c.case_id, c.sample_index, c.retrieved).where(
            c.run_id == run_id, c.retrieved.is_not(None)
        )
        with self._store.read() as conn:
            # A JSON column stores Python None as JSON null, which `IS NOT NULL` keeps: filter here too.
            rows = conn.execute(stmt)
            return [
                (r.variant, r.case_id, int(r.sample_index), list(r.retrieved)) for r in rows if r.retrieved
            ]

    def passes(self, run_id: str, evaluator: str) -> dict[tuple[str, str, int], bool]:
        """Pass/fail of one evaluator's scores in a run, by (variant, case_id, sample_index)."""
        c = scores.c
        stmt = select(c.variant, c.case_id, c.sample_index, c.passed).where(
            c.run_id == run_id, c.evaluator == evaluator, c.passed.is_not(None)
        )
        with self._store.read() as conn:
            return {(r.variant, r.case_id, int(r.sample_index)): bool(r.passed) for r in conn.execute(stmt)}

    def error_groups(self, run_id: str) -> builtins.list[tuple[str, str, int]]:
        """(where, message, count) of the run's errors, most frequent first: `where` is "call" for results
        whose call failed after its retries, else the evaluator that failed on a result."""
        r, s = results.c, scores.c
        calls = (
            select(r.error, func.count()).where(r.run_id == run_id, r.error.is_not(None)).group_by(r.error)
        )
        evals = (
            select(s.evaluator, s.error, func.count())
            .where(s.run_id == run_id, s.error.is_not(None))
            .group_by(s.evaluator, s.error)
        )
        with self._store.read() as conn:
            out = [("call", str(e), int(n)) for e, n in conn.execute(calls)]
            out += [(str(ev), str(e), int(n)) for ev, e, n in conn.execute(evals)]
        return sorted(out, key=lambda g: (-g[2], g[0], g[1]))

    def spent(self, run_id: str) -> float:
        """USD this run's calls cost so far (cached calls included at their original price)."""
        stmt = select(func.coalesce(func.sum(results.c.cost_usd), 0.0)).where(results.c.run_id == run_id)
        with self._store.read() as conn:
            return float(conn.execute(stmt).scalar_one())

    def delete(self, run_ids: Iterable[str]) -> None:
        ids = list(run_ids)
        with self._store.write() as conn:
            for table in (scores, results, runs):
                col = table.c.id if table is runs else table.c.run_id
                conn.execute(table.delete().where(col.in_(ids)))
