"""Flaky cases: the same case, run again with the same inputs, passes once and fails another time.

A flaky case is noise, not signal: a "fix" that flips it may have changed nothing. Flakiness needs repeats;
with one run per case nothing can be flagged. For continuous scores the per-case standard deviation across
repeats shows the same thing by degree.
"""

from __future__ import annotations

import numpy as np

from ._matrix import BoolArray, FloatArray, ScoreMatrix


def flaky_mask(matrix: ScoreMatrix) -> BoolArray:
    """True for cases with both a passing and a failing valid run."""
    if matrix.passed is None:
        return np.zeros(matrix.n_cases, dtype=np.bool_)
    mask: BoolArray = (matrix.passed == 1.0).any(axis=1) & (matrix.passed == 0.0).any(axis=1)
    return mask


def flaky(matrix: ScoreMatrix, *, threshold: float | None = None) -> tuple[str, ...]:
    """Ids of the cases whose pass/fail differs across repeats.

    Pass/fail is `score >= threshold` when a threshold is given, else the matrix's own `passed`
    (no pass/fail at all: no case can be called flaky, and the result is empty).
    """
    source = matrix.with_threshold(threshold) if threshold is not None else matrix
    return tuple(matrix.case_ids[i] for i in np.flatnonzero(flaky_mask(source)))


def repeat_std(matrix: ScoreMatrix) -> FloatArray:
    """Per case, the sample standard deviation (ddof=1) of its valid runs; NaN with fewer than two."""
    valid = ~np.isnan(matrix.scores)
    counts = valid.sum(axis=1)
    cells = np.where(valid, matrix.scores, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = cells.sum(axis=1) / counts
        squares = np.where(valid, (matrix.scores - means[:, None]) ** 2, 0.0).sum(axis=1)
        std: FloatArray = np.where(counts > 1, np.sqrt(squares / (counts - 1)), np.nan)
    return std
