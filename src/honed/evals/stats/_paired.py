"""Two variants on the same cases: the paired difference, its interval, a paired test and a verdict.

Pairing matters: cases differ far more from each other than variants do, and comparing the same case under
both variants cancels that variation out. The unit is the case (repeats averaged first); only cases present
in both variants are paired (the others are listed, never silently dropped), and a case that errored in
every run of either variant is left out of the difference and counted.

- Difference: mean over cases of (b - a), so positive means B scores higher (higher scores are better).
- Interval: percentile bootstrap of that mean, resampling cases (pairs stay together).
- Test: the paired sign-flip permutation test (see `_resample`): it assumes only that, under "no
  difference", each case's difference is symmetric around zero; no normality.
- Pass/fail, when both sides have it: McNemar's test (see `_mcnemar`).
- Verdict: "better" only when the interval lies entirely above 0 *and* the test's p < alpha = 1 - confidence
  ("worse": entirely below 0 and p < alpha); anything else is "no detectable difference". Requiring both
  keeps the verdict from resting on either method's edge case.
- Cases needed: the normal approximation n = ((z_{1-alpha/2} + z_power) * sd_diff / |mean_diff|)^2 for a
  paired test to detect the observed difference with the given power, but never fewer than an exact
  sign-flip test needs to reach p < alpha at all (ceil(log2(2 / alpha)), 6 at alpha = 0.05). It takes the
  observed difference as the true one, so it is a rough guide, not a promise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from ._flaky import flaky_mask
from ._matrix import FloatArray, ScoreMatrix, as_matrix
from ._mcnemar import PassComparison, compare_passes
from ._resample import bootstrap_means, percentile_interval, sign_flip_pvalues
from ._result import Interval, Result
from ._summary import BOOTSTRAP, check_options, z_value

BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no detectable difference"
#: What `Comparison.brief()` gives by default: a step's difference against another, as the ladder records it.
DELTA_KEYS = ("diff", "ci", "p_value", "cases", "verdict")


@dataclass(frozen=True)
class CaseDelta(Result):
    """One case that changed: its (repeat-averaged) scores, delta = b - a, outcomes, and flakiness."""

    case_id: str
    score_a: float
    score_b: float
    delta: float
    passed_a: bool | None
    passed_b: bool | None
    flaky: bool


@dataclass(frozen=True)
class Comparison(Result):
    """B against A on their shared cases. See the module docstring for the rules behind each field.

    n_paired: cases in both; unpaired_a / unpaired_b: ids only one side has (dropped). n_used: paired cases
    with a valid score under both (the others errored: n_errors_a / n_errors_b count errored runs).
    improvements / regressions: fail -> pass / pass -> fail when both sides have pass/fail, otherwise
    score up / down; sorted by delta, biggest change first. flaky: cases flaky under either variant.
    """

    n_paired: int
    unpaired_a: tuple[str, ...]
    unpaired_b: tuple[str, ...]
    n_used: int
    n_errors_a: int
    n_errors_b: int
    mean_a: float | None
    mean_b: float | None
    mean_diff: float | None
    sd_diff: float | None
    ci: Interval | None
    p_value: float | None
    test: str
    passes: PassComparison | None
    improvements: tuple[CaseDelta, ...]
    regressions: tuple[CaseDelta, ...]
    flaky: tuple[str, ...]
    verdict: str
    alpha: float
    power: float
    cases_needed: int | None
    additional_cases_needed: int | None
    message: str
    n_boot: int
    n_perm: int
    seed: int

    def brief(self, keys: Sequence[str] = DELTA_KEYS) -> dict[str, Any]:
        """The comparison as compact JSON: `keys`, in that order (the full record is `to_dict()`).

        The names of the compact fields are defined here for every output that prints them (the ladder's
        ledger and diagnosis, `finetune compare`, `kb eval`), the CI as [low, high]. Two outputs have long
        printed one field under two names, and both names stay so that neither output changes: `ci` and
        `diff_ci` (the CI of the difference), `cases` and `n` (the paired cases used). A key not known here
        is a KeyError: a caller's typo, not something to print as null.
        """
        ci = None if self.ci is None else self.ci.bounds()
        values: dict[str, Any] = {
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "diff": self.mean_diff,
            "ci": ci,
            "diff_ci": ci,
            "p_value": self.p_value,
            "test": self.test,
            "cases": self.n_used,
            "n": self.n_used,
            "verdict": self.verdict,
            "message": self.message,
        }
        return {key: values[key] for key in keys}


def cases_needed(mean_diff: float, sd_diff: float, *, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Paired cases needed to detect `mean_diff` (two-sided, level alpha) with `power`; None if unknowable."""
    if not mean_diff or not math.isfinite(mean_diff) or not math.isfinite(sd_diff):
        return None
    z = z_value(1.0 - alpha) + z_value(2.0 * power - 1.0)
    needed = math.ceil((z * sd_diff / abs(mean_diff)) ** 2 - 1e-9)
    return max(needed, math.ceil(math.log2(2.0 / alpha)))


