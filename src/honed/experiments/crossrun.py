"""Two runs compared: one variant of each, paired over the cases both ran of the same dataset version.

A run compares its own variants (`analyse`); a team also asks how tonight's run did against last week's,
on the same cases. This pairs variant A of run A with variant B of run B per evaluator both runs have,
with the same statistics as `honed experiments compare` (`honed.evals.stats.many`: means with bootstrap
CIs, the paired permutation test, the verdict, the cases that regressed or improved). Runs over different
dataset versions are refused: their cases are not the same cases, so pairing them would be noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from honed.errors import InvalidInputError
from honed.evals.stats import ManyResult, many
from honed.experiments.analysis import find_variant, run_evaluators, score_matrix

if TYPE_CHECKING:
    from honed.store import Store
    from honed.store.runs import Run


@dataclass(frozen=True)
class Side:
    run: Run
    variant: str

    @property
    def label(self) -> str:
        """How the side is named in the statistics: `RUN:VARIANT`."""
        return f"{self.run.id}:{self.variant}"


@dataclass(frozen=True)
class RunComparison:
    """B against A per evaluator both runs scored (`stats[evaluator]`: a `ManyResult` with A as baseline)."""

    a: Side
    b: Side
    dataset: str
    evaluators: list[str]
    stats: dict[str, ManyResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": {"run": self.a.run.id, "variant": self.a.variant},
            "b": {"run": self.b.run.id, "variant": self.b.variant},
            "dataset": self.dataset,
            "evaluators": {k: v.to_dict() for k, v in self.stats.items()},
        }


def compare_runs(
    store: Store,
    run_a: str,
    run_b: str,
    *,
    variant_a: str | None = None,
    variant_b: str | None = None,
    n_boot: int = 10_000,
    seed: int = 0,
) -> RunComparison:
    """Variant `variant_b` of run B against `variant_a` of run A (ids or prompt references; default: each
    run's first variant), paired over their shared cases."""
    first, second = store.runs.get(run_a), store.runs.get(run_b)
    hashes = [(r.spec.get("dataset") or {}).get("hash") for r in (first, second)]
    if hashes[0] != hashes[1]:
        refs = [(r.spec.get("dataset") or {}).get("ref", "?") for r in (first, second)]
        raise InvalidInputError(
            f"runs {first.id} and {second.id} ran different dataset versions ({refs[0]} and {refs[1]})",
            hint="compare runs of the same dataset version: a paired comparison needs the same cases",
        )
    a = Side(first, _variant(store, first, variant_a))
    b = Side(second, _variant(store, second, variant_b))
    if a.label == b.label:
        raise InvalidInputError(f"both sides are {a.label}", hint="pick two different runs or variants")
    evaluators = [e for e in run_evaluators(store, first) if e in set(run_evaluators(store, second))]
    if not evaluators:
        raise InvalidInputError(
            f"runs {first.id} and {second.id} share no evaluator", hint="compare runs scored the same way"
        )
    matrices: dict[str, dict[str, Any]] = {ev: {} for ev in evaluators}
    for side in (a, b):
        repeats = int(side.run.spec.get("repeats", 1))
        with store.runs.snapshot(side.run.id) as snapshot:
            case_ids = snapshot.case_ids()
            for ev in evaluators:
                matrices[ev][side.label] = score_matrix(snapshot, ev, side.variant, case_ids, repeats)
    stats = {ev: many(matrices[ev], a.label, n_boot=n_boot, n_perm=n_boot, seed=seed) for ev in evaluators}
    dataset = str((first.spec.get("dataset") or {}).get("ref", "?"))
    return RunComparison(a, b, dataset, evaluators, stats)


def _variant(store: Store, run: Run, ref: str | None) -> str:
    if ref is None:
        return str(run.spec["variants"][0]["id"])
    return find_variant(store, run, ref)
