"""From a run's rows to numbers a person can trust: per-variant summaries and paired comparisons.

For each evaluator, each variant's scores become a (cases x repeats) matrix, errored calls and unparseable
judgments as NaN (excluded and counted, never zeros), and `honed.evals.stats.many` compares every variant
with the baseline on the same cases. Cost, tokens and latency are summarised from the result rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from honed.errors import InvalidInputError
from honed.evals.stats import ManyResult, ScoreMatrix, many

if TYPE_CHECKING:
    from honed.store import Store
    from honed.store.runs import Run


@dataclass(frozen=True)
class Usage:
    calls: int
    errors: int
    cached: int
    cost_usd: float | None
    input_tokens: int
    output_tokens: int
    mean_latency_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RunReport:
    run: Run
    variants: list[str]
    baseline: str
    evaluators: list[str]
    usage: dict[str, Usage]
    stats: dict[str, ManyResult]  # by evaluator

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": {
                "id": self.run.id,
                "name": self.run.name,
                "status": self.run.status,
                "created_at": self.run.created_at.isoformat(),
                "spec": self.run.spec,
            },
            "baseline": self.baseline,
            "variants": self.variants,
            "usage": {k: v.to_dict() for k, v in self.usage.items()},
            "evaluators": {k: v.to_dict() for k, v in self.stats.items()},
        }


def analyse(
    store: Store, run_ref: str, *, baseline: str | None = None, n_boot: int = 10_000, seed: int = 0
) -> RunReport:
    run = store.runs.get(run_ref)
    spec = run.spec
    variants = [v["id"] for v in spec["variants"]]
    evaluators = [e["name"] for e in spec["evaluators"]]
    base = baseline or variants[0]
    if base not in variants:
        raise InvalidInputError(
            f"no variant {base!r} in run {run.id}", hint=f"variants: {', '.join(variants)}"
        )
    results = store.runs.results(run.id)
    scores = store.runs.scores(run.id)
    repeats = int(spec["repeats"])
    case_ids = sorted({r["case_id"] for r in results})
    index = {c: i for i, c in enumerate(case_ids)}
    stats: dict[str, ManyResult] = {}
    for ev in evaluators:
        matrices: dict[str, ScoreMatrix] = {}
        for v in variants:
            values = np.full((len(case_ids), repeats), np.nan)
            passed = np.full((len(case_ids), repeats), np.nan)
            any_pass = False
            for s in scores:
                if s["variant"] == v and s["evaluator"] == ev and s["value"] is not None:
                    i, j = index[s["case_id"]], int(s["sample_index"])
                    values[i, j] = float(s["value"])
                    if s["passed"] is not None:
                        passed[i, j] = 1.0 if s["passed"] else 0.0
                        any_pass = True
            matrices[v] = ScoreMatrix(values, tuple(case_ids), passed if any_pass else None)
        stats[ev] = many(matrices, base, n_boot=n_boot, n_perm=n_boot, seed=seed)
    return RunReport(run, variants, base, evaluators, _usage(results, variants), stats)


def _usage(results: list[dict[str, Any]], variants: list[str]) -> dict[str, Usage]:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by[r["variant"]].append(r)
    out: dict[str, Usage] = {}
    for v in variants:
        rows = by.get(v, [])
        ok = [r for r in rows if r["output"] is not None]
        costs = [r["cost_usd"] for r in ok]
        out[v] = Usage(
            calls=len(rows),
            errors=sum(1 for r in rows if r["error"] is not None),
            cached=sum(1 for r in rows if r["cached"]),
            cost_usd=None if any(c is None for c in costs) else float(sum(costs)),
            input_tokens=sum(int(r["input_tokens"]) for r in ok),
            output_tokens=sum(int(r["output_tokens"]) for r in ok),
            mean_latency_s=float(np.mean([r["latency_s"] for r in ok if not r["cached"]]))
            if any(not r["cached"] for r in ok)
            else None,
        )
    return out
