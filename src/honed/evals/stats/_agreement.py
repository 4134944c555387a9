"""How far a judge can be trusted: agreement with itself (sampled N times) and with human labels.

- Percent agreement: the share of a judge's samples on an item that equal the item's most common label,
  averaged over items. Easy to read, but high whenever one label dominates, hence the kappas.
- Cohen's kappa (two raters, e.g. judge vs human): (p_o - p_e) / (1 - p_e), observed agreement corrected for
  the agreement expected by chance from each rater's own label frequencies. Weighted kappa (Cohen 1968) for
  ordinal labels: 1 - sum(w * O) / sum(w * E) with disagreement weights w_ij = |i - j| / (k - 1) ("linear")
  or ((i - j) / (k - 1))^2 ("quadratic"), O the observed and E the chance-expected table; near misses cost
  less than far ones. With unit weights off the diagonal it is the plain kappa.
- Fleiss' kappa (Fleiss 1971; N ratings per item, any raters): P_bar, the mean pairwise agreement within
  items, against P_e = sum_j p_j^2 from the overall label shares. Items with fewer than two ratings carry no
  agreement and are skipped; a varying number of ratings per item uses the usual per-item generalisation.

A kappa is None when it is undefined: chance agreement is already perfect (everyone used one label).
Missing labels (None or NaN) are excluded and counted, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from honed.errors import InvalidInputError

from ._flaky import repeat_std
from ._matrix import FloatArray, ScoreMatrix
from ._result import Result

Weighting = Literal["linear", "quadratic"]
IntArray = npt.NDArray[np.int64]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _order(
    values: Sequence[Hashable], labels: Sequence[Hashable] | None, ordinal: bool
) -> tuple[Hashable, ...]:
    if labels is not None:
        unknown = set(values) - set(labels)
        if unknown:
            raise InvalidInputError(f"labels not in the given label list: {sorted(map(repr, unknown))}")
        return tuple(labels)
    seen = tuple(dict.fromkeys(values))
    try:
        return tuple(sorted(seen))  # type: ignore[type-var]
    except TypeError:
        if ordinal:
            raise InvalidInputError(
                "weighted kappa needs ordered labels", hint="pass labels=[...] from lowest to highest"
            ) from None
        return seen


def _pairs(
    judge: Sequence[Hashable], human: Sequence[Hashable]
) -> tuple[list[Hashable], list[Hashable], int]:
    if len(judge) != len(human):
        raise InvalidInputError(
            f"{len(judge)} judge labels for {len(human)} human labels", hint="one each per item"
        )
    kept = [(j, h) for j, h in zip(judge, human, strict=True) if not _missing(j) and not _missing(h)]
    return [j for j, _ in kept], [h for _, h in kept], len(judge) - len(kept)


def confusion_matrix(
    judge: Sequence[Hashable], human: Sequence[Hashable], *, labels: Sequence[Hashable] | None = None
) -> tuple[IntArray, tuple[Hashable, ...]]:
    """Counts table: rows are the judge's labels, columns the human's, in the order returned."""
    j, h, _ = _pairs(judge, human)
    order = _order(j + h, labels, ordinal=False)
    index = {label: i for i, label in enumerate(order)}
    table = np.zeros((len(order), len(order)), dtype=np.int64)
    np.add.at(table, ([index[x] for x in j], [index[x] for x in h]), 1)
    return table, order


def kappa_from_table(table: npt.ArrayLike, *, weighted: Weighting | None = None) -> float | None:
    """Cohen's kappa (optionally weighted) of a square counts table in label order."""
    observed = np.asarray(table, dtype=np.float64)
    k = observed.shape[0]
    n = observed.sum()
    if n == 0 or k < 2:
        return None
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    gap = np.abs(np.subtract.outer(np.arange(k), np.arange(k))) / (k - 1)
    weights = {None: (gap > 0).astype(np.float64), "linear": gap, "quadratic": gap**2}[weighted]
    chance = float((weights * expected).sum())
    return None if chance <= 1e-12 * n else 1.0 - float((weights * observed).sum()) / chance


def cohen_kappa(
    judge: Sequence[Hashable],
    human: Sequence[Hashable],
    *,
    weighted: Weighting | None = None,
    labels: Sequence[Hashable] | None = None,
) -> float | None:
    """Cohen's kappa between two raters; `weighted` for ordinal labels (ordered by `labels`, else sorted)."""
    j, h, _ = _pairs(judge, human)
    order = _order(j + h, labels, ordinal=weighted is not None)
    return kappa_from_table(confusion_matrix(j, h, labels=order)[0], weighted=weighted)


