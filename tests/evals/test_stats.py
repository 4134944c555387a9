"""Statistics checked against textbook values and against simulation, so that a wrong formula fails.

Reference values are derived by hand in each test's docstring (no statsmodels in the loop).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from honed.errors import InvalidInputError
from honed.evals import stats
from honed.evals.stats import (
    BETTER,
    NO_DIFFERENCE,
    WORSE,
    ScoreMatrix,
    cases_needed,
    compare,
    flaky,
    many,
    mcnemar,
    metric,
    repeat_std,
    summary,
    wilson_interval,
)
from honed.evals.stats._resample import exact_sign_flip

FAST = {"n_boot": 500, "n_perm": 500}
BOOT = {"n_boot": 500}


def ids(n: int, prefix: str = "c") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


# -- McNemar -------------------------------------------------------------------------------------------


def test_mcnemar_agresti_presidential_approval() -> None:
    """Agresti, Categorical Data Analysis, table 10.1: 1,600 people rated the president twice.

    approve/approve 794, approve/disapprove 150, disapprove/approve 86, disapprove/disapprove 570.
    Discordant: b = 150, c = 86, b + c = 236, b - c = 64.
    Without correction: 64^2 / 236 = 4096 / 236 = 17.3559 (Agresti reports z^2 = 17.36, p < 0.001).
    With Edwards' correction: 63^2 / 236 = 3969 / 236 = 16.8178.
    For one degree of freedom P(chi2 > x) = erfc(sqrt(x / 2)).
    """
    plain = mcnemar(150, 86, correction=False)
    assert plain.statistic == pytest.approx(4096 / 236) and round(plain.statistic, 2) == 17.36
    assert plain.p_value == pytest.approx(math.erfc(math.sqrt(4096 / 236 / 2)), rel=1e-9)
    assert plain.p_value < 0.001
    corrected = mcnemar(150, 86)  # b + c >= 25: chi-square with continuity correction by default
    assert corrected.method.startswith("chi-square with continuity correction")
    assert corrected.statistic == pytest.approx(3969 / 236)
    assert corrected.p_value == pytest.approx(math.erfc(math.sqrt(3969 / 236 / 2)), rel=1e-9)
    assert corrected.p_value == pytest.approx(4.11e-5, rel=0.01)


def test_mcnemar_exact_binomial_small_counts() -> None:
    """b = 1, c = 9: P(X <= 1) for X ~ Bin(10, 1/2) = (1 + 10) / 1024; two-sided p = 22 / 1024 = 0.02148."""
    for b, c in ((1, 9), (9, 1)):
        result = mcnemar(b, c)
        assert result.method.startswith("exact binomial")
        assert result.statistic is None
        assert result.p_value == pytest.approx(22 / 1024, abs=1e-12)
    assert mcnemar(0, 0).p_value == 1.0
    assert mcnemar(5, 5).p_value == 1.0  # doubled tail exceeds 1: capped
    assert mcnemar(12, 12).method.startswith("exact")  # 24 discordant pairs: still exact
    assert mcnemar(13, 12).method.startswith("chi-square")


def test_mcnemar_inside_compare_counts_the_discordant_cases() -> None:
    a = np.array([1, 1, 1, 0, 0, 0, 1, 0], dtype=float)
    b = np.array([1, 0, 1, 1, 1, 1, 1, 0], dtype=float)
    result = compare(a, b, passed_a=a, passed_b=b, **FAST)
    assert result.passes is not None
    assert (result.passes.both_pass, result.passes.regressed, result.passes.improved) == (3, 1, 3)
    assert result.passes.both_fail == 1
    assert result.passes.mcnemar.p_value == pytest.approx(2 * (1 + 4) / 16)  # Bin(4, 1/2), min tail 1
    assert [d.case_id for d in result.improvements] == ["3", "4", "5"]
    assert [d.case_id for d in result.regressions] == ["1"]


# -- bootstrap -----------------------------------------------------------------------------------------


def test_bootstrap_ci_covers_the_true_mean_at_its_nominal_rate() -> None:
    """800 datasets of n = 50 from Beta(2, 5) (mean 2/7, skewed like many score distributions).

    The percentile bootstrap undercovers slightly at n = 50 (about 94% for a 95% interval), so the expected
    coverage is ~0.94; the binomial sd over 800 datasets is sqrt(0.94 * 0.06 / 800) = 0.0084, and the band is
    0.94 +/- 3 sd. An interval 20% too wide (coverage ~0.98) or too narrow (~0.89) falls outside it.
    """
    rng = np.random.default_rng(2024)
    covered = 0
    for i in range(800):
        result = summary(rng.beta(2, 5, size=50), n_boot=2000, seed=i)
        assert result.ci is not None
        covered += result.ci.low <= 2 / 7 <= result.ci.high
    assert 0.915 <= covered / 800 <= 0.965


def test_bootstrap_ci_width_matches_the_normal_theory_for_a_large_sample() -> None:
    """For n = 2,000 the bootstrap distribution of the mean is close to normal with sd = s_plugin / sqrt(n)
    (s_plugin: the ddof=0 sd), so the 95% percentile interval's width is 2 * 1.95996 * s_plugin / sqrt(n).
    The 2.5% and 97.5% quantiles of 10,000 draws are each off by ~0.03 sd, i.e. ~1.5% of the width; a 93%
    interval (z = 1.81) would be 7.5% narrower."""
    x = np.random.default_rng(99).normal(0.6, 0.2, size=2000)
    result = summary(x)
    assert result.ci is not None
    width = result.ci.high - result.ci.low
    assert width / (2 * x.std() / math.sqrt(2000)) == pytest.approx(1.959964, rel=0.04)
    assert (result.ci.low + result.ci.high) / 2 == pytest.approx(x.mean(), abs=0.05 * width)


def test_paired_difference_ci_covers_the_true_difference() -> None:
    """Same idea for the paired difference: b = a + 0.1 + noise, so the true mean difference is 0.1."""
    rng = np.random.default_rng(7)
    covered = 0
    for i in range(400):
        a = rng.random(40)
        b = a + 0.1 + rng.normal(0, 0.3, size=40)
        result = compare(a, b, n_boot=1000, n_perm=100, seed=i)
        assert result.ci is not None
        covered += result.ci.low <= 0.1 <= result.ci.high
    assert 0.90 <= covered / 400 <= 0.975  # expected ~0.94, binomial sd 0.012


def test_wilson_interval_known_values() -> None:
    """0 of 10: the upper limit is z^2 / (n + z^2) = 3.8415 / 13.8415 = 0.27753 (lower 0).

    5 of 10: centre 0.5, half-width z * sqrt(0.025 + z^2 / 400) / (1 + z^2 / 10) = 0.26341.
    """
    zero = wilson_interval(0, 10)
    assert zero is not None
    assert zero.low == 0.0 and zero.high == pytest.approx(0.27753, abs=1e-5)
    half = wilson_interval(5, 10)
    assert half is not None
    assert (half.low, half.high) == (
        pytest.approx(0.5 - 0.26341, abs=1e-5),
        pytest.approx(0.5 + 0.26341, abs=1e-5),
    )
    assert wilson_interval(0, 0) is None


# -- the sign-flip permutation test --------------------------------------------------------------------


def test_exact_sign_flip_matches_hand_enumeration() -> None:
    """d = (1, 2, 3): the 8 sign sums are +-6, +-4, +-2, 0, 0; |sum| >= 6 in 2 of them: p = 0.25.

    d = (1, -2, 3, 4): the observed sum is 6. Every assignment is +-1 +-2 +-3 +-4 = 10 - 2s, s the sum of
    the negated magnitudes; |10 - 2s| >= 6 for s <= 2 ({}, {1}, {2}) or s >= 8 ({1,3,4}, {2,3,4},
    {1,2,3,4}): 6 of 16, p = 0.375.
    """
    assert exact_sign_flip(np.array([1.0, 2.0, 3.0])) == 0.25
    assert exact_sign_flip(np.array([1.0, -2.0, 3.0, 4.0])) == 0.375
    result = compare(np.zeros(3), np.array([1.0, 2.0, 3.0]), **FAST)
    assert result.p_value == 0.25 and "exact" in result.test
    assert exact_sign_flip(np.zeros(5)) == 1.0


def test_exact_enumeration_handles_twenty_cases_and_monte_carlo_agrees_beyond() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0.3, 1.0, size=21)
    exact = exact_sign_flip(d[:20])
    assert "exact (all 2^20" in compare(np.zeros(20), d[:20], **FAST).test
    assert compare(np.zeros(20), d[:20], **FAST).p_value == pytest.approx(exact)
    mc = compare(np.zeros(21), d, n_boot=100, n_perm=20_000)
    assert "Monte Carlo" in mc.test
    assert mc.p_value == pytest.approx(exact_sign_flip(d), abs=4 * math.sqrt(0.25 / 20_000))


def test_permutation_p_values_are_uniform_under_the_null() -> None:
    """500 datasets whose paired differences are symmetric around 0: P(p < 0.05) should be 0.05 (binomial sd
    0.0097 over 500 sets: band +/- 3 sd), and P(p < 0.5) about 0.5."""
    rng = np.random.default_rng(11)
    pvalues = np.array(
        [
            compare(np.zeros(30), rng.standard_normal(30), n_boot=50, n_perm=999, seed=i).p_value
            for i in range(500)
        ]
    )
    assert 0.021 <= (pvalues < 0.05).mean() <= 0.079
    assert 0.43 <= (pvalues < 0.5).mean() <= 0.57
    assert (pvalues > 0).all() and (pvalues <= 1).all()


def test_a_clear_effect_gets_a_tiny_p_value_and_a_verdict() -> None:
    rng = np.random.default_rng(5)
    a = rng.random(200)
    result = compare(a, a + 0.1 + rng.normal(0, 0.05, 200))
    assert result.p_value == pytest.approx(1 / 10_001)
    assert result.verdict == BETTER and "B is better" in result.message
    assert compare(a + 0.1 + rng.normal(0, 0.05, 200), a).verdict == WORSE


# -- verdict and cases needed --------------------------------------------------------------------------


def test_an_interval_crossing_zero_is_never_a_verdict() -> None:
    rng = np.random.default_rng(8)
    a = rng.random(60)
    b = a + rng.normal(0.01, 0.2, 60)
    result = compare(a, b)
    assert result.ci is not None and result.ci.low < 0 < result.ci.high
    assert result.verdict == NO_DIFFERENCE
    assert result.additional_cases_needed is not None and result.additional_cases_needed > 0
    assert f"about {result.additional_cases_needed:,} more paired cases" in result.message


def test_verdict_rule_needs_both_the_interval_and_the_p_value() -> None:
    ci = stats.Interval(0.01, 0.2, 0.95, "test")
    assert stats.verdict(ci, 0.01, 0.05) == BETTER
    assert stats.verdict(ci, 0.06, 0.05) == NO_DIFFERENCE  # interval excludes 0 but p does not agree
    assert stats.verdict(stats.Interval(-0.2, -0.01, 0.95, "t"), 0.01, 0.05) == WORSE
    assert stats.verdict(stats.Interval(0.0, 0.2, 0.95, "t"), 0.001, 0.05) == NO_DIFFERENCE  # touches 0
    assert stats.verdict(stats.Interval(-0.1, 0.2, 0.95, "t"), 0.001, 0.05) == NO_DIFFERENCE


def test_cases_needed_normal_approximation() -> None:
    """z_0.975 + z_0.8 = 1.959964 + 0.841621 = 2.801585; (2.801585 * 1 / 0.1)^2 = 784.89 -> 785 cases;
    for a difference of 0.2, 196.22 -> 197: doubling the effect quarters the n."""
    assert cases_needed(0.1, 1.0) == 785
    assert cases_needed(0.2, 1.0) == 197
    assert cases_needed(-0.1, 1.0) == 785
    assert cases_needed(0.0, 1.0) is None
    assert cases_needed(1.0, 0.0) == 6  # an exact sign-flip test cannot reach p < 0.05 with fewer
    assert cases_needed(0.1, 1.0, alpha=0.01) == math.ceil(((2.575829 + 0.841621) * 10) ** 2)


def test_cases_needed_gives_about_the_promised_power() -> None:
    """With n = cases_needed(0.2, 1) = 197, a true difference of 0.2 (sd 1) should be called "better" in
    about 80% of 200 simulated experiments (binomial sd 0.028: band +/- 3 sd)."""
    n = cases_needed(0.2, 1.0)
    assert n == 197
    rng = np.random.default_rng(17)
    hits = sum(
        compare(np.zeros(n), rng.normal(0.2, 1.0, n), n_boot=400, n_perm=400, seed=i).verdict == BETTER
        for i in range(200)
    )
    assert 0.715 <= hits / 200 <= 0.885


def test_no_observed_difference_cannot_size_a_test() -> None:
    a = np.linspace(0, 1, 30)
    result = compare(a, a, **FAST)
    assert result.mean_diff == 0.0 and result.p_value == 1.0
    assert result.verdict == NO_DIFFERENCE
    assert result.cases_needed is None and result.additional_cases_needed is None


# -- errors, pairing, repeats, flakiness ---------------------------------------------------------------


def test_errors_are_excluded_and_counted_not_zero() -> None:
    scores = np.array([[1.0, np.nan], [np.nan, np.nan], [0.5, 0.5], [0.0, 1.0]])
    result = summary(scores, **BOOT)
    assert (result.n_cases, result.n_scored, result.n_errors) == (4, 3, 3)
    assert result.mean == pytest.approx((1.0 + 0.5 + 0.5) / 3)  # zeros would give (0.5 + 0 + 0.5 + 0.5) / 4


def test_compare_reports_unpaired_and_errored_cases() -> None:
    a = ScoreMatrix.from_array([0.1, 0.2, 0.3, 0.4, 0.5], ["c1", "c2", "c3", "c4", "c5"])
    b = ScoreMatrix.from_array([0.9, np.nan, 0.7, 0.8, 0.6], ["c3", "c4", "c5", "c6", "c7"])
    result = compare(a, b, **FAST)
    assert result.unpaired_a == ("c1", "c2") and result.unpaired_b == ("c6", "c7")
    assert (result.n_paired, result.n_used, result.n_errors_b) == (3, 2, 1)
    assert result.mean_diff == pytest.approx(((0.9 - 0.3) + (0.7 - 0.5)) / 2)


def test_repeats_are_averaged_first_and_pass_is_a_majority() -> None:
    scores = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, np.nan], [0.0, 0.0, 0.0]])
    result = summary(scores, passed=scores, **BOOT)
    assert result.mean == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert (result.n_passed, result.n_pass_known) == (1, 3)  # 2 of 3 passes; 1 of 2 is a tie: not a pass
    assert result.run_pass_rate == pytest.approx(3 / 8)
    assert result.flaky == ("0", "1")


def test_flaky_and_repeat_std() -> None:
    matrix = ScoreMatrix.from_array([[0.9, 0.8], [0.9, 0.2], [0.1, np.nan]], ["a", "b", "c"])
    assert flaky(matrix, threshold=0.5) == ("b",)
    assert flaky(matrix) == ()  # no pass/fail and no threshold: nothing can be called flaky
    spread = repeat_std(matrix)
    assert spread[0] == pytest.approx(np.std([0.9, 0.8], ddof=1)) and math.isnan(spread[2])
    compared = compare(matrix.with_threshold(0.5), matrix.with_threshold(0.5), **FAST)
    assert compared.flaky == ("b",)


def test_from_runs_pads_ragged_repeats() -> None:
    matrix = ScoreMatrix.from_runs(
        {"x": [1.0, None, 0.5], "y": [0.0]}, passed={"x": [True, None, False], "y": [False]}
    )
    assert matrix.n_repeats == 3 and matrix.n_errors == 3
    assert matrix.case_means()[0] == pytest.approx(0.75)
    assert matrix.case_passes() is not None and list(matrix.case_passes()) == [0.0, 0.0]


def test_bad_inputs_fail_loudly() -> None:
    with pytest.raises(InvalidInputError):
        ScoreMatrix.from_array([1.0, 2.0], ["a", "a"])
    with pytest.raises(InvalidInputError):
        ScoreMatrix.from_array([1.0, np.inf])
    with pytest.raises(InvalidInputError):
        ScoreMatrix.from_array([1.0, 0.0], passed=[0.5, 1.0])
    with pytest.raises(InvalidInputError):
        summary(ScoreMatrix.from_array([1.0], passed=[1.0]), passed=[1.0])
    with pytest.raises(InvalidInputError):
        summary([1.0, 2.0], confidence=95)
    with pytest.raises(InvalidInputError):
        many({"a": ScoreMatrix.from_array([1.0])}, "b")


def test_all_errored_gives_undefined_not_zero() -> None:
    result = summary(np.full((3, 2), np.nan), **BOOT)
    assert result.mean is None and result.ci is None and result.n_errors == 6
    compared = compare(np.full(3, np.nan), np.ones(3), **FAST)
    assert compared.mean_diff is None and compared.verdict == NO_DIFFERENCE
    assert json.dumps(compared.to_dict(), allow_nan=False)


# -- reproducibility, many, serialisation --------------------------------------------------------------


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random(500), rng.random(500)
    first, again = compare(a, b, seed=3), compare(a, b, seed=3)
    assert first == again
    other = compare(a, b, seed=4)
    assert other.ci != first.ci and other.p_value != first.p_value
    assert summary(a, seed=3) == summary(a, seed=3)


def test_many_equals_summary_and_compare_one_by_one() -> None:
    rng = np.random.default_rng(2)
    cases = ids(300)
    base = rng.random((300, 3))
    base[5, :] = np.nan
    variants = {
        name: ScoreMatrix.from_array(
            np.clip(base + shift + rng.normal(0, 0.1, (300, 3)), 0, 1), cases
        ).with_threshold(0.5)
        for name, shift in (("base", 0.0), ("same", 0.0), ("up", 0.05))
    }
    result = many(variants, "base", n_boot=2000, n_perm=2000)
    assert set(result.comparisons) == {"same", "up"} and result.n_cases == 300
    for name, matrix in variants.items():
        alone = summary(matrix, n_boot=2000)
        assert result.summaries[name].ci == pytest.approx(alone.ci)
        assert result.summaries[name].mean == pytest.approx(alone.mean)
    for name in ("same", "up"):
        alone_c = compare(variants["base"], variants[name], n_boot=2000, n_perm=2000)
        together = result.comparisons[name]
        assert together.ci is not None and alone_c.ci is not None
        assert (together.ci.low, together.ci.high) == pytest.approx((alone_c.ci.low, alone_c.ci.high))
        assert together.p_value == alone_c.p_value and together.verdict == alone_c.verdict
    assert result.comparisons["up"].verdict == BETTER


def test_many_pairs_on_the_common_cases_and_reports_the_rest() -> None:
    variants = {
        "a": ScoreMatrix.from_array([0.1, 0.2, 0.3, 0.4], ["w", "x", "y", "z"]),
        "b": ScoreMatrix.from_array([0.3, 0.4, 0.5], ["x", "y", "z"]),
        "c": ScoreMatrix.from_array([0.5, 0.5, 0.5, 0.0], ["z", "y", "x", "v"]),
    }
    result = many(variants, "a", **FAST)
    assert result.n_cases == 3
    assert result.dropped == {"a": ("w",), "b": (), "c": ("v",)}
    assert result.summaries["c"].n_cases == 3
    assert result.comparisons["b"].mean_diff == pytest.approx(0.1)


def test_to_dict_is_json_ready() -> None:
    scores = np.array([[0.2, np.nan], [0.9, 0.1], [0.4, 0.6]])
    result = many(
        {"a": ScoreMatrix.from_array(scores).with_threshold(0.5), "b": ScoreMatrix.from_array(scores[::-1])},
        "a",
        **FAST,
    )
    text = json.dumps(result.to_dict(), allow_nan=False)
    back = json.loads(text)
    assert back["summaries"]["a"]["ci"]["method"] == "percentile bootstrap"
    assert back["comparisons"]["b"]["passes"] is None  # only one side has pass/fail
    one = summary([0.5], **BOOT).to_dict()
    assert one["std"] is None and one["pass_rate"] is None


def test_metric_mean_total_and_missing() -> None:
    result = metric([0.01, 0.03, np.nan, 0.02], **BOOT)
    assert (result.n, result.n_missing) == (3, 1)
    assert result.mean == pytest.approx(0.02) and result.total == pytest.approx(0.06)
    assert result.ci is not None and 0.01 <= result.ci.low <= 0.02 <= result.ci.high <= 0.03


def test_public_names_exist() -> None:
    for name in stats.__all__:
        assert hasattr(stats, name), name
    assert {"summary", "compare", "many", "flaky", "ScoreMatrix", "cohen_kappa", "calibration"} <= set(
        stats.__all__
    )


# -- properties ----------------------------------------------------------------------------------------

scores_strategy = st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=40)


@settings(max_examples=40, deadline=None)
@given(scores_strategy)
def test_the_interval_contains_the_mean(values: list[float]) -> None:
    result = summary(values, n_boot=300)
    assert result.ci is not None and result.mean is not None
    assert result.ci.low - 1e-12 <= result.mean <= result.ci.high + 1e-12


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=2, max_size=30), st.floats(-1, 1))
def test_compare_is_antisymmetric_and_shift_equivariant(
    pairs: list[tuple[float, float]], shift: float
) -> None:
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    forward, backward = compare(a, b, **FAST), compare(b, a, **FAST)
    assert forward.mean_diff == pytest.approx(-(backward.mean_diff or 0.0), abs=1e-12)
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.ci is not None and backward.ci is not None
    assert forward.ci.low == pytest.approx(-backward.ci.high, abs=1e-9)
    shifted = compare(a, b + shift, **FAST)
    assert shifted.ci is not None and shifted.ci.low == pytest.approx(forward.ci.low + shift, abs=1e-9)
    assert 0 < (forward.p_value or 0) <= 1
    if forward.verdict == BETTER:
        assert forward.ci.low > 0 and (forward.p_value or 1) < 0.05
    if forward.ci.low <= 0 <= forward.ci.high:
        assert forward.verdict == NO_DIFFERENCE


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 200), st.integers(1, 200))
def test_wilson_interval_is_a_proper_interval(successes: int, n: int) -> None:
    successes = min(successes, n)
    interval = wilson_interval(successes, n)
    assert interval is not None
    assert 0.0 <= interval.low <= successes / n <= interval.high <= 1.0


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60))
def test_mcnemar_is_symmetric_and_a_probability(b: int, c: int) -> None:
    assert mcnemar(b, c).p_value == pytest.approx(mcnemar(c, b).p_value)
    assert 0.0 < mcnemar(b, c).p_value <= 1.0
