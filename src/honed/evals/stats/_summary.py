"""One variant's numbers: mean score with a bootstrap interval, pass rate with a Wilson interval, errors.

The interval of the mean is the *percentile* bootstrap (not BCa): the 2.5th and 97.5th percentiles of the
means of `n_boot` resamples of the cases. It assumes the cases are independent draws from the population of
cases the dataset stands for; with a few dozen cases it covers slightly less than nominal (about 94% at
n = 50). The pass rate's interval is Wilson's score interval, which, unlike the textbook p +/- z*se, stays
inside [0, 1] and keeps its coverage near 0% and 100%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from honed.errors import InvalidInputError

from ._flaky import flaky_mask, repeat_std
from ._matrix import FloatArray, ScoreMatrix, as_matrix
from ._resample import bootstrap_means, percentile_interval
from ._result import Interval, Result, opt

BOOTSTRAP = "percentile bootstrap"


def check_options(confidence: float, n_boot: int, n_perm: int = 1) -> None:
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"confidence must be between 0 and 1, got {confidence}", hint="e.g. 0.95")
    if n_boot < 1 or n_perm < 1:
        raise InvalidInputError("n_boot and n_perm must be at least 1", hint="10,000 is the default")


def z_value(confidence: float) -> float:
    from scipy import stats as sps  # a second to import: not at module level, which every CLI command loads

    return float(sps.norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval | None:
    """Wilson score interval of a proportion `successes / n`; None when n == 0."""
    if n == 0:
        return None
    z = z_value(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The limits are exactly 0 and 1 at the extremes; rounding must not leave p-hat outside the interval.
    low = 0.0 if successes == 0 else min(p, max(0.0, centre - half))
    high = 1.0 if successes == n else max(p, min(1.0, centre + half))
    return Interval(low, high, confidence, "Wilson score")


@dataclass(frozen=True)
class MetricSummary(Result):
    """Mean (with a percentile bootstrap interval), total and spread of a per-case metric."""

    n: int
    n_missing: int
    mean: float | None
    ci: Interval | None
    std: float | None
    total: float


@dataclass(frozen=True)
class VariantSummary(Result):
    """One variant over its cases. `mean` averages case means (each case's repeats averaged first).

    n_cases: cases given; n_scored: cases with at least one valid run (the ones the mean uses);
    n_errors: errored runs (NaN cells), never counted as zeros; n_absent: runs without a score by design
    (not labelled yet, no reference), neither scored nor errors. The pass rate counts a case as passing when
    it passes in more than half of its valid runs; `run_pass_rate` is the share of all valid runs passed.
    `flaky` lists cases whose pass/fail differs between repeats.
    """

    n_cases: int
    n_repeats: int
    n_scored: int
    n_errors: int
    mean: float | None
    ci: Interval | None
    std: float | None
    mean_repeat_std: float | None
    n_pass_known: int
    n_passed: int
    pass_rate: float | None
    pass_ci: Interval | None
    run_pass_rate: float | None
    flaky: tuple[str, ...]
    n_boot: int
    seed: int
    n_absent: int = 0

    def brief(self) -> dict[str, Any]:
        """The summary as compact JSON, the one shape the ladder's ledger, its diagnosis and `finetune
        compare` print: mean, CI as [low, high], pass rate, cases scored, errored runs. The full record is
        `to_dict()`."""
        return {
            "mean": self.mean,
            "ci": None if self.ci is None else self.ci.bounds(),
            "pass_rate": self.pass_rate,
            "scored": self.n_scored,
            "errors": self.n_errors,
        }


def build_summary(
    matrix: ScoreMatrix, means: FloatArray, boot: FloatArray, *, confidence: float, n_boot: int, seed: int
) -> VariantSummary:
    """Assemble a summary from case means and their bootstrap draws (shared with `many`)."""
    valid = means[~np.isnan(means)]
    low, high = percentile_interval(boot[:, None], confidence)
    spread = repeat_std(matrix)
    spread = spread[~np.isnan(spread)]
    case_passes = matrix.case_passes()
    known = np.zeros(0) if case_passes is None else case_passes[~np.isnan(case_passes)]
    runs = np.zeros(0) if matrix.passed is None else matrix.passed[~np.isnan(matrix.passed)]
    flaky = flaky_mask(matrix)
    n_passed = int(known.sum())
    return VariantSummary(
        n_cases=matrix.n_cases,
        n_repeats=matrix.n_repeats,
        n_scored=int(valid.size),
        n_errors=matrix.n_errors,
        n_absent=matrix.n_absent,
        mean=float(valid.mean()) if valid.size else None,
        ci=Interval.of(float(low[0]), float(high[0]), confidence, BOOTSTRAP),
        std=float(valid.std(ddof=1)) if valid.size > 1 else None,
        mean_repeat_std=float(spread.mean()) if spread.size else None,
        n_pass_known=int(known.size),
        n_passed=n_passed,
        pass_rate=n_passed / known.size if known.size else None,
        pass_ci=wilson_interval(n_passed, int(known.size), confidence),
        run_pass_rate=float(runs.mean()) if runs.size else None,
        flaky=tuple(matrix.case_ids[i] for i in np.flatnonzero(flaky)),
        n_boot=n_boot,
        seed=seed,
    )


def summary(
    scores: ScoreMatrix | npt.ArrayLike,
    *,
    passed: npt.ArrayLike | None = None,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
) -> VariantSummary:
    """Mean score with a percentile bootstrap CI, std, pass rate with a Wilson CI, errors, flaky cases.

    `scores`: a ScoreMatrix, or an array (cases,) / (cases, repeats) with NaN for errored runs.
    `passed`: pass/fail for a plain array (same shape, or one per case). Same seed, same result.
    """
    check_options(confidence, n_boot)
    matrix = as_matrix(scores, passed)
    means = matrix.case_means()
    boot = bootstrap_means(means[:, None], ~np.isnan(means)[:, None], n_boot=n_boot, seed=seed)[:, 0]
    return build_summary(matrix, means, boot, confidence=confidence, n_boot=n_boot, seed=seed)


def metric(
    values: npt.ArrayLike, *, confidence: float = 0.95, n_boot: int = 10_000, seed: int = 0
) -> MetricSummary:
    """Mean with a percentile bootstrap CI, std and total of a per-case metric (cost, tokens, latency).

    NaN marks a missing value: excluded from mean and total, counted in `n_missing`.
    """
    check_options(confidence, n_boot)
    array = np.asarray(values, dtype=np.float64).ravel()
    ok = ~np.isnan(array)
    boot = bootstrap_means(array[:, None], ok[:, None], n_boot=n_boot, seed=seed)
    low, high = percentile_interval(boot, confidence)
    good = array[ok]
    return MetricSummary(
        n=int(good.size),
        n_missing=int(array.size - good.size),
        mean=float(good.mean()) if good.size else None,
        ci=Interval.of(float(low[0]), float(high[0]), confidence, BOOTSTRAP),
        std=opt(good.std(ddof=1)) if good.size > 1 else None,
        total=float(good.sum()),
    )