def accuracy(judge: Sequence[Hashable], human: Sequence[Hashable]) -> float | None:
    """Share of items (with both labels present) where the judge's label equals the human's."""
    j, h, _ = _pairs(judge, human)
    return sum(a == b for a, b in zip(j, h, strict=True)) / len(j) if j else None


@dataclass(frozen=True)
class Calibration(Result):
    """A judge against human labels. confusion[i][k]: items the judge called labels[i], humans labels[k]."""

    n: int
    n_missing: int
    labels: tuple[Hashable, ...]
    accuracy: float | None
    kappa: float | None
    weighted: str | None
    confusion: tuple[tuple[int, ...], ...]


def calibration(
    judge: Sequence[Hashable],
    human: Sequence[Hashable],
    *,
    weighted: Weighting | None = None,
    labels: Sequence[Hashable] | None = None,
) -> Calibration:
    """Accuracy, Cohen's kappa and the confusion matrix of a judge against human labels."""
    j, h, missing = _pairs(judge, human)
    order = _order(j + h, labels, ordinal=weighted is not None)
    table, _ = confusion_matrix(j, h, labels=order)
    return Calibration(
        n=len(j),
        n_missing=missing,
        labels=order,
        accuracy=accuracy(j, h),
        kappa=kappa_from_table(table, weighted=weighted),
        weighted=weighted,
        confusion=tuple(tuple(int(x) for x in row) for row in table),
    )


def fleiss_kappa(counts: npt.ArrayLike) -> float | None:
    """Fleiss' kappa from a table counts[item, category] of how many ratings put the item in the category."""
    table = np.asarray(counts, dtype=np.float64)
    if table.ndim != 2 or (table < 0).any():
        raise InvalidInputError("counts must be a 2-D table of non-negative counts (items x categories)")
    per_item = table.sum(axis=1)
    table, per_item = table[per_item >= 2], per_item[per_item >= 2]
    if table.shape[0] == 0:
        return None
    agreement = ((table**2).sum(axis=1) - per_item) / (per_item * (per_item - 1))
    shares = table.sum(axis=0) / per_item.sum()
    chance = float((shares**2).sum())
    return None if chance >= 1.0 - 1e-12 else (float(agreement.mean()) - chance) / (1.0 - chance)


@dataclass(frozen=True)
class JudgeAgreement(Result):
    """A judge sampled several times per item: how often it agrees with itself.

    percent_agreement: mean share of an item's samples equal to its most common label; unanimous: share of
    items where all samples agree. Items with fewer than two samples are skipped (n_skipped).
    """

    n_items: int
    n_skipped: int
    n_samples: int
    percent_agreement: float | None
    unanimous: float | None
    fleiss_kappa: float | None
    labels: tuple[Hashable, ...]


def judge_agreement(samples: Sequence[Sequence[Hashable]]) -> JudgeAgreement:
    """Self-agreement of a judge from its labels per item (one list of N samples each; None: failed)."""
    rows = [[x for x in row if not _missing(x)] for row in samples]
    order = _order([x for row in rows for x in row], None, ordinal=False)
    index = {label: i for i, label in enumerate(order)}
    counts = np.zeros((len(rows), len(order)))
    for i, row in enumerate(rows):
        np.add.at(counts[i], [index[x] for x in row], 1.0)
    per_item = counts.sum(axis=1)
    kept = counts[per_item >= 2]
    top = kept.max(axis=1, initial=0.0) / np.maximum(kept.sum(axis=1), 1.0)
    return JudgeAgreement(
        n_items=int(kept.shape[0]),
        n_skipped=int(len(rows) - kept.shape[0]),
        n_samples=int(per_item.max(initial=0.0)),
        percent_agreement=float(top.mean()) if top.size else None,
        unanimous=float((top == 1.0).mean()) if top.size else None,
        fleiss_kappa=fleiss_kappa(kept) if kept.size else None,
        labels=order,
    )


@dataclass(frozen=True)
class ScoreSpread(Result):
    """A judge's numeric scores sampled several times per item: the per-item standard deviation."""

    n_items: int
    mean_item_std: float | None
    max_item_std: float | None


def score_spread(samples: npt.ArrayLike) -> ScoreSpread:
    """Spread of numeric judge scores, samples[item, sample] (NaN: failed); items need two valid samples."""
    spread: FloatArray = repeat_std(ScoreMatrix.from_array(samples))
    spread = spread[~np.isnan(spread)]
    return ScoreSpread(
        n_items=int(spread.size),
        mean_item_std=float(spread.mean()) if spread.size else None,
        max_item_std=float(spread.max()) if spread.size else None,
    )
