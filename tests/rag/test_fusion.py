"""Reciprocal rank fusion against values computed by hand, and the alpha knob of hybrid search."""

from __future__ import annotations

import pytest

from honed.errors import InvalidInputError
from honed.rag.retrieve.fusion import hybrid_weights, reciprocal_rank_fusion

DENSE = ["a", "b", "c"]
BM25 = ["c", "a", "d"]


def test_equal_weights_by_hand() -> None:
    fused = reciprocal_rank_fusion([DENSE, BM25])
    # a: 1/61 + 1/62, c: 1/63 + 1/61, b: 1/62, d: 1/63
    assert [i for i, _ in fused] == ["a", "c", "b", "d"]
    assert [s for _, s in fused] == pytest.approx([0.0325224748, 0.0322664587, 0.0161290323, 0.0158730159])


def test_weights_and_k_by_hand() -> None:
    fused = reciprocal_rank_fusion([DENSE, BM25], weights=[0.25, 0.75])
    # c: .25/63 + .75/61, a: .25/61 + .75/62, d: .75/63, b: .25/62
    assert [i for i, _ in fused] == ["c", "a", "d", "b"]
    assert [s for _, s in fused] == pytest.approx([0.0162633358, 0.0161951349, 0.0119047619, 0.0040322581])
    assert reciprocal_rank_fusion([["a", "b"]], k=0) == [("a", 1.0), ("b", 0.5)]


def test_ties_are_broken_by_id_whatever_the_input_order() -> None:
    one = reciprocal_rank_fusion([["y", "x"], ["x", "y"]])
    two = reciprocal_rank_fusion([["x", "y"], ["y", "x"]])
    assert one == two
    assert [i for i, _ in one] == ["x", "y"] and one[0][1] == one[1][1]


def test_repeats_empty_lists_and_zero_weights() -> None:
    # A repeated id counts once, at its best rank; the ranks of the others do not move.
    repeated = reciprocal_rank_fusion([["a", "a", "b"]])
    assert [i for i, _ in repeated] == ["a", "b"]
    assert [s for _, s in repeated] == pytest.approx([1 / 61, 1 / 63])
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], ["b"]]) == [("b", 1 / 61)]
    # alpha = 0: BM25 only, so ids only the dense list found drop out.
    assert [i for i, _ in reciprocal_rank_fusion([DENSE, BM25], weights=hybrid_weights(0))] == ["c", "a", "d"]
    assert [i for i, _ in reciprocal_rank_fusion([DENSE, BM25], weights=hybrid_weights(1))] == DENSE


def test_hybrid_weights() -> None:
    assert hybrid_weights(1) == (1.0, 0.0)
    assert hybrid_weights(0.0) == (0.0, 1.0)
    assert hybrid_weights(0.3) == pytest.approx((0.3, 0.7))
    for bad in (-0.1, 1.5, float("nan"), True, "0.5"):
        with pytest.raises(InvalidInputError, match="from 0 to 1") as error:
            hybrid_weights(bad)  # type: ignore[arg-type]
        assert "BM25 only" in str(error.value)


def test_bad_fusion_input() -> None:
    with pytest.raises(InvalidInputError, match="2 rankings but 1 weights"):
        reciprocal_rank_fusion([DENSE, BM25], weights=[1.0])
    with pytest.raises(InvalidInputError, match="finite and >= 0"):
        reciprocal_rank_fusion([DENSE], weights=[-1.0])
    with pytest.raises(InvalidInputError, match="k must be"):
        reciprocal_rank_fusion([DENSE], k=-1)
    with pytest.raises(InvalidInputError, match="not strings"):
        reciprocal_rank_fusion(["abc"])
