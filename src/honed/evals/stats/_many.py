"""Many variants at once: every summary, and every variant against a baseline, from shared resamples.

All variants are paired on the cases they have in common (the cases any variant lacks are dropped and
listed per variant). One bootstrap draw of those cases and one set of random sign assignments then serve
every column: one BLAS product per chunk gives all variants' and all differences' resampled means. The
numbers equal `summary` and `compare` called one by one on the common cases with the same seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from honed.errors import InvalidInputError

from ._matrix import ScoreMatrix
from ._paired import Comparison, build_comparison
from ._resample import bootstrap_means, sign_flip_pvalues
from ._result import Result
from ._summary import VariantSummary, build_summary, check_options


@dataclass(frozen=True)
class ManyResult(Result):
    """Summaries of all variants and comparisons of each non-baseline variant against `baseline`.

    n_cases: the cases shared by all variants (the ones every number uses); dropped: per variant, the case
    ids it had that some other variant lacked.
    """

    baseline: str
    n_cases: int
    dropped: dict[str, tuple[str, ...]]
    summaries: dict[str, VariantSummary]
    comparisons: dict[str, Comparison]


def _common(
    variants: Mapping[str, ScoreMatrix], baseline: str
) -> tuple[dict[str, ScoreMatrix], dict[str, tuple[str, ...]]]:
    ids = variants[baseline].case_ids
    if all(m.case_ids == ids for m in variants.values()):
        return dict(variants), {name: () for name in variants}
    shared = set(ids).intersection(*(m.case_ids for m in variants.values()))
    order = [case for case in ids if case in shared]
    aligned, dropped = {}, {}
    for name, matrix in variants.items():
        row = {case: i for i, case in enumerate(matrix.case_ids)}
        aligned[name] = matrix.subset(np.array([row[case] for case in order], dtype=np.intp))
        dropped[name] = tuple(case for case in matrix.case_ids if case not in shared)
    return aligned, dropped


def many(
    variants: Mapping[str, ScoreMatrix],
    baseline: str,
    *,
    confidence: float = 0.95,
    power: float = 0.8,
    n_boot: int = 10_000,
    n_perm: int = 10_000,
    seed: int = 0,
) -> ManyResult:
    """Summaries for all variants and comparisons of each against `baseline`, vectorised across variants."""
    check_options(confidence, n_boot, n_perm)
    if baseline not in variants:
        raise InvalidInputError(
            f"baseline {baseline!r} is not among the variants", hint=f"one of {sorted(variants)}"
        )
    aligned, dropped = _common(variants, baseline)
    names = list(aligned)
    others = [name for name in names if name != baseline]
    means = np.column_stack([aligned[name].case_means() for name in names])
    diffs = means[:, [names.index(o) for o in others]] - means[:, [names.index(baseline)]]
    columns = np.column_stack([means, diffs])
    boot = bootstrap_means(columns, ~np.isnan(columns), n_boot=n_boot, seed=seed)
    pvalues, tests = sign_flip_pvalues(diffs, ~np.isnan(diffs), n_perm=n_perm, seed=seed)
    summaries = {
        name: build_summary(
            aligned[name], means[:, j], boot[:, j], confidence=confidence, n_boot=n_boot, seed=seed
        )
        for j, name in enumerate(names)
    }
    comparisons = {
        name: build_comparison(
            aligned[baseline],
            aligned[name],
            boot[:, len(names) + j],
            float(pvalues[j]),
            tests[j],
            unpaired=(dropped[baseline], dropped[name]),
            confidence=confidence,
            power=power,
            n_boot=n_boot,
            n_perm=n_perm,
            seed=seed,
        )
        for j, name in enumerate(others)
    }
    n_cases = aligned[baseline].n_cases
    return ManyResult(baseline, n_cases, dropped, summaries, comparisons)
