"""Agreement statistics against worked examples (Wikipedia's Cohen and Fleiss examples, hand-derived weighted
kappa) and properties."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from honed.errors import InvalidInputError
from honed.evals.stats import (
    accuracy,
    calibration,
    cohen_kappa,
    confusion_matrix,
    fleiss_kappa,
    judge_agreement,
    kappa_from_table,
    score_spread,
)


def expand(table: list[list[int]], labels: list[str]) -> tuple[list[str], list[str]]:
    """Two label lists whose confusion matrix (rows: first rater) is `table`."""
    first: list[str] = []
    second: list[str] = []
    for i, row in enumerate(table):
        for k, count in enumerate(row):
            first += [labels[i]] * count
            second += [labels[k]] * count
    return first, second


def test_cohen_kappa_wikipedia_example() -> None:
    """Wikipedia, "Cohen's kappa": 50 proposals, A and B both yes 20, A yes B no 5, A no B yes 10, both no 15.

    p_o = (20 + 15) / 50 = 0.7; A says yes 25/50 = 0.5, B 30/50 = 0.6; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5;
    kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    """
    a, b = expand([[20, 5], [10, 15]], ["yes", "no"])
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert accuracy(a, b) == pytest.approx(0.7)


def test_weighted_kappa_hand_example() -> None:
    """Three ordered labels, observed table O = [[2,1,0],[1,3,1],[0,1,1]] (n = 10, margins 3, 5, 2 both ways).

    Chance table E = outer(margins) / 10 = [[.9,1.5,.6],[1.5,2.5,1],[.6,1,.4]].
    Unweighted: p_o = 6/10, p_e = (9 + 25 + 4) / 100 = 0.38, kappa = 0.22 / 0.62 = 11/31.
    Linear weights |i-k|/2: sum(wO) = 0.5 * 4 = 2, sum(wE) = 0.5 * 5 + 1.2 = 3.7, kappa = 1 - 2/3.7 = 17/37.
    Quadratic weights ((i-k)/2)^2: sum(wO) = 0.25 * 4 = 1, sum(wE) = 0.25 * 5 + 1.2 = 2.45, kappa = 29/49.
    """
    a, b = expand([[2, 1, 0], [1, 3, 1], [0, 1, 1]], ["low", "mid", "high"])
    order = ["low", "mid", "high"]
    assert cohen_kappa(a, b, labels=order) == pytest.approx(11 / 31)
    assert cohen_kappa(a, b, weighted="linear", labels=order) == pytest.approx(17 / 37)
    assert cohen_kappa(a, b, weighted="quadratic", labels=order) == pytest.approx(29 / 49)
    numeric_a, numeric_b = expand([[2, 1, 0], [1, 3, 1], [0, 1, 1]], ["1", "2", "3"])
    assert cohen_kappa(numeric_a, numeric_b, weighted="linear") == pytest.approx(17 / 37)  # sorted order


def test_weighted_kappa_depends_on_the_order() -> None:
    a, b = expand([[2, 1, 0], [1, 3, 1], [0, 1, 1]], ["low", "mid", "high"])
    # Sorted alphabetically the scale would be high < low < mid: a different (wrong) answer.
    assert cohen_kappa(a, b, weighted="linear") != pytest.approx(17 / 37)
    with pytest.raises(InvalidInputError):
        cohen_kappa([1, "x"], ["x", 1], weighted="linear")


def test_fleiss_kappa_fleiss_1971_wikipedia_example() -> None:
    """Wikipedia, "Fleiss' kappa": 10 subjects, 14 raters, 5 categories.

    P_bar = 0.378, p_j = (0.143, 0.200, 0.279, 0.150, 0.229), P_e = sum p_j^2 = 0.213,
    kappa = (0.378 - 0.213) / (1 - 0.213) = 0.210.
    """
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)


def test_judge_agreement_hand_example() -> None:
    """Items [a,a,a], [a,a,b], [a,b,c], [x] (one sample: skipped), [None, a, a] (failure dropped).

    Agreement with the mode: 1, 2/3, 1/3, 1 -> mean 0.75; unanimous: 2 of 4.
    Fleiss: P_i = 1, 1/3, 0, 1 (n_i = 3, 3, 3, 2): P_bar = 7/12; label shares a 8/11, b 2/11, c 1/11:
    P_e = (64 + 4 + 1) / 121 = 69/121; kappa = (7/12 - 69/121) / (1 - 69/121) = (19/1452) / (52/121) = 19/624.
    """
    result = judge_agreement([["a", "a", "a"], ["a", "a", "b"], ["a", "b", "c"], ["x"], [None, "a", "a"]])
    assert result.n_items == 4 and result.n_skipped == 1 and result.n_samples == 3
    assert result.percent_agreement == pytest.approx(0.75)
    assert result.unanimous == pytest.approx(0.5)
    assert result.fleiss_kappa == pytest.approx(19 / 624)


def test_judge_agreement_of_a_judge_that_always_agrees_with_itself() -> None:
    result = judge_agreement([["pass"] * 5, ["fail"] * 5, ["pass"] * 5])
    assert result.percent_agreement == 1.0 and result.unanimous == 1.0 and result.fleiss_kappa == 1.0
    one_label = judge_agreement([["pass"] * 3, ["pass"] * 3])
    assert one_label.fleiss_kappa is None  # undefined: chance agreement is already perfect


def test_score_spread() -> None:
    result = score_spread([[1.0, 1.0, 1.0], [0.0, 1.0, np.nan], [0.5, np.nan, np.nan]])
    assert result.n_items == 2
    assert result.mean_item_std == pytest.approx((0 + np.std([0.0, 1.0], ddof=1)) / 2)
    assert result.max_item_std == pytest.approx(np.std([0.0, 1.0], ddof=1))


def test_calibration_reports_accuracy_kappa_confusion_and_missing() -> None:
    judge = ["yes", "yes", "no", None, "no", "yes"]
    human = ["yes", "no", "no", "yes", "no", "yes"]
    result = calibration(judge, human)
    assert (result.n, result.n_missing) == (5, 1)
    assert result.labels == ("no", "yes")
    assert result.confusion == ((2, 0), (1, 2))  # rows: judge; columns: human
    assert result.accuracy == pytest.approx(4 / 5)
    # p_o = 0.8; judge no 2/5 yes 3/5, human no 3/5 yes 2/5; p_e = 0.24 + 0.24 = 0.48; kappa = 0.32 / 0.52
    assert result.kappa == pytest.approx(0.32 / 0.52)
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["confusion"] == [[2, 0], [1, 2]]


def test_confusion_matrix_and_bad_input() -> None:
    table, labels = confusion_matrix([1, 2, 2], [1, 2, 1], labels=[1, 2, 3])
    assert labels == (1, 2, 3) and table.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    with pytest.raises(InvalidInputError):
        confusion_matrix([1, 4], [1, 2], labels=[1, 2])
    with pytest.raises(InvalidInputError):
        cohen_kappa([1, 2], [1])
    with pytest.raises(InvalidInputError):
        fleiss_kappa([[-1, 2]])
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None  # one label: kappa undefined, not 1 or 0
    assert accuracy([None], ["a"]) is None


labels_strategy = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(labels_strategy)
def test_kappa_properties(pairs: list[tuple[int, int]]) -> None:
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    for weighted in (None, "linear", "quadratic"):
        forward = cohen_kappa(a, b, weighted=weighted, labels=[0, 1, 2, 3])
        backward = cohen_kappa(b, a, weighted=weighted, labels=[0, 1, 2, 3])
        assert (forward is None) == (backward is None)
        if forward is not None:
            assert backward == pytest.approx(forward)
            assert -1.0 - 1e-9 <= forward <= 1.0 + 1e-9
    if len(set(a)) > 1:
        assert cohen_kappa(a, a) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=40))
def test_with_two_labels_all_weightings_agree(pairs: list[tuple[bool, bool]]) -> None:
    table = np.zeros((2, 2))
    for x, y in pairs:
        table[int(x), int(y)] += 1
    plain = kappa_from_table(table)
    for weighted in ("linear", "quadratic"):
        other = kappa_from_table(table, weighted=weighted)  # type: ignore[arg-type]
        assert (plain is None and other is None) or plain == pytest.approx(other)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abc"), min_size=2, max_size=6), min_size=1, max_size=20))
def test_fleiss_kappa_is_at_most_one_and_percent_agreement_is_a_share(rows: list[list[str]]) -> None:
    result = judge_agreement(rows)
    assert result.percent_agreement is not None and 1 / 3 - 1e-12 <= result.percent_agreement <= 1.0
    if result.fleiss_kappa is not None:
        assert result.fleiss_kappa <= 1.0 + 1e-9