def verdict(ci: Interval | None, p_value: float | None, alpha: float) -> str:
    """ "better"/"worse" only when the interval excludes 0 on that side and p < alpha."""
    if ci is None or p_value is None or p_value >= alpha:
        return NO_DIFFERENCE
    if ci.low > 0:
        return BETTER
    return WORSE if ci.high < 0 else NO_DIFFERENCE


def align(
    a: ScoreMatrix, b: ScoreMatrix
) -> tuple[ScoreMatrix, ScoreMatrix, tuple[str, ...], tuple[str, ...]]:
    """Both matrices restricted to their shared case ids (in A's order), and the ids only one side has."""
    if a.case_ids == b.case_ids:
        return a, b, (), ()
    in_b = {case: i for i, case in enumerate(b.case_ids)}
    rows_a = np.array([i for i, case in enumerate(a.case_ids) if case in in_b], dtype=np.intp)
    rows_b = np.array([in_b[a.case_ids[i]] for i in rows_a], dtype=np.intp)
    shared = set(b.case_ids).intersection(a.case_ids)
    only_a = tuple(c for c in a.case_ids if c not in shared)
    only_b = tuple(c for c in b.case_ids if c not in shared)
    return a.subset(rows_a), b.subset(rows_b), only_a, only_b


def _deltas(
    a: ScoreMatrix, b: ScoreMatrix, mean_a: FloatArray, mean_b: FloatArray
) -> tuple[tuple[CaseDelta, ...], tuple[CaseDelta, ...], npt.NDArray[np.bool_]]:
    delta = mean_b - mean_a
    pass_a, pass_b = a.case_passes(), b.case_passes()
    if pass_a is not None and pass_b is not None:
        up, down = (pass_a == 0.0) & (pass_b == 1.0), (pass_a == 1.0) & (pass_b == 0.0)
    else:
        up, down = delta > 0, delta < 0
    flaky = flaky_mask(a) | flaky_mask(b)

    def outcome(passes: FloatArray | None, i: np.intp) -> bool | None:
        return None if passes is None or np.isnan(passes[i]) else bool(passes[i] == 1.0)

    def rows(mask: npt.NDArray[np.bool_], sign: float) -> tuple[CaseDelta, ...]:
        index = np.flatnonzero(mask)
        index = index[np.argsort(-sign * delta[index], kind="stable")]
        return tuple(
            CaseDelta(
                a.case_ids[i],
                float(mean_a[i]),
                float(mean_b[i]),
                float(delta[i]),
                outcome(pass_a, i),
                outcome(pass_b, i),
                bool(flaky[i]),
            )
            for i in index
        )

    return rows(up, 1.0), rows(down, -1.0), flaky


def _p_text(c: Comparison) -> str:
    assert c.p_value is not None
    if "Monte Carlo" in c.test and c.p_value <= 1.0 / (1.0 + c.n_perm) * (1 + 1e-9):
        return f"p <= {c.p_value:.2g} (no random sign assignment reached the observed difference)"
    return f"p = {c.p_value:.3g}"


def _num(x: float) -> str:
    """A signed difference at one precision for the estimate and both ends of its interval: 3 decimals,
    or 3 significant digits for tiny or large values."""
    return f"{x:+.3f}" if x == 0 or 0.001 <= abs(x) < 1000 else f"{x:+.3g}"


