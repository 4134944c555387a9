"""The input type of the statistics: one variant's scores, cases by repeats, with errors kept visible.

A cell is one run of one case. A run that errored is NaN, never a zero: it is excluded from every mean and
counted (`n_errors`). A case's repeats are averaged first (over its valid runs), so the case, not the run, is
the unit that is resampled and paired; the repeats themselves are kept to find flaky cases.

Pass/fail is optional and lives beside the scores in the same shape (1.0 pass, 0.0 fail, NaN unknown), or
one column for the whole case. A case *passes* when it passes in more than half of its valid runs (a tie is
a fail: "passes" means "passes more often than not"), which gives each case the single binary outcome that
McNemar's test and the pass rate need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from honed.errors import InvalidInputError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def _frozen(array: npt.ArrayLike, what: str) -> FloatArray:
    try:
        out = np.array(array, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{what} must be numbers", hint="use NaN (or None) for an errored run"
        ) from exc
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2:
        raise InvalidInputError(f"{what} must be 1-D (cases) or 2-D (cases x repeats), got {out.ndim}-D")
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class ScoreMatrix:
    """Scores of one variant: `scores[i, r]` is case `case_ids[i]`'s score in repeat `r` (NaN: errored).

    `passed`, when given, has the same shape (or one column per case): 1.0 pass, 0.0 fail, NaN unknown.
    A cell whose score is NaN counts as errored for pass/fail too. `absent`, when given, marks the NaN
    cells that have no score by design rather than by a failure (a result not labelled yet, a case
    without a reference): left out like errored ones, but not counted as errors.
    """

    scores: FloatArray
    case_ids: tuple[str, ...]
    passed: FloatArray | None = None
    absent: npt.NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        scores = _frozen(self.scores, "scores")
        ids = tuple(str(i) for i in self.case_ids)
        if len(ids) != scores.shape[0]:
            raise InvalidInputError(f"{len(ids)} case ids for {scores.shape[0]} rows of scores")
        if len(set(ids)) != len(ids):
            raise InvalidInputError("case ids must be unique", hint="average repeats into one row per case")
        if np.isinf(scores).any():
            raise InvalidInputError("scores must be finite", hint="use NaN for an errored run")
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "case_ids", ids)
        if self.absent is not None:
            absent = np.asarray(self.absent, dtype=np.bool_) & np.isnan(scores)  # a score is never absent
            if absent.shape != scores.shape:
                raise InvalidInputError(f"absent has shape {absent.shape}, scores {scores.shape}")
            absent.flags.writeable = False
            object.__setattr__(self, "absent", absent)
        if self.passed is not None:
            passed = np.array(_frozen(self.passed, "passed"))
            if passed.shape[0] != scores.shape[0] or passed.shape[1] not in (1, scores.shape[1]):
                raise InvalidInputError(
                    f"passed has shape {passed.shape}, scores {scores.shape}",
                    hint="give one pass/fail per run, or one per case",
                )
            known = passed[~np.isnan(passed)]
            if not np.isin(known, (0.0, 1.0)).all():
                raise InvalidInputError("passed must be booleans (or 0/1, NaN for unknown)")
            if passed.shape == scores.shape:
                passed[np.isnan(scores)] = np.nan
            else:
                passed[np.isnan(scores).all(axis=1)] = np.nan
            passed.flags.writeable = False
            object.__setattr__(self, "passed", passed)

    @classmethod
    def from_array(
        cls,
        scores: npt.ArrayLike,
        case_ids: Sequence[str] | None = None,
        *,
        passed: npt.ArrayLike | None = None,
    ) -> ScoreMatrix:
        """Scores as an array (cases,) or (cases, repeats); case ids default to "0", "1", ..."""
        array = _frozen(scores, "scores")
        ids = tuple(case_ids) if case_ids is not None else tuple(str(i) for i in range(array.shape[0]))
        return cls(array, ids, None if passed is None else _frozen(passed, "passed"))

    @classmethod
    def from_runs(
        cls,
        runs: Mapping[str, Sequence[float | None]],
        passed: Mapping[str, Sequence[bool | None]] | None = None,
    ) -> ScoreMatrix:
        """Ragged runs per case id (None: errored); shorter rows are padded with NaN (a missing run)."""
        ids = list(runs)
        width = max((len(r) for r in runs.values()), default=1) or 1

        def pad(rows: Mapping[str, Sequence[float | bool | None]]) -> FloatArray:
            out = np.full((len(ids), width), np.nan)
            for i, case in enumerate(ids):
                row = [np.nan if v is None else float(v) for v in rows.get(case, ())]
                out[i, : len(row)] = row
            return out

        return cls(pad(runs), tuple(ids), None if passed is None else pad(passed))

    def with_threshold(self, threshold: float) -> ScoreMatrix:
        """The same scores with pass/fail set to `score >= threshold` (errored runs stay unknown)."""
        passed = np.where(np.isnan(self.scores), np.nan, (self.scores >= threshold).astype(np.float64))
        return ScoreMatrix(self.scores, self.case_ids, passed, self.absent)

    def subset(self, rows: npt.NDArray[np.intp]) -> ScoreMatrix:
        """The cases at `rows` (positions), in that order."""
        passed = None if self.passed is None else self.passed[rows]
        absent = None if self.absent is None else self.absent[rows]
        return ScoreMatrix(self.scores[rows], tuple(self.case_ids[i] for i in rows), passed, absent)

    @property
    def n_cases(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_repeats(self) -> int:
        return int(self.scores.shape[1])

    @property
    def n_errors(self) -> int:
        """Errored runs (NaN cells that are not `absent`)."""
        return int(np.isnan(self.scores).sum()) - self.n_absent

    @property
    def n_absent(self) -> int:
        """Runs without a score by design (see `absent`)."""
        return 0 if self.absent is None else int(self.absent.sum())

    def case_means(self) -> FloatArray:
        """Each case's mean over its valid runs; NaN for a case whose every run errored."""
        return _row_means(self.scores)

    def case_passes(self) -> FloatArray | None:
        """Each case's outcome, 1.0 when it passed in more than half of its valid runs; NaN when unknown."""
        if self.passed is None:
            return None
        rate = _row_means(self.passed)
        return np.where(np.isnan(rate), np.nan, (rate > 0.5).astype(np.float64))


def _row_means(cells: FloatArray) -> FloatArray:
    valid = ~np.isnan(cells)
    counts = valid.sum(axis=1)
    sums = np.where(valid, cells, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means: FloatArray = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return means


def as_matrix(scores: ScoreMatrix | npt.ArrayLike, passed: npt.ArrayLike | None = None) -> ScoreMatrix:
    """Accept a ScoreMatrix or a plain array (ids "0".."n-1"); `passed` may come with a plain array only."""
    if isinstance(scores, ScoreMatrix):
        if passed is None:
            return scores
        if scores.passed is not None:
            raise InvalidInputError(
                "pass/fail given twice", hint="drop `passed=` or the matrix's own `passed`"
            )
        return ScoreMatrix(scores.scores, scores.case_ids, _frozen(passed, "passed"))
    return ScoreMatrix.from_array(scores, passed=passed)
