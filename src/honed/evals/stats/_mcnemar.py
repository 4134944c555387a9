"""McNemar's test: did pass/fail change between two variants run on the same cases?

Only the discordant cases carry information: b = passed under A but failed under B (regressions), c = failed
under A and passed under B (improvements). Under the null hypothesis (equal pass rates) each discordant case
is equally likely to go either way, so b ~ Binomial(b + c, 1/2).

- b + c < 25: the exact binomial test, p = min(1, 2 * P[X <= min(b, c)]) with X ~ Binomial(b + c, 1/2).
  The chi-square approximation is poor with few discordant pairs.
- otherwise: the chi-square statistic with Edwards' continuity correction, (|b - c| - 1)^2 / (b + c), on one
  degree of freedom (`correction=False` gives McNemar's original (b - c)^2 / (b + c)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from honed.errors import InvalidInputError

from ._matrix import FloatArray
from ._result import Result

EXACT_BELOW = 25


@dataclass(frozen=True)
class McNemarResult(Result):
    """b: pass -> fail, c: fail -> pass. `statistic` is the chi-square value (None for the exact test)."""

    b: int
    c: int
    statistic: float | None
    p_value: float
    method: str


def mcnemar(b: int, c: int, *, exact: bool | None = None, correction: bool = True) -> McNemarResult:
    """McNemar's test on the discordant counts; `exact=None` picks exact when b + c < 25."""
    if b < 0 or c < 0:
        raise InvalidInputError(f"discordant counts must be >= 0, got b={b}, c={c}")
    from scipy import stats as sps  # a second to import: not at module level, which every CLI command loads

    n = b + c
    if exact if exact is not None else n < EXACT_BELOW:
        p = 1.0 if n == 0 else min(1.0, 2.0 * float(sps.binom.cdf(min(b, c), n, 0.5)))
        return McNemarResult(b, c, None, p, "exact binomial (two-sided)")
    if n == 0:
        return McNemarResult(b, c, 0.0, 1.0, "chi-square, 1 df")
    gap = max(abs(b - c) - 1, 0) if correction else abs(b - c)
    statistic = gap * gap / n
    method = "chi-square with continuity correction, 1 df" if correction else "chi-square, 1 df"
    return McNemarResult(b, c, statistic, float(sps.chi2.sf(statistic, 1)), method)


@dataclass(frozen=True)
class PassComparison(Result):
    """Pass/fail of two variants on the same cases, and McNemar's test of the change.

    `n` counts the cases whose outcome is known under both variants; `diff` = pass_rate_b - pass_rate_a.
    """

    n: int
    both_pass: int
    both_fail: int
    regressed: int
    improved: int
    pass_rate_a: float | None
    pass_rate_b: float | None
    diff: float | None
    mcnemar: McNemarResult


def compare_passes(passes_a: FloatArray, passes_b: FloatArray) -> PassComparison:
    """Paired case outcomes (1.0 / 0.0 / NaN unknown) -> the 2x2 table and McNemar's test."""
    known = ~np.isnan(passes_a) & ~np.isnan(passes_b)
    a, b = passes_a[known] == 1.0, passes_b[known] == 1.0
    n = int(known.sum())
    regressed, improved = int((a & ~b).sum()), int((~a & b).sum())
    rate_a = float(a.mean()) if n else None
    rate_b = float(b.mean()) if n else None
    return PassComparison(
        n=n,
        both_pass=int((a & b).sum()),
        both_fail=int((~a & ~b).sum()),
        regressed=regressed,
        improved=improved,
        pass_rate_a=rate_a,
        pass_rate_b=rate_b,
        diff=(improved - regressed) / n if n else None,
        mcnemar=mcnemar(regressed, improved),
    )
