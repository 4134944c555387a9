"""Exact and near-duplicate detection over case inputs, and the nearest neighbour in another set.

Exact duplicates compare the normalised text of the inputs (case folded, whitespace collapsed). Near
duplicates compare unit-length embeddings by cosine similarity: rows are scanned oldest first and a row
is a duplicate when it is within the threshold of an *earlier kept* row, so the oldest of a group stays
and a chain a~b~c with a and c far apart keeps a and c. The similarity matrix is computed in row blocks
(O(n^2) work, O(block * n) memory), which handles thousands of rows in well under a second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from honed.rag.types import Vectors

BLOCK = 1024


def input_text(inputs: Mapping[str, Any]) -> str:
    """The text of a case's inputs: one input is its value; several are `name: value` lines."""
    if len(inputs) == 1:
        return value_text(next(iter(inputs.values())))
    return "\n".join(f"{name}: {value_text(value)}" for name, value in inputs.items())


def value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def normalise(text: str) -> str:
    """Case folded, whitespace collapsed: what counts as "the same text"."""
    return " ".join(text.casefold().split())


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Row `index` duplicates the earlier kept row `of` (similarity 1.0 for an exact duplicate)."""

    index: int
    of: int
    similarity: float


def exact_duplicates(texts: Sequence[str]) -> list[Duplicate]:
    """Rows whose normalised text equals an earlier row's, each pointing at the first such row."""
    first: dict[str, int] = {}
    out: list[Duplicate] = []
    for i, text in enumerate(texts):
        key = normalise(text)
        if key in first:
            out.append(Duplicate(i, first[key], 1.0))
        else:
            first[key] = i
    return out


def near_duplicates(vectors: Vectors, threshold: float, *, block: int = BLOCK) -> list[Duplicate]:
    """Rows within cosine `threshold` of an earlier kept row (rows of `vectors` are unit length)."""
    n = len(vectors)
    # Candidate earlier neighbours per row; the greedy pass below needs only these, not the full matrix.
    candidates: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = vectors[start:stop] @ vectors[:stop].T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if c < i:
                candidates[i].append((c, float(sims[r, c])))
    kept = np.ones(n, dtype=bool)
    out: list[Duplicate] = []
    for i in range(n):
        live = [(c, s) for c, s in candidates[i] if kept[c]]
        if live:
            of, similarity = max(live, key=lambda cs: (cs[1], -cs[0]))
            kept[i] = False
            out.append(Duplicate(i, of, min(similarity, 1.0)))
    return out


def nearest(queries: Vectors, pool: Vectors, *, block: int = BLOCK) -> tuple[list[int], list[float]]:
    """For each query row, the index of its most similar `pool` row and that cosine similarity."""
    if len(pool) == 0:
        return [-1] * len(queries), [0.0] * len(queries)
    index: list[int] = []
    score: list[float] = []
    for start in range(0, len(queries), block):
        sims = queries[start : start + block] @ pool.T
        best = sims.argmax(axis=1)
        index.extend(best.tolist())
        score.extend(float(min(s, 1.0)) for s in sims[np.arange(len(best)), best])
    return index, score
