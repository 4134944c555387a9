"""Scoring candidates: every evaluation the search makes is an experiment run, on a subset of one split.

A trial runs one or more stored prompt versions on some cases as an ordinary experiment (so it is in
`honed experiments list`, cached and resumable like any run: after a kill the same trial resumes its
unfinished run and the response cache answers what was already asked). Before a trial runs, its calls are
planned (rendered, not sent) and charged to the budget, which refuses a trial that would overrun it.
Scores are remembered per (prompt version, case), so a candidate scored once on a case is not run again
(GEPA re-scores its seed on the dev split, for one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from honed.errors import BudgetExceededError
from honed.experiments import parse_spec, resolve, run_experiment
from honed.experiments.runner import estimate_cost, plan
from honed.hashing import content_hash, short
from honed.run.render import Renderer

if TYPE_CHECKING:
    from honed.datasets import Case, DatasetVersion
    from honed.experiments import Experiment
    from honed.experiments.runner import Progress
    from honed.optimize.prompt.budget import Ledger
    from honed.optimize.prompt.spec import SearchSpec
    from honed.prompts.spec import Prompt
    from honed.workspace import Workspace

__all__ = ["CaseScore", "Trials", "Version"]


@dataclass(frozen=True)
class Version:
    """A stored prompt version the search runs: its reference (`qa@v4`) and content hash."""

    prompt: Prompt
    ref: str
    hash: str


@dataclass(frozen=True)
class CaseScore:
    """The primary evaluator's verdict on one case: `score` None when the call or the evaluator failed."""

    score: float | None
    passed: bool | None
    output: str | None
    reason: str | None
    input_tokens: int


@dataclass
class Trials:
    h: Workspace
    spec: SearchSpec
    dataset: DatasetVersion
    student: str
    ledger: Ledger
    progress: Progress | None = None
    memo: dict[tuple[str, str], CaseScore] = field(default_factory=dict)
    #: experiment runs made, by phase, in order
    runs: list[tuple[str, str]] = field(default_factory=list)
    #: when this process's search began: result rows stored before it were answered by an earlier one
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def plan_usd(self, versions: Sequence[Version], cases: Sequence[Case]) -> tuple[list[str], float]:
        """The request keys of running `versions` on `cases`, and at most what they would cost in USD
        (the part not yet sent; 0 when the budget has no USD limit)."""
        exp = self._experiment("plan", versions, cases)
        with Renderer(self.h, base=exp.base) as renderer:
            calls = plan(exp, set(), renderer)
        keys = [p.request.key() for p in calls]
        if self.ledger.usd is None:
            return keys, 0.0
        fresh = set(self.ledger.new(keys))
        usd = estimate_cost(self.h, [p for p in calls if p.request.key() in fresh])
        if usd is None:
            raise BudgetExceededError(
                f"cannot check the USD budget: no price for {self.student}",
                hint=f'add [prices."{self.student}"] input/output (USD per million tokens) to honed.toml',
            )
        return keys, usd

    def score(
        self,
        phase: str,
        versions: Sequence[Version],
        cases: Sequence[Case],
        *,
        reserve: bool = True,
        keys: tuple[list[str], float] | None = None,
    ) -> dict[str, dict[str, CaseScore]]:
        """Per version hash, per case id, the primary score: remembered ones, the rest run as one
        experiment charged to `phase` (a `BudgetExceededError` before any call when it does not fit)."""
        todo = [v for v in dict((v.hash, v) for v in versions).values() if not self._known(v, cases)]
        if todo:
            planned_keys, usd = keys if keys is not None else self.plan_usd(todo, cases)
            fresh = self.ledger.charge(phase, planned_keys, usd, reserve=reserve)
            self._run(phase, todo, cases, fresh)
        return {v.hash: {c.id: self.memo[v.hash, c.id] for c in cases} for v in versions}

    def mean_tokens(self, version: Version, cases: Sequence[Case]) -> float | None:
        tokens = [
            self.memo[version.hash, c.id].input_tokens for c in cases if (version.hash, c.id) in self.memo
        ]
        return float(np.mean(tokens)) if tokens else None

    def _known(self, version: Version, cases: Sequence[Case]) -> bool:
        return all((version.hash, c.id) in self.memo for c in cases)

    def _experiment(self, phase: str, versions: Sequence[Version], cases: Sequence[Case]) -> Experiment:
        # The cases and versions are in the name, so each trial is its own experiment (resumed by hash).
        versions = list({v.hash: v for v in versions}.values())
        what = short(
            content_hash({"cases": [c.id for c in cases], "versions": [v.hash for v in versions]}), 12
        )
        spec = parse_spec(
            {
                "name": f"{self.spec.name[:150]}.{phase}.{what}",
                "dataset": self.dataset.ref,
                "variants": [
                    {"id": v.hash, "prompt": v.ref, "model": self.student, "params": dict(self.spec.params)}
                    for v in versions
                ],
                "evaluators": [dict(e) for e in self.spec.evaluators],
            },
            source=self.spec.source,
        )
        exp = resolve(self.h, spec, base=self.spec.base)
        return replace(exp, cases=tuple(cases))

    def run_and_record(
        self, phase: str, exp: Experiment, fresh: set[str]
    ) -> tuple[str, list[dict[str, Any]]]:
        """Run `exp` and add each row's call to `phase` (counted when its request is in `fresh`, the
        requests charged as new); returns the run id and its rows."""
        with Renderer(self.h, base=exp.base) as renderer:
            key_of = {(p.variant.id, p.case.id): p.request.key() for p in plan(exp, set(), renderer)}
        run = run_experiment(self.h, exp, progress=self.progress, latency_calls=0)
        self.runs.append((phase, run.id))
        rows = [r for r in self.h.store.runs.results(run.id) if r["sample_index"] == 0]
        for row in rows:
            # A row holds the response cache's key; the budget counts the request's own.
            key = key_of.get((row["variant"], row["case_id"]), "")
            # A resumed run keeps the rows of the process that was killed: answered then, not now.
            earlier = row.get("created_at") is not None and row["created_at"] < self.started
            self.ledger.record(phase, {**row, "cached": bool(row["cached"]) or earlier}, new=key in fresh)
            fresh.discard(key)
        return run.id, rows

    def _run(self, phase: str, versions: Sequence[Version], cases: Sequence[Case], fresh: set[str]) -> None:
        exp = self._experiment(phase, versions, cases)
        run_id, rows = self.run_and_record(phase, exp, fresh)
        primary = self.spec.primary
        scores = {
            (s["variant"], s["case_id"]): s
            for s in self.h.store.runs.scores(run_id)
            if s["evaluator"] == primary and s["sample_index"] == 0
        }
        for row in rows:
            s = scores.get((row["variant"], row["case_id"]))
            value = None if s is None or s["value"] is None or s.get("error") else float(s["value"])
            reason = row["error"] or (None if s is None else (s.get("reason") or s.get("error")))
            self.memo[row["variant"], row["case_id"]] = CaseScore(
                score=value,
                passed=None if s is None else s.get("passed"),
                output=row["output"],
                reason=reason,
                input_tokens=int(row["input_tokens"] or 0),
            )
