"""The search: start, few-shot candidates, instruction candidates, choice on dev, verdict on test.

1. The start prompt is scored on dev (its baseline for the choice).
2. Few-shot: bootstrapped demonstrations (the start prompt run on some train cases) and similar ones,
   one candidate per (select, k), each scored on dev.
3. Instructions: GEPA mutates the system message of the best candidate so far (`instructions`).
4. The chosen prompt is the best dev mean (ties: the earlier candidate, so the start when nothing beats
   it); the test split has not been run at all until here, so it cannot have influenced the choice.
5. The start and the chosen prompt run on test as one experiment, and their paired comparison (mean
   difference, bootstrap CI, permutation p, verdict) is the search's verdict.

Every candidate is a stored prompt version whose note names its parent and what changed. The test phase's
calls are kept in reserve from the start (see `budget`), so the search always ends with its verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from honed.datasets import get_dataset
from honed.errors import BudgetExceededError, InvalidInputError
from honed.evals.stats import summary
from honed.experiments import analyse, parse_spec, resolve
from honed.experiments.spec import prompt_for
from honed.models.types import ChatRequest, Message
from honed.optimize.prompt import fewshot
from honed.optimize.prompt.budget import Ledger
from honed.optimize.prompt.instructions import PROPOSER, InstructionSearch
from honed.optimize.prompt.result import KIND, CandidateRecord, SearchResult
from honed.optimize.prompt.trials import Trials, Version
from honed.prompts import push
from honed.run import Renderer, run_prompt

if TYPE_CHECKING:
    from honed.datasets import Case
    from honed.experiments.runner import Progress
    from honed.optimize.prompt.spec import SearchSpec
    from honed.prompts.spec import Prompt
    from honed.workspace import Workspace

__all__ = ["Search", "optimize_prompt"]

Notify = Callable[[str], None]


def optimize_prompt(
    h: Workspace,
    spec: SearchSpec,
    *,
    progress: Progress | None = None,
    notify: Notify | None = None,
    n_boot: int = 10_000,
) -> SearchResult:
    """Run (or resume: every call is cached, every trial a resumable experiment) the search `spec`
    describes, store its result and return it."""
    return Search(h, spec, progress=progress, notify=notify or (lambda _m: None), n_boot=n_boot).run()


@dataclass
class _Candidate:
    version: Version
    parent: Version | None
    change: str
    strategy: str
    order: int
    dev: dict[str, Any] | None = None
    tokens: float | None = None


@dataclass
class Search:
    h: Workspace
    spec: SearchSpec
    progress: Progress | None
    notify: Notify
    n_boot: int = 10_000
    candidates: dict[str, _Candidate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = self.spec
        self.dataset = get_dataset(self.h.store, spec.dataset)  # pinned: every trial sees this version
        self.train, self.dev, self.test = (self._split(s) for s in (spec.train, spec.dev, spec.test))
        self.ledger = Ledger(spec.budget.calls, spec.budget.usd)
        version, prompt, _ = prompt_for(self.h, spec.prompt, spec.base, {})
        if not spec.prompt.endswith((".yaml", ".yml")):
            self.start = Version(prompt, spec.prompt, version.hash)
        else:
            [pushed] = push(self.h.store, [prompt], note=f"prompt search {spec.name}: the start")
            self.start = Version(prompt, f"{prompt.name}@v{pushed.version.number}", pushed.version.hash)
        self.student = spec.student or prompt.model or self.h.settings.default_model
        self.proposer = spec.proposer or self.student
        self.trials = Trials(self.h, spec, self.dataset, self.student, self.ledger, self.progress)
        self.stopped: str | None = None
        self.gepa: dict[str, Any] = {"used": False}

    def _split(self, name: str) -> list[Case]:
        cases = sorted(self.dataset.split(name), key=lambda c: c.id)
        if not cases:
            raise InvalidInputError(
                f"{self.spec.source}: dataset {self.dataset.ref} has no cases in split {name!r}",
                hint=f"splits: {', '.join(sorted(self.dataset.split_counts())) or 'none'}; "
                "set splits: {train: ..., dev: ..., test: ...}",
            )
        return cases

    # -- the phases ---------------------------------------------------------------------------------

    def run(self) -> SearchResult:
        self._check_budget()
        self.candidate(
            self.start.prompt, parent=None, change="the start", strategy="start", version=self.start
        )
        self.notify(f"start {self.start.ref} on dev ({len(self.dev)} cases)")
        self._score_on_dev(self.candidates[self.start.hash], phase="start")
        if self.spec.few_shot is not None:
            self._few_shot()
        if self.spec.instructions is not None and self.stopped is None:
            self._instructions()
        best = self._choose()
        self.notify(f"chosen on dev: {best.version.ref}; start and chosen on test ({len(self.test)} cases)")
        result = self._verdict(best)
        self.h.store.names.record(KIND, self.spec.name, result.to_dict(), note=f"test run {result.test_run}")
        return result

    def _check_budget(self) -> None:
        """Refuse, before any call, a budget that cannot pay for the fixed part of the plan."""
        spec, ledger = self.spec, self.ledger
        boot = 0
        if spec.few_shot is not None and "bootstrapped" in spec.few_shot.select:
            boot = min(spec.few_shot.bootstrap_cases, len(self.train))
        ledger.reserve_calls = 2 * len(self.test)
        fixed = {"start on dev": len(self.dev), "bootstrap": boot, "one candidate on dev": len(self.dev)}
        need = ledger.reserve_calls + sum(fixed.values())
        self.estimate: dict[str, float] = {
            "test (start and chosen)": ledger.reserve_calls,
            **fixed,
            "least": need,
        }
        if ledger.usd is not None:
            start_test = self.trials.plan_usd([self.start], self.test)[1]
            start_dev = self.trials.plan_usd([self.start], self.dev)[1]
            boot_usd = self.trials.plan_usd([self.start], self.train[:boot])[1] if boot else 0.0
            ledger.reserve_usd = 2 * start_test
            # A candidate's demonstrations make each of its calls dearer, on dev and in the test reserve.
            extra = self._demonstrations_usd() * (len(self.dev) + 2 * len(self.test))
            least = 2 * start_test + 2 * start_dev + boot_usd + extra
            self.estimate["usd_least"] = least
            if least > ledger.usd:
                raise BudgetExceededError(
                    f"{spec.source}: budget.usd ${ledger.usd:.4f} is below the ${least:.4f} the search needs "
                    "at least (start and chosen on test, the bootstrap, start and one candidate on dev)",
                    hint="raise budget.usd or use smaller dev/test splits",
                )
        if ledger.calls is not None and ledger.calls < need:
            parts = ", ".join(f"{k} {v}" for k, v in self.estimate.items() if k != "least" and v)
            raise BudgetExceededError(
                f"{spec.source}: budget.calls {ledger.calls} is below the {need} calls the search needs at "
                f"least ({parts})",
                hint=f"raise budget.calls to {need} or more, or use smaller dev/test splits",
            )

    def _demonstrations_usd(self) -> float:
        """What the smallest few-shot candidate adds to each call's cost at most: the prompt tokens of
        its demonstrations (labelled ones from the first train cases, as a stand-in for whichever are
        chosen). Left out of the least a search needs, a budget just above the start's own cost would pay
        for no candidate at all, and the search would end comparing the start with itself."""
        strategy = self.spec.few_shot
        price = self.h.client.prices.price(self.student)
        if strategy is None or not price or not self.train:
            return 0.0
        shown, _ = fewshot.bootstrapped(
            self.start.prompt, min(strategy.k), self.train, {}, target=self.spec.target
        )
        turns: list[Message] = []
        for example in shown.examples:
            turns += [
                Message(role="user", content=example.input),
                Message(role="assistant", content=example.output),
            ]
        tokens = self.h.client.count_tokens(ChatRequest(self.student, tuple(turns)))
        return tokens * price[0] / 1_000_000

    def _few_shot(self) -> None:
        strategy = self.spec.few_shot
        assert strategy is not None
        scored = {}
        if "bootstrapped" in strategy.select:
            cases = self.train[: strategy.bootstrap_cases]
            self.notify(f"bootstrapping demonstrations: {self.start.ref} on {len(cases)} train cases")
            scored = self.trials.score("bootstrap", [self.start], cases)[self.start.hash]
        for select in strategy.select:
            for k in strategy.k:
                if select == "bootstrapped":
                    prompt, change = fewshot.bootstrapped(
                        self.start.prompt, k, self.train, scored, target=self.spec.target
                    )
                else:
                    prompt, change = fewshot.similar(
                        self.start.prompt, k, self.dataset, self.spec.train, target=self.spec.target
                    )
                c = self.candidates[
                    self.candidate(prompt, parent=self.start, change=change, strategy="few-shot").hash
                ]
                if not self._score_on_dev(c, phase="few-shot"):
                    return

    def _instructions(self) -> None:
        strategy = self.spec.instructions
        assert strategy is not None
        parent = self._choose().version
        self.notify(f"instructions: GEPA from {parent.ref}, proposer {self.proposer}")
        search = InstructionSearch(self, parent, strategy, self.train, self.dev)
        search.run()
        self.gepa = {"used": True, "proposals": search.proposals, "parent": parent.ref}
        if search.stopped:
            self.gepa["stopped"] = search.stopped

    def _choose(self) -> _Candidate:
        scored = [c for c in self.candidates.values() if c.dev is not None and c.dev["mean"] is not None]
        # Highest dev mean; among equals the earliest (the start first), so only a gain moves the choice.
        return max(scored, key=lambda c: (c.dev["mean"] if c.dev else 0.0, -c.order))

    def _verdict(self, best: _Candidate) -> SearchResult:
        keys, usd = self.trials.plan_usd([self.start, best.version], self.test)
        fresh = self.ledger.charge("test", keys, usd, reserve=False)
        spec = parse_spec(
            {
                "name": f"{self.spec.name[:150]}.test",
                "dataset": self.dataset.ref,
                "split": self.spec.test,
                "variants": [
                    {"id": v, "prompt": ref, "model": self.student, "params": dict(self.spec.params)}
                    for v, ref in (("start", self.start.ref), ("chosen", best.version.ref))
                ],
                "evaluators": [dict(e) for e in self.spec.evaluators],
            },
            source=self.spec.source,
        )
        exp = replace(resolve(self.h, spec, base=self.spec.base), cases=tuple(self.test))
        run_id, _ = self.trials.run_and_record("test", exp, fresh)
        report = analyse(self.h.store, run_id, baseline="start", n_boot=self.n_boot, seed=self.spec.seed)
        stats = report.stats[self.spec.primary]
        comparison = stats.comparisons["chosen"]

        def side(variant: str) -> dict[str, Any]:
            s = stats.summaries[variant]
            return {
                "mean": s.mean,
                "ci": None if s.ci is None else s.ci.bounds(),
                "n": s.n_scored,
                "evaluators": {ev: r.summaries[variant].mean for ev, r in report.stats.items()},
            }

        start_c = self.candidates[self.start.hash]
        phases = {k: v.to_dict() for k, v in self.ledger.phases.items()}
        costs = [p["cost_usd"] for p in phases.values()]
        return SearchResult(
            name=self.spec.name,
            dataset=self.dataset.ref,
            splits={
                "train": {"name": self.spec.train, "cases": len(self.train)},
                "dev": {"name": self.spec.dev, "cases": len(self.dev)},
                "test": {"name": self.spec.test, "cases": len(self.test)},
            },
            primary=self.spec.primary,
            student=self.student,
            proposer=self.proposer,
            start={"version": self.start.ref, "dev": start_c.dev, "test": side("start")},
            best={
                "version": best.version.ref,
                "parent": None if best.parent is None else best.parent.ref,
                "change": best.change,
                "lineage": self._lineage(best),
                "dev": best.dev,
                "test": side("chosen"),
            },
            diff={
                "mean": comparison.mean_diff,
                "ci": None if comparison.ci is None else comparison.ci.bounds(),
                "p": comparison.p_value,
                "verdict": comparison.verdict,
                "cases": comparison.n_used,
            },
            candidates=[self._record(c) for c in self.candidates.values()],
            calls=self.ledger.used,
            fresh_calls=sum(p["fresh"] for p in phases.values()),
            cost_usd=None if any(c is None for c in costs) else float(sum(c or 0.0 for c in costs)),
            tokens={
                "input": sum(p["input_tokens"] for p in phases.values()),
                "output": sum(p["output_tokens"] for p in phases.values()),
            },
            phases=phases,
            budget={**self.ledger.to_dict(), "estimate": self.estimate, "stopped": self.stopped},
            search={**self.gepa, "runs": [{"phase": p, "run": r} for p, r in self.trials.runs]},
            test_run=run_id,
        )

    # -- what the phases share ----------------------------------------------------------------------

    def candidate(
        self,
        prompt: Prompt,
        *,
        parent: Version | None,
        change: str,
        strategy: str,
        version: Version | None = None,
    ) -> Version:
        """`prompt` stored as a version whose note says where it came from (the same content is one
        version however often it is found), and recorded as a candidate."""
        if version is None:
            note = f"prompt search {self.spec.name}: {change}" + (f" (from {parent.ref})" if parent else "")
            [pushed] = push(self.h.store, [prompt], note=note)
            version = Version(prompt, f"{prompt.name}@v{pushed.version.number}", pushed.version.hash)
        if version.hash not in self.candidates:
            self.candidates[version.hash] = _Candidate(
                version, parent, change, strategy, len(self.candidates)
            )
        return version

    def _score_on_dev(self, c: _Candidate, *, phase: str) -> bool:
        """Score `c` on dev; False (and the search marked stopped) when the budget cannot pay for it."""
        keys, usd = self.trials.plan_usd([c.version], self.dev)
        if self.ledger.usd is not None:
            test_usd = self.trials.plan_usd([c.version], self.test)[1]
            self.ledger.reserve_usd = max(self.ledger.reserve_usd, 2 * test_usd)
        if not self.ledger.allow(keys, usd):
            self.stopped = (
                f"{phase}: the budget has no room for another candidate on dev ({self.ledger.describe()})"
            )
            self.notify(f"stopping the search: {self.stopped}")
            return False
        self.trials.score(phase, [c.version], self.dev, keys=(keys, usd))
        self.scored_on_dev(c.version)
        return True

    def scored_on_dev(self, version: Version) -> None:
        c = self.candidates[version.hash]
        scores = self.trials.score("dev", [version], self.dev)[version.hash]
        values = np.array([np.nan if s.score is None else s.score for s in scores.values()], dtype=np.float64)
        s = summary(values, n_boot=self.n_boot, seed=self.spec.seed)
        c.dev = {"mean": s.mean, "ci": None if s.ci is None else s.ci.bounds(), "n": s.n_scored}
        c.tokens = self.trials.mean_tokens(version, self.dev)
        self.notify(f"  {version.ref} ({c.change}): dev {s.mean if s.mean is not None else float('nan'):.3f}")

    def propose(self, current: str, examples: str) -> str:
        """The proposer's reply for new instructions, one call charged to the budget."""
        inputs = {"instructions": current, "examples": examples}
        with Renderer(self.h) as renderer:
            request, _ = renderer.request(PROPOSER, inputs, model=self.proposer)
        usd = 0.0
        if self.ledger.usd is not None:
            from honed.experiments.runner import DEFAULT_OUTPUT_ESTIMATE

            price = self.h.client.prices.price(self.proposer)
            if price is None:
                raise BudgetExceededError(
                    f"cannot check the USD budget: no price for {self.proposer}",
                    hint=f'add [prices."{self.proposer}"] input/output (USD per million tokens) '
                    "to honed.toml",
                )
            out = request.params.max_tokens or DEFAULT_OUTPUT_ESTIMATE
            usd = (self.h.client.count_tokens(request) * price[0] + out * price[1]) / 1e6
        fresh = self.ledger.charge("instructions", [request.key()], usd)
        answer = run_prompt(self.h, PROPOSER, inputs, model=self.proposer)
        c = answer.completion
        row = {
            "cached": c.cached,
            "input_tokens": c.usage.input_tokens,
            "output_tokens": c.usage.output_tokens,
            "cost_usd": c.cost_usd,
            "output": c.text,
        }
        self.ledger.record("instructions", row, new=bool(fresh))
        return c.text

    def _lineage(self, c: _Candidate) -> list[dict[str, Any]]:
        chain = []
        cur: _Candidate | None = c
        while cur is not None:
            chain.append({"version": cur.version.ref, "change": cur.change})
            cur = None if cur.parent is None else self.candidates.get(cur.parent.hash)
        return chain[::-1]

    def _record(self, c: _Candidate) -> CandidateRecord:
        return CandidateRecord(
            id=f"{c.strategy}-{c.order}" if c.strategy != "start" else "start",
            version=c.version.ref,
            hash=c.version.hash,
            parent=None if c.parent is None else c.parent.ref,
            change=c.change,
            strategy=c.strategy,
            order=c.order,
            dev=c.dev,
            prompt_tokens=c.tokens,
        )
