"""Climbing the ladder: every step of a plan run as one experiment, and the ledger of what each bought.

The steps are the variants of ONE experiment, in order, so they share the pinned dataset version and the
evaluators, and the run caches and resumes like any experiment (`honed experiments show RUN` shows it).
The ledger reads the run's analysis twice over: each step against the previous one (what that change
bought) and against the first (what the path so far bought), both paired on the same cases with a
bootstrap CI, a permutation p and a verdict. Tokens and cost come from the run's result rows; latency
is each step's time in the model over a few calls made one at a time after the run
(`honed.experiments.latency`), since in the run itself every call shares a batch with others. A step
unchanged since the stored ledger (same model, prompt version and params) keeps its measured latency, as a
cached call keeps its answer. A free model's cost can be shown at a notional price (the plan's
`notional_prices:` or a `notional = true` price in honed.toml), always marked as such.
Each step's results are also sorted into failure categories (`honed.optimize.failures`), so the ledger
shows not only how much a step bought but which kind of failure it removed. With a `diagnose:` section
the diagnosis runs first, on the same dataset version, and its verdict is kept with the ledger.
The ledger is stored as a version of the name `ladder-ledger/PLAN`, so `honed optimize show` reads it back.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from honed.datasets import get_dataset
from honed.errors import InvalidInputError, NotFoundError
from honed.evals.stats import Comparison, Interval, ManyResult
from honed.experiments import Experiment, analyse, parse_spec, resolve, run_experiment
from honed.experiments.latency import IN_THE_RUN, ONE_AT_A_TIME, percentile, summarise
from honed.optimize.failures import step_failures
from honed.optimize.steps import Notify, Resolved, check_finetuning, resolve_steps

if TYPE_CHECKING:
    from honed.experiments.runner import Progress
    from honed.optimize.plan import LadderPlan
    from honed.workspace import Workspace

__all__ = ["KIND", "Ledger", "LedgerStep", "ladder_experiment", "run_ladder", "stored_ledger"]

KIND = "ladder-ledger"


@dataclass(frozen=True)
class LedgerStep:
    """One step's row: quality per evaluator, its paired difference per evaluator against the previous
    and the first step (None for the first step), and what a call costs."""

    id: str
    prompt: str
    model: str
    params: dict[str, Any]
    note: str | None
    calls: int
    errors: int
    cached: int
    quality: dict[str, dict[str, Any]]
    vs_previous: dict[str, dict[str, Any]] | None
    vs_first: dict[str, dict[str, Any]] | None
    mean_input_tokens: float | None
    mean_output_tokens: float | None
    #: time in the model per call (the wait for a slot or a batch apart): of `latency_calls` calls made
    #: one at a time when `latency_mode` is "one at a time", else of the run's own calls ("in the run")
    latency_p50_s: float | None
    cost_usd: float | None  # every call of the step at the model's price; None when the price is unknown
    cost_per_1k_usd: float | None
    failures: dict[str, int] | None = None
    changes: list[str] | None = None
    finetune: dict[str, Any] | None = None
    latency_p95_s: float | None = None
    latency_calls: int | None = None
    latency_mode: str | None = None
    #: the median time the run's calls waited for a slot or a batch (how loaded the run was)
    queue_p50_s: float | None = None
    #: {"input", "output", "source"}: a notional price (USD per million tokens) set for the step's model
    #: by the plan or honed.toml, and the cost of 1,000 calls at it; None when none is set
    notional_price: dict[str, Any] | None = None
    notional_cost_per_1k_usd: float | None = None
    #: an `optimize` step's prompt search: the start and chosen versions, dev means, its spend (calls,
    #: USD) and its own verdict on the ladder's split; None for other steps
    search: dict[str, Any] | None = None


@dataclass(frozen=True)
class Ledger:
    name: str
    run_id: str
    run_status: str
    dataset: str
    dataset_hash: str
    split: str | None
    n_cases: int
    primary: str
    evaluators: list[str]
    steps: list[LedgerStep]
    correct: str | None = None
    format: str | None = None
    diagnosis: dict[str, Any] | None = None

    def step(self, step_id: str) -> LedgerStep:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise InvalidInputError(f"no step {step_id!r} in ladder {self.name!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ladder_experiment(
    h: Workspace, plan: LadderPlan, *, notify: Notify | None = None, n_boot: int = 10_000
) -> tuple[Experiment, list[Resolved]]:
    """The plan as a resolved experiment: the dataset pinned, every step's prompt derived (or searched
    for) and pushed, its fine-tuning done, evaluators built, before any step's own run."""
    pinned = get_dataset(h.store, plan.dataset)  # every step sees this version
    if plan.split is not None and not pinned.split(plan.split):
        raise InvalidInputError(
            f"{plan.source}: dataset {pinned.ref} has no cases in split {plan.split!r}",
            hint=f"splits: {', '.join(sorted(pinned.split_counts())) or 'none'}",
        )
    resolved = resolve_steps(h, plan, pinned, notify=notify, n_boot=n_boot)
    spec = parse_spec(
        {
            "name": plan.name,
            "dataset": pinned.ref,
            "split": plan.split,
            "repeats": plan.repeats,
            "variants": [
                {"id": r.step.id, "prompt": r.ref, "params": r.params, "model": r.model} for r in resolved
            ],
            "evaluators": [dict(e) for e in plan.evaluators],
        },
        source=plan.source,
    )
    exp = resolve(h, spec, base=plan.base)
    if not exp.cases:
        raise InvalidInputError(
            f"{plan.source}: dataset {pinned.ref} has no cases"
            + (f" in split {plan.split!r}" if plan.split else ""),
            hint=f"splits: {', '.join(sorted(pinned.split_counts())) or 'none'}",
        )
    names = [e.name for e in exp.evaluators]
    if plan.primary is not None and plan.primary not in names:
        raise InvalidInputError(
            f"{plan.source}: primary: no evaluator named {plan.primary!r}", hint=f"one of {', '.join(names)}"
        )
    return exp, resolved


