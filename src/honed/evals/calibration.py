"""Judge calibration: how well an LLM judge's scores match human labels on the same items.

Before a judge's numbers are trusted, some of its items are labelled by people (`honed review`) and the two
are compared: accuracy (exact agreement), Cohen's kappa (agreement beyond chance), weighted kappa for
ordinal scales (a 4 against a human 5 is a near miss, not a plain miss), the confusion matrix, and for
ordinal scales the mean absolute error. The arithmetic is `honed.evals.stats`; this module lines the two
sides up by item id and turns scores into categories.

A judge's averaged score (3.67 from three samples) is rounded to the nearest category (halves up); on
pass/fail, `passed` decides. Items the judge could not score and items missing on either side are
counted, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from honed.errors import InvalidInputError
from honed.evals import stats
from honed.evals.evaluators.base import Score
from honed.evals.evaluators.scale import Scale

Label = Score | float | int | bool | None


@dataclass(frozen=True)
class CalibrationReport:
    """A judge against human labels. `confusion[i][k]`: items the judge put in `labels[i]` and people in
    `labels[k]`. `kappa` is weighted when `weighted` is set; `unweighted_kappa` is always the plain one."""

    scale: str
    n: int
    accuracy: float | None
    kappa: float | None
    weighted: str | None
    unweighted_kappa: float | None
    mean_abs_error: float | None
    labels: tuple[float, ...]
    confusion: tuple[tuple[int, ...], ...]
    n_judge_errors: int
    n_unlabelled: int
    n_unjudged: int

    def to_dict(self) -> dict[str, Any]:
        # JSON's arrays as lists; every other field as it is, in the order declared.
        return {
            **asdict(self),
            "labels": list(self.labels),
            "confusion": [list(row) for row in self.confusion],
        }

    def summary(self) -> str:
        def fmt(x: float | None) -> str:
            return "undefined" if x is None else f"{x:.3f}"

        kind = f"{self.weighted}-weighted kappa" if self.weighted else "kappa"
        return f"n={self.n} accuracy={fmt(self.accuracy)} {kind}={fmt(self.kappa)} on {self.scale}"


def _category(label: Label, scale: Scale) -> float | None:
    """A score or label as a category of the scale; None when there is none (an error, a missing label)."""
    if isinstance(label, Score):
        if not label.ok or label.value is None:
            return None
        if scale.pass_fail and label.passed is not None:
            return 1.0 if label.passed else 0.0
        value: float = label.value
    elif label is None:
        return None
    else:
        value = float(label)
    if scale.pass_fail:
        return 1.0 if value > 0.5 else 0.0
    if not scale.low - 0.5 <= value <= scale.high + 0.5:
        raise InvalidInputError(
            f"value {value} is not on the scale {scale}", hint="pass the scale it was given on"
        )
    return scale.category(value)


def _keyed(values: Mapping[str, Label] | Sequence[Label]) -> dict[str, Label]:
    if isinstance(values, Mapping):
        return {str(k): v for k, v in values.items()}
    return {str(i): v for i, v in enumerate(values)}


def calibrate(
    judge: Mapping[str, Label] | Sequence[Label],
    human: Mapping[str, Label] | Sequence[Label],
    *,
    scale: Scale | str | Sequence[int] = "1-5",
    weighted: Literal["linear", "quadratic"] | None = "quadratic",
) -> CalibrationReport:
    """Compare judge scores with human labels for the same items (mappings by item id, or equal-length
    sequences in the same order). `weighted` applies to ordinal scales only (pass/fail has no near miss)."""
    if not isinstance(judge, Mapping) and not isinstance(human, Mapping) and len(judge) != len(human):
        raise InvalidInputError(
            f"{len(judge)} judge scores for {len(human)} human labels",
            hint="one each per item, in the same order",
        )
    sc = Scale.parse(scale)
    j_raw, h_raw = _keyed(judge), _keyed(human)
    ids = sorted(set(j_raw) & set(h_raw))
    j_cats = {i: _category(j_raw[i], sc) for i in ids}
    h_cats = {i: _category(h_raw[i], sc) for i in ids}
    judged_ids = set(j_raw)
    labelled_ids = {i for i, v in h_raw.items() if _category(v, sc) is not None}
    n_judge_errors = sum(1 for i in ids if j_cats[i] is None and h_cats[i] is not None)
    j_list: list[float] = []
    h_list: list[float] = []
    for i in ids:
        jc, hc = j_cats[i], h_cats[i]
        if jc is not None and hc is not None:
            j_list.append(jc)
            h_list.append(hc)
    labels = tuple(sc.categories()) if not sc.pass_fail else (0.0, 1.0)
    weighting = weighted if sc.ordinal else None
    result = stats.calibration(j_list, h_list, weighted=weighting, labels=labels)
    plain = result.kappa if weighting is None else stats.cohen_kappa(j_list, h_list, labels=labels)
    mae = (
        sum(abs(a - b) for a, b in zip(j_list, h_list, strict=True)) / len(j_list)
        if j_list and sc.ordinal
        else None
    )
    return CalibrationReport(
        scale=str(sc),
        n=result.n,
        accuracy=result.accuracy,
        kappa=result.kappa,
        weighted=weighting,
        unweighted_kappa=plain,
        mean_abs_error=mae,
        labels=labels,
        confusion=result.confusion,
        n_judge_errors=n_judge_errors,
        n_unlabelled=len(judged_ids - labelled_ids),
        n_unjudged=len(labelled_ids - judged_ids),
    )
