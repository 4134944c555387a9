"""One run read in one transaction, for the numbers `honed.experiments.analysis` reports.

Analysis puts case lists, usage sums and score matrices side by side; read in separate transactions, a
runner still writing could make them disagree (a case counted in usage but missing from a matrix). A
`RunSnapshot` answers every query on the one connection `RunRepository.snapshot` opened: on SQLite (WAL)
that transaction sees one snapshot, and on PostgreSQL it runs at REPEATABLE READ (the default READ
COMMITTED gives each statement its own). The database does the aggregating and the filtering, so a run of
100k+ rows is never loaded as rows. The columns that are read are fetched whole (`.all()`): iterating a
result fetches row by row, a fifth of `analyse()` on 100,000 scores.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.engine import Connection

from honed.store.schema import results, scores

R, S = results.c, scores.c
#: The call returned text (a failed parse included): it cost tokens and its latency is a model's.
_RETURNED = R.output.is_not(None)


class RunSnapshot:
    """Queries over one run's results and scores on one open transaction (see `RunRepository.snapshot`).

    Valid only inside the `with` block that made it.
    """

    def __init__(self, conn: Connection, run_id: str) -> None:
        self._conn = conn
        self._run_id = run_id

    def case_ids(self) -> list[str]:
        """The ids of the cases the run has results for, sorted."""
        stmt = select(R.case_id).where(R.run_id == self._run_id).distinct()
        return sorted(self._conn.execute(stmt).scalars())

    def usage(self) -> dict[str, tuple[Any, ...]]:
        """Per variant, summed by the database: (calls, errors, cached, calls of unknown price, cost,
        input tokens, output tokens). Cost and tokens count only calls that returned; sums over no row
        may be None."""
        stmt = (
            select(
                R.variant,
                func.count(),
                func.sum(case((R.error.is_not(None), 1), else_=0)),
                func.sum(case((R.cached, 1), else_=0)),
                func.sum(case((_RETURNED & R.cost_usd.is_(None), 1), else_=0)),
                func.sum(case((_RETURNED, R.cost_usd))),
                func.sum(case((_RETURNED, R.input_tokens), else_=0)),
                func.sum(case((_RETURNED, R.output_tokens), else_=0)),
            )
            .where(R.run_id == self._run_id)
            .group_by(R.variant)
        )
        return {row[0]: tuple(row[1:]) for row in self._conn.execute(stmt)}

    def timings(self) -> dict[str, tuple[list[float], list[float]]]:
        """Per variant: the model latencies of the calls that returned, and the queue times recorded."""
        stmt = select(R.variant, R.latency_s, R.queue_s).where(R.run_id == self._run_id, _RETURNED)
        out: dict[str, tuple[list[float], list[float]]] = {}
        for variant, latency_s, queue_s in self._conn.execute(stmt).all():
            model, queued = out.setdefault(variant, ([], []))
            model.append(float(latency_s))
            if queue_s is not None:
                queued.append(float(queue_s))
        return out

    def score_values(self, evaluator: str, variant: str) -> list[tuple[str, int, float, bool | None]]:
        """(case_id, sample_index, value, passed) of the evaluator's scores of one variant that have a
        value."""
        stmt = select(S.case_id, S.sample_index, S.value, S.passed).where(
            S.run_id == self._run_id, S.variant == variant, S.evaluator == evaluator, S.value.is_not(None)
        )
        return [(c, i, v, p) for c, i, v, p in self._conn.execute(stmt).all()]

    def unscored(self, evaluator: str, variant: str, absent: Collection[str]) -> list[tuple[str, int]]:
        """(case_id, sample_index) of one variant's results whose call did not fail and that have no score
        value from the evaluator by design: no score row at all (a human label not given yet, a run stopped
        before scoring), or one without a value whose error is none or one of `absent` ("no reference").
        Any other score error is the evaluator's failure. The database does the matching (an index lookup
        per result), so only those few cells are read, not every answered result."""
        judged = (
            select(1)
            .where(
                S.run_id == R.run_id,
                S.variant == R.variant,
                S.case_id == R.case_id,
                S.sample_index == R.sample_index,
                S.evaluator == evaluator,
                or_(S.value.is_not(None), and_(S.error.is_not(None), S.error.not_in(sorted(absent)))),
            )
            .exists()
        )
        stmt = select(R.case_id, R.sample_index).where(
            R.run_id == self._run_id, R.variant == variant, R.error.is_(None), ~judged
        )
        return [(c, i) for c, i in self._conn.execute(stmt).all()]