def run_ladder(
    h: Workspace,
    plan: LadderPlan,
    *,
    new: bool = False,
    progress: Progress | None = None,
    notify: Notify | None = None,
    n_boot: int = 10_000,
) -> Ledger:
    """Run (or resume) the diagnosis, if the plan has one, and every step of `plan`, then build, store
    and return its ledger."""
    check_finetuning(h, plan)
    diagnosis = None
    if plan.diagnose is not None:
        from honed.optimize.diagnose import diagnose_plan

        diagnosis = diagnose_plan(h, plan, new=new, progress=progress, n_boot=n_boot).to_dict()
    exp, resolved = ladder_experiment(h, plan, notify=notify, n_boot=n_boot)
    primary = plan.primary or exp.evaluators[0].name
    run = run_experiment(h, exp, new=new, progress=progress, latency_calls=0)
    probe = step_latencies(h, plan, exp, run.id, notify=notify)
    ledger = build_ledger(
        h, plan, exp, resolved, run.id, primary, n_boot=n_boot, diagnosis=diagnosis, probe=probe
    )
    h.store.names.record(KIND, plan.name, ledger.to_dict(), note=f"run {run.id} ({run.status})")
    return ledger


#: (p50, p95, calls) of a step's time in the model, measured one at a time
Latency = tuple[float, float, int]


def step_latencies(
    h: Workspace, plan: LadderPlan, exp: Experiment, run_id: str, *, notify: Notify | None = None
) -> dict[str, Latency]:
    """Per step, its time in the model over `plan.latency_calls` calls made one at a time (see the module
    docstring); steps unchanged since the stored ledger keep the latency it measured."""
    from honed.experiments.latency import latency_probe

    if plan.latency_calls <= 0:
        return {}
    try:
        before = {s["id"]: s for s in stored_ledger(h, plan.name)["steps"]}
    except NotFoundError:
        before = {}
    out: dict[str, Latency] = {}
    todo = []
    for v in exp.variants:
        old = before.get(v.id) or {}
        same = (old.get("model"), old.get("prompt"), old.get("params")) == (
            v.model,
            v.describe()["prompt"],
            v.params,
        )
        if (
            same
            and old.get("latency_mode") == ONE_AT_A_TIME
            and (old.get("latency_calls") or 0) >= (plan.latency_calls)
        ):
            out[v.id] = (old["latency_p50_s"], old["latency_p95_s"], old["latency_calls"])
        else:
            todo.append(v)
    if todo:
        if notify is not None:
            notify(
                f"timing {plan.latency_calls} calls one at a time for the latency of "
                f"{', '.join(v.id for v in todo)}"
            )
        probed = latency_probe(h, replace(exp, variants=tuple(todo)), plan.latency_calls, run_id=run_id)
        for variant, times in probed.items():
            found = summarise(times)
            if found is not None:
                out[variant] = (found.p50_s, found.p95_s, found.calls)
    return out


def stored_ledger(h: Workspace, name: str, ref: str | None = None) -> dict[str, Any]:
    """The ledger last stored for the plan `name` (or the version `ref` names), as `Ledger.to_dict()`."""
    _, body = h.store.names.get(KIND, name, ref, noun="ladder")
    return body


