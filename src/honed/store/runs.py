"""Experiment runs, their results and scores.

A run's results are keyed by (run, variant, case, sample), so resuming a run is "skip the keys already
stored without an error". Writes are upserts: a retried call or a re-scored result replaces its row, and
two writers of the same key race harmlessly.
"""

from __future__ import annotations

import builtins
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, and_, func, or_, select, update

from honed.errors import NotFoundError
from honed.store.prefixes import resolve_prefix
from honed.store.schema import mask_errors, results, runs, scores, upsert, utcnow
from honed.store.snapshot import RunSnapshot

if TYPE_CHECKING:
    from honed.store.database import Store

RESULT_KEY = ("run_id", "variant", "case_id", "sample_index")
SCORE_KEY = (*RESULT_KEY, "evaluator")
STATUSES = frozenset({"running", "completed", "stopped", "failed", "budget_exceeded"})
_CHUNK = 500
#: Where a page of runs ends: the last run's (created_at, id); the next page starts after it.
RunCursor = tuple[datetime, str]
#: Where a page of a run's results ends: the last result's (variant, case_id, sample_index).
ResultCursor = tuple[str, str, int]


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
    #: latencies timed one call at a time after the run (see `honed.experiments.latency`), or None
    latency_probe: dict[str, Any] | None = None
    #: who ran it: a system user (the CLI, a script) or the web UI's user; None for older runs
    created_by: str | None = None


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
        created_by: str | None = None,
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
                    "created_by": created_by,
                },
            )
        return self.get(run_id)

    def get(self, ref: str) -> Run:
        """A run by id, by name (the newest run of that name), or by a unique id prefix."""
        with self._store.read() as conn:
            row = conn.execute(select(runs).where(runs.c.id == ref)).first()
            if row is None:
                row = conn.execute(
                    select(runs).where(runs.c.name == ref).order_by(runs.c.created_at.desc()).limit(1)
                ).first()
            if row is None:
                run_id = resolve_prefix(conn, runs.c.id, ref, plural="runs")
                if run_id is not None:
                    row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
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

    def page(self, limit: int, after: RunCursor | None = None) -> tuple[builtins.list[Run], RunCursor | None]:
        """Up to `limit` runs, newest first, after the cursor a previous page returned; with the cursor of
        the next page, None when no run is left.

        Keyset pagination: the cursor is a position in the (created_at, id) order, so a page costs the
        same however deep it is, and a run created meanwhile neither shifts nor repeats a row. The id
        breaks ties between runs created in the same instant.
        """
        _check_limit(limit)
        c = runs.c
        stmt = select(runs).order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        if after is not None:
            at, run_id = after
            stmt = stmt.where(or_(c.created_at < at, and_(c.created_at == at, c.id < run_id)))
        with self._store.read() as conn:
            rows = [Run(**r._mapping) for r in conn.execute(stmt)]
        if len(rows) <= limit:
            return rows, None
        last = rows[limit - 1]
        return rows[:limit], (last.created_at, last.id)

    def results_page(
        self, run_id: str, limit: int, after: ResultCursor | None = None
    ) -> tuple[builtins.list[dict[str, Any]], ResultCursor | None]:
        """Up to `limit` result rows of a run in (variant, case_id, sample_index) order, after the cursor a
        previous page returned; with the cursor of the next page, None when no row is left. Keyset
        pagination on the results' primary key, as `page` does for runs."""
        _check_limit(limit)
        c = results.c
        stmt = (
            select(results)
            .where(c.run_id == run_id)
            .order_by(c.variant, c.case_id, c.sample_index)
            .limit(limit + 1)
        )
        if after is not None:
            stmt = stmt.where(_after_result(after))
        with self._store.read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
        if len(rows) <= limit:
            return rows, None
        last = rows[limit - 1]
        return rows[:limit], (last["variant"], last["case_id"], int(last["sample_index"]))

    @contextmanager
    def snapshot(self, run_id: str) -> Iterator[RunSnapshot]:
        """The run's results and scores read in one transaction, so that numbers computed from several
        queries agree with each other (see `honed.store.snapshot`)."""
        with self._store.read(snapshot=True) as conn:
            yield RunSnapshot(conn, run_id)

    def set_status(self, run_id: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self._store.write() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(status=status, updated_at=utcnow()))

    def set_latency_probe(self, run_id: str, probe: dict[str, Any]) -> None:
        """Store the calls timed one at a time after the run: `{"calls": N, "variants": {id: [s]}}`."""
        with self._store.write() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(latency_probe=probe))

    def put_results(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace result rows (a retried call replaces its errored row)."""
        self._put(results, RESULT_KEY, rows)

    def put_scores(self, rows: Sequence[dict[str, Any]]) -> None:
        self._put(scores, SCORE_KEY, rows)

    def _put(self, table: Table, key: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        now = utcnow()
        rows = mask_errors(rows)  # copies: adding the time below leaves the caller's rows as they were
        for r in rows:
            r.setdefault("created_at", now)
        with self._store.write() as conn:
            stmt = upsert(table, key, conn.dialect.name)
            for start in range(0, len(rows), _CHUNK):
                conn.execute(stmt, rows[start : start + _CHUNK])

    def done_keys(self, run_id: str) -> set[tuple[str, str, int]]:
        """(variant, case_id, sample_index) of the calls this run finished without an error."""
        stmt = select(results.c.variant, results.c.case_id, results.c.sample_index).where(
            results.c.run_id == run_id, results.c.error.is_(None)
        )
        with self._store.read() as conn:
            return {(r.variant, r.case_id, int(r.sample_index)) for r in conn.execute(stmt)}

    def delete_score(
        self, run_id: str, variant: str, case_id: str, sample_index: int, evaluator: str
    ) -> None:
        """Delete one score (an undone human label); deleting one that is not there is no error."""
        c = scores.c
        with self._store.write() as conn:
            conn.execute(
                scores.delete().where(
                    c.run_id == run_id,
                    c.variant == variant,
                    c.case_id == case_id,
                    c.sample_index == sample_index,
                    c.evaluator == evaluator,
                )
            )

    def results(self, run_id: str) -> builtins.list[dict[str, Any]]:
        return self._rows(results, run_id)

    def scores(self, run_id: str) -> builtins.list[dict[str, Any]]:
        return self._rows(scores, run_id)

    def evaluators(self, run_id: str) -> set[str]:
        """The evaluators that scored this run, those added after it (human labels) included."""
        stmt = select(scores.c.evaluator).where(scores.c.run_id == run_id).distinct()
        with self._store.read() as conn:
            return set(conn.execute(stmt).scalars())

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

    def error_counts(self, run_id: str, *, ignore: Collection[str] = ()) -> dict[str, tuple[int, int, int]]:
        """Per variant: (calls that failed after their retries, evaluations that failed, results with
        either). Score errors whose message is in `ignore` (a missing reference) are not failures."""
        r, s = results.c, scores.c
        calls = select(r.variant, r.case_id, r.sample_index).where(r.run_id == run_id, r.error.is_not(None))
        evals = select(s.variant, s.case_id, s.sample_index).where(
            s.run_id == run_id, s.error.is_not(None), s.error.not_in(builtins.list(ignore))
        )
        with self._store.read() as conn:
            failed_calls = [tuple(row) for row in conn.execute(calls)]
            failed_evals = [tuple(row) for row in conn.execute(evals)]
        n_calls = Counter(k[0] for k in failed_calls)
        n_evals = Counter(k[0] for k in failed_evals)  # one per (result, evaluator)
        n_results = Counter(k[0] for k in set(failed_calls) | set(failed_evals))
        return {v: (n_calls[v], n_evals[v], n_results[v]) for v in n_results}

    def case_ids(self, run_id: str) -> set[str]:
        """The ids of the cases this run has results for."""
        stmt = select(results.c.case_id).where(results.c.run_id == run_id).distinct()
        with self._store.read() as conn:
            return set(conn.execute(stmt).scalars())

    def failing_cases(
        self, run_id: str, variants: Collection[str], *, evaluator: str | None = None
    ) -> set[str]:
        """Case ids where `evaluator` (None: any evaluator) failed (passed is false) a result of one of
        `variants`."""
        c = scores.c
        stmt = select(c.case_id).where(c.run_id == run_id, c.variant.in_(list(variants)), c.passed.is_(False))
        if evaluator is not None:
            stmt = stmt.where(c.evaluator == evaluator)
        with self._store.read() as conn:
            return set(conn.execute(stmt.distinct()).scalars())

    def case_means(self, run_id: str, variants: Collection[str]) -> dict[str, float]:
        """Each case's mean score over the results of `variants`, every evaluator and sample (cases
        without a score are absent)."""
        c = scores.c
        stmt = (
            select(c.case_id, func.avg(c.value))
            .where(c.run_id == run_id, c.variant.in_(list(variants)), c.value.is_not(None))
            .group_by(c.case_id)
        )
        with self._store.read() as conn:
            return {str(case_id): float(mean) for case_id, mean in conn.execute(stmt)}

    def erroring_cases(
        self, run_id: str, variants: Collection[str], *, ignore: Collection[str] = ()
    ) -> set[str]:
        """Case ids where a call of one of `variants` failed, or an evaluator failed on its result (score
        errors whose message is in `ignore`, such as a missing reference, are not failures)."""
        r, s = results.c, scores.c
        calls = select(r.case_id).where(
            r.run_id == run_id, r.variant.in_(list(variants)), r.error.is_not(None)
        )
        evals = select(s.case_id).where(
            s.run_id == run_id,
            s.variant.in_(list(variants)),
            s.error.is_not(None),
            s.error.not_in(list(ignore)),
        )
        with self._store.read() as conn:
            return set(conn.execute(calls.distinct()).scalars()) | set(
                conn.execute(evals.distinct()).scalars()
            )

    def cases_with_output(self, run_id: str, text: str, variants: Collection[str]) -> set[str]:
        """Case ids where an output of one of `variants` contains `text` (case-insensitive)."""
        r = results.c
        stmt = select(r.case_id).where(
            r.run_id == run_id,
            r.variant.in_(list(variants)),
            func.lower(r.output).contains(text.lower(), autoescape=True),
        )
        with self._store.read() as conn:
            return set(conn.execute(stmt.distinct()).scalars())

    def case_rows(
        self, run_id: str, case_ids: Collection[str], variants: Collection[str]
    ) -> tuple[builtins.list[dict[str, Any]], builtins.list[dict[str, Any]]]:
        """The result rows and the score rows of `case_ids` under `variants` (what `experiments cases`
        shows), ordered by variant, case and sample."""
        r, s = results.c, scores.c
        ids, names = builtins.list(case_ids), builtins.list(variants)
        result_cols = (r.variant, r.case_id, r.sample_index, r.output, r.error, r.latency_s, r.cached)
        score_cols = (s.variant, s.case_id, s.sample_index, s.evaluator, s.value, s.passed, s.reason, s.error)
        out_results: builtins.list[dict[str, Any]] = []
        out_scores: builtins.list[dict[str, Any]] = []
        with self._store.read() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                stmt = select(*result_cols).where(
                    r.run_id == run_id, r.variant.in_(names), r.case_id.in_(chunk)
                )
                out_results += [dict(row._mapping) for row in conn.execute(stmt)]
                stmt2 = select(*score_cols).where(
                    s.run_id == run_id, s.variant.in_(names), s.case_id.in_(chunk)
                )
                out_scores += [dict(row._mapping) for row in conn.execute(stmt2)]
        out_results.sort(key=lambda row: (row["variant"], row["case_id"], row["sample_index"]))
        out_scores.sort(
            key=lambda row: (row["variant"], row["case_id"], row["sample_index"], row["evaluator"])
        )
        return out_results, out_scores

    def fingerprint(self, run_id: str) -> tuple[Any, ...]:
        """What changes whenever anything an analysis of the run reads changes: its status, and the count
        and newest write of its results and of its scores (a human label added, changed or undone moves
        one of them). Two cheap aggregate queries on the tables' primary-key prefix."""
        r, s = results.c, scores.c
        with self._store.read() as conn:
            run = conn.execute(select(runs.c.status, runs.c.updated_at).where(runs.c.id == run_id)).first()
            res = conn.execute(select(func.count(), func.max(r.created_at)).where(r.run_id == run_id)).first()
            sco = conn.execute(select(func.count(), func.max(s.created_at)).where(s.run_id == run_id)).first()
        return (tuple(run or ()), tuple(res or ()), tuple(sco or ()))

    def case_detail(
        self, run_id: str, case_id: str
    ) -> tuple[builtins.list[dict[str, Any]], builtins.list[dict[str, Any]]]:
        """Every column of the result rows of one case (all variants and samples) and its score rows, in
        (variant, sample, evaluator) order: what the web UI's case page shows."""
        r, s = results.c, scores.c
        with self._store.read() as conn:
            rows = [
                dict(row._mapping)
                for row in conn.execute(
                    select(results)
                    .where(r.run_id == run_id, r.case_id == case_id)
                    .order_by(r.variant, r.sample_index)
                )
            ]
            marks = [
                dict(row._mapping)
                for row in conn.execute(
                    select(scores)
                    .where(s.run_id == run_id, s.case_id == case_id)
                    .order_by(s.variant, s.sample_index, s.evaluator)
                )
            ]
        return rows, marks

    def fresh_calls(self, run_id: str) -> dict[str, int]:
        """Per variant, the calls this run made itself (not served from the response cache)."""
        r = results.c
        stmt = (
            select(r.variant, func.count())
            .where(r.run_id == run_id, r.cached.is_(False), r.output.is_not(None))
            .group_by(r.variant)
        )
        with self._store.read() as conn:
            return {variant: int(n) for variant, n in conn.execute(stmt)}

    def earlier_probes(self, spec_hash: str, before: str) -> builtins.list[tuple[str, dict[str, Any]]]:
        """(run id, latency probe) of the other runs of this exact spec that hold one, newest first."""
        stmt = (
            select(runs.c.id, runs.c.latency_probe)
            .where(runs.c.spec_hash == spec_hash, runs.c.id != before, runs.c.latency_probe.is_not(None))
            .order_by(runs.c.created_at.desc())
        )
        with self._store.read() as conn:
            return [(run_id, probe) for run_id, probe in conn.execute(stmt) if isinstance(probe, dict)]

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


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"a page holds at least one row, not {limit}")


def _after_result(cursor: ResultCursor) -> ColumnElement[bool]:
    """Rows after `cursor` in (variant, case_id, sample_index) order, spelled out with OR rather than a
    row-value comparison so that both backends read it as a range on the primary key."""
    variant, case_id, sample = cursor
    c = results.c
    return or_(
        c.variant > variant,
        and_(
            c.variant == variant,
            or_(c.case_id > case_id, and_(c.case_id == case_id, c.sample_index > sample)),
        ),
    )
