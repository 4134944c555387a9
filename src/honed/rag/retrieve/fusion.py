"""Hybrid retrieval: merging ranked lists from different retrievers (dense vectors, BM25).

Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009) uses ranks only, never the scores:
cosine similarities and BM25 scores live on unrelated scales, and ranks need no calibration. Each list
adds `weight / (k + rank)` to every id it holds (rank 1-based); an id missing from a list gets nothing
from it. `k = 60` is the paper's constant: larger values flatten the difference between top ranks.

`hybrid_weights(alpha)` turns the one knob users tune (alpha = 1: dense only, 0: BM25 only) into the two
list weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from honed.errors import InvalidInputError

__all__ = ["hybrid_weights", "reciprocal_rank_fusion"]

DEFAULT_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], *, weights: Sequence[float] | None = None, k: int = DEFAULT_K
) -> list[tuple[str, float]]:
    """Every id in `rankings` (each best first) with its fused score `sum_i weights[i] / (k + rank_i)`,
    best first; equal scores are ordered by id so the result never depends on input order. An id repeated
    within one list counts at its best rank. Ids whose fused score is 0 (only in zero-weight lists) are
    left out."""
    if isinstance(rankings, str) or any(isinstance(r, str) for r in rankings):
        raise InvalidInputError(
            "rankings must be lists of ids, not strings", hint='e.g. [["d1", "d2"], ["d2"]]'
        )
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise InvalidInputError(f"{len(rankings)} rankings but {len(weights)} weights")
    for weight in weights:
        if not math.isfinite(weight) or weight < 0:
            raise InvalidInputError(f"fusion weights must be finite and >= 0, got {weight!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise InvalidInputError(
            f"the RRF constant k must be a whole number >= 0, got {k!r}", hint="60 is usual"
        )
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[str] = set()
        for rank, item in enumerate(ranking, 1):
            if item in seen:
                continue
            seen.add(item)
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(((i, s) for i, s in fused.items() if s > 0), key=lambda pair: (-pair[1], pair[0]))


def hybrid_weights(alpha: float) -> tuple[float, float]:
    """(dense weight, BM25 weight) for `alpha` in [0, 1]: 1 is dense only, 0 is BM25 only, 0.5 equal."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 <= alpha <= 1.0:
        raise InvalidInputError(
            f"hybrid alpha must be a number from 0 to 1, got {alpha!r}",
            hint="1 = dense vectors only, 0 = BM25 only, 0.5 = both equally",
        )
    return float(alpha), 1.0 - float(alpha)