def _message(c: Comparison, confidence: float) -> str:
    if c.mean_diff is None or c.ci is None or c.p_value is None:
        return f"B - A cannot be estimated from {c.n_used} usable paired case(s)."
    head = (
        f"B - A = {_num(c.mean_diff)} ({confidence:.0%} CI {_num(c.ci.low)} to {_num(c.ci.high)}), "
        f"{_p_text(c)}, n = {c.n_used}: "
    )
    if c.verdict != NO_DIFFERENCE:
        return head + f"B is {c.verdict}."
    extra = c.additional_cases_needed
    if extra is None and c.mean_diff == 0:
        return head + "no difference observed, so no number of cases can be estimated to detect one."
    if extra is None:
        return head + "no detectable difference, and too few cases to estimate how many more would be needed."
    if extra == 0:
        return head + "no detectable difference, though this many cases would usually detect one this size."
    return head + (
        f"no detectable difference; about {extra:,} more paired cases would be needed to detect a difference "
        f"this size with {c.power:.0%} power."
    )


def build_comparison(
    a: ScoreMatrix,
    b: ScoreMatrix,
    boot_diff: FloatArray,
    p_value: float,
    test: str,
    *,
    unpaired: tuple[tuple[str, ...], tuple[str, ...]],
    confidence: float,
    power: float,
    n_boot: int,
    n_perm: int,
    seed: int,
) -> Comparison:
    """Assemble a comparison of aligned matrices from the bootstrap draws and p-value (shared with `many`)."""
    mean_a, mean_b = a.case_means(), b.case_means()
    used = ~np.isnan(mean_a) & ~np.isnan(mean_b)
    diffs = (mean_b - mean_a)[used]
    n_used = int(used.sum())
    alpha = 1.0 - confidence
    low, high = percentile_interval(boot_diff[:, None], confidence)
    ci = Interval.of(float(low[0]), float(high[0]), confidence, BOOTSTRAP) if n_used else None
    mean_diff = float(diffs.mean()) if n_used else None
    sd_diff = float(diffs.std(ddof=1)) if n_used > 1 else None
    needed = (
        None
        if mean_diff is None or sd_diff is None
        else cases_needed(mean_diff, sd_diff, alpha=alpha, power=power)
    )
    pa, pb = a.case_passes(), b.case_passes()
    improvements, regressions, flaky = _deltas(a, b, mean_a, mean_b)
    result = Comparison(
        n_paired=a.n_cases,
        unpaired_a=unpaired[0],
        unpaired_b=unpaired[1],
        n_used=n_used,
        n_errors_a=a.n_errors,
        n_errors_b=b.n_errors,
        mean_a=float(mean_a[used].mean()) if n_used else None,
        mean_b=float(mean_b[used].mean()) if n_used else None,
        mean_diff=mean_diff,
        sd_diff=sd_diff,
        ci=ci,
        p_value=p_value if n_used else None,
        test=test,
        passes=compare_passes(pa, pb) if pa is not None and pb is not None else None,
        improvements=improvements,
        regressions=regressions,
        flaky=tuple(a.case_ids[i] for i in np.flatnonzero(flaky)),
        verdict=verdict(ci, p_value if n_used else None, alpha),
        alpha=alpha,
        power=power,
        cases_needed=needed,
        additional_cases_needed=None if needed is None else max(0, needed - n_used),
        n_boot=n_boot,
        n_perm=n_perm,
        seed=seed,
        message="",
    )
    return replace(result, message=_message(result, confidence))


def compare(
    a: ScoreMatrix | npt.ArrayLike,
    b: ScoreMatrix | npt.ArrayLike,
    *,
    passed_a: npt.ArrayLike | None = None,
    passed_b: npt.ArrayLike | None = None,
    confidence: float = 0.95,
    power: float = 0.8,
    n_boot: int = 10_000,
    n_perm: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare B with A, paired on case ids (plain arrays pair by position). Same seed, same result."""
    check_options(confidence, n_boot, n_perm)
    a_m, b_m, only_a, only_b = align(as_matrix(a, passed_a), as_matrix(b, passed_b))
    diff = b_m.case_means() - a_m.case_means()
    used = ~np.isnan(diff)
    boot = bootstrap_means(diff[:, None], used[:, None], n_boot=n_boot, seed=seed)[:, 0]
    pvalues, tests = sign_flip_pvalues(diff[:, None], used[:, None], n_perm=n_perm, seed=seed)
    return build_comparison(
        a_m,
        b_m,
        boot,
        float(pvalues[0]),
        tests[0],
        unpaired=(only_a, only_b),
        confidence=confidence,
        power=power,
        n_boot=n_boot,
        n_perm=n_perm,
        seed=seed,
    )