def build_ledger(
    h: Workspace,
    plan: LadderPlan,
    exp: Experiment,
    resolved: list[Resolved],
    run_id: str,
    primary: str,
    *,
    n_boot: int = 10_000,
    diagnosis: dict[str, Any] | None = None,
    probe: dict[str, Latency] | None = None,
) -> Ledger:
    """The ledger of a finished ladder run (see the module docstring); `probe` holds the steps' latencies
    measured one at a time (`step_latencies`), the others' come from the run's rows."""
    ids = [v.id for v in exp.variants]
    notes = {s.id: s.note for s in plan.steps}
    by_step = {r.step.id: r for r in resolved}
    first = analyse(h.store, run_id, baseline=ids[0], n_boot=n_boot)
    # Each step against its predecessor: an analysis per baseline, all with the same seed.
    previous: dict[str, dict[str, ManyResult]] = {}
    for prev, step in itertools.pairwise(ids):
        report = first if prev == ids[0] else analyse(h.store, run_id, baseline=prev, n_boot=n_boot)
        previous[step] = report.stats
    rows = h.store.runs.results(run_id)
    gold = {c.id: list(c.context_ids) for c in exp.cases}
    failures = step_failures(
        h.store,
        run_id,
        [(r["variant"], r["case_id"], int(r["sample_index"])) for r in rows],
        gold,
        primary=primary,
        correct=plan.correct,
        form=plan.format,
    )
    steps = []
    for v in exp.variants:
        mine = [r for r in rows if r["variant"] == v.id]
        answered = [r for r in mine if r["output"] is not None]  # calls that returned text cost tokens
        tokens_in = [r["input_tokens"] for r in answered]
        tokens_out = [r["output_tokens"] for r in answered]
        # A cached row keeps the time in the model of the call that produced it: still a per-call figure.
        latencies = [r["latency_s"] for r in answered]
        queued = [r["queue_s"] for r in answered if r.get("queue_s") is not None]
        p50, p95, n_timed, mode = _latency((probe or {}).get(v.id), latencies)
        price = h.client.prices.price(v.model)
        cost = None if price is None else (sum(tokens_in) * price[0] + sum(tokens_out) * price[1]) / 1e6
        notional, source = _notional_price(h, plan, v.model)
        notional_1k = None
        if notional is not None and answered:
            notional_1k = (np.mean(tokens_in) * notional[0] + np.mean(tokens_out) * notional[1]) / 1e3
        steps.append(
            LedgerStep(
                id=v.id,
                prompt=v.describe()["prompt"],
                model=v.model,
                params=v.params,
                note=notes.get(v.id),
                calls=len(mine),
                errors=sum(1 for r in mine if r["error"] is not None),
                cached=sum(1 for r in answered if r["cached"]),
                quality={ev: result.summaries[v.id].brief() for ev, result in first.stats.items()},
                vs_previous=None
                if v.id == ids[0]
                else {ev: delta(r.comparisons[v.id], r.baseline) for ev, r in previous[v.id].items()},
                vs_first=None
                if v.id == ids[0]
                else {ev: delta(r.comparisons[v.id], r.baseline) for ev, r in first.stats.items()},
                mean_input_tokens=float(np.mean(tokens_in)) if answered else None,
                mean_output_tokens=float(np.mean(tokens_out)) if answered else None,
                latency_p50_s=p50,
                latency_p95_s=p95,
                latency_calls=n_timed,
                latency_mode=mode,
                queue_p50_s=percentile(queued, 50),
                notional_price=None
                if notional is None
                else {"input": notional[0], "output": notional[1], "source": source},
                notional_cost_per_1k_usd=None if notional_1k is None else float(notional_1k),
                cost_usd=cost,
                cost_per_1k_usd=cost / len(answered) * 1000 if cost is not None and answered else None,
                failures=failures.get(v.id),
                changes=by_step[v.id].changes,
                finetune=by_step[v.id].finetune,
                search=by_step[v.id].search,
            )
        )
    return Ledger(
        name=exp.spec.name,
        run_id=run_id,
        run_status=first.run.status,
        dataset=exp.dataset.ref,
        dataset_hash=exp.dataset.hash,
        split=exp.spec.split,
        n_cases=len(exp.cases),
        primary=primary,
        evaluators=list(first.evaluators),
        steps=steps,
        correct=plan.correct,
        format=plan.format,
        diagnosis=diagnosis,
    )


def _latency(
    measured: Latency | None, in_run: list[float]
) -> tuple[float | None, float | None, int | None, str | None]:
    """(p50, p95, calls, mode): the one-at-a-time figures when measured, else the run's own."""
    if measured is not None:
        return (*measured, ONE_AT_A_TIME)
    found = summarise(in_run, IN_THE_RUN)
    if found is None:
        return None, None, None, None
    return found.p50_s, found.p95_s, found.calls, found.mode


def _notional_price(h: Workspace, plan: LadderPlan, model: str) -> tuple[tuple[float, float] | None, str]:
    """The notional price of `model` (or its base model): the plan's, else honed.toml's."""
    from honed.config import Price
    from honed.models.prices import PriceTable

    if plan.notional_prices:
        table = PriceTable(
            {ref: Price(input=i, output=o, notional=True) for ref, (i, o) in plan.notional_prices.items()}
        )
        found = table.notional(model)
        if found is not None:
            return found, "plan"
    found = h.client.prices.notional(model)
    return (found, "honed.toml") if found is not None else (None, "")


def interval(ci: Interval | None) -> list[float] | None:
    """A CI as JSON: [low, high], or None."""
    return None if ci is None else ci.bounds()


def delta(c: Comparison, against: str) -> dict[str, Any]:
    """A paired comparison as JSON: the difference against `against`, its CI, p, cases and verdict."""
    return {"against": against, **c.brief()}
