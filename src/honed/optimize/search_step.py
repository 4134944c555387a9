"""A ladder step that searches for its prompt: `optimize: {...}` runs `honed optimize prompt`'s search.

The search starts from the prompt the step inherits and runs with the step's model and params, on the
ladder's pinned dataset version, with the ladder's evaluators, primary and target. It builds candidates
from the step's `train` split, chooses on its `dev` split, and gives its verdict on the ladder's own split,
so its test phase sends the very requests the ladder's run of the step sends afterwards: the step's ledger
row then costs no further calls and agrees with the search's verdict. Every call is cached and every trial
is a resumable experiment, so a rerun (or a resume after a kill) takes the same path and chooses the same
prompt without new calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from honed.optimize.plan import search_name
from honed.optimize.prompt.search import optimize_prompt
from honed.optimize.prompt.spec import SearchSpec
from honed.prompts import get_prompt, push

if TYPE_CHECKING:
    from honed.datasets import DatasetVersion
    from honed.optimize.plan import LadderPlan, OptimizeStep, Step
    from honed.prompts.spec import Prompt
    from honed.workspace import Workspace

__all__ = ["search_step"]


def search_step(
    h: Workspace,
    plan: LadderPlan,
    step: Step,
    spec: OptimizeStep,
    prompt: Prompt,
    model: str,
    dataset: DatasetVersion,
    *,
    where: str,
    notify: Callable[[str], None] | None = None,
    n_boot: int = 10_000,
) -> tuple[Prompt, str, str, dict[str, Any]]:
    """Run (or replay) the step's search from `prompt`; returns the chosen prompt, its stored version,
    the change in words and a summary of the search for the ledger."""
    assert plan.split is not None  # parse_plan refuses an optimize step without the ladder's split
    [pushed] = push(h.store, [prompt], note=f"ladder {plan.name}, step {step.id}: the search's start")
    start = f"{prompt.name}@v{pushed.version.number}"
    name = search_name(plan.name, step.id)
    search = SearchSpec(
        name=name,
        prompt=start,
        dataset=dataset.ref,
        train=spec.train,
        dev=spec.dev,
        test=plan.split,
        evaluators=plan.evaluators,
        primary=plan.primary or str(plan.evaluators[0].get("name") or plan.evaluators[0].get("type")),
        student=model,
        proposer=spec.proposer,
        target=plan.target,
        budget=spec.budget,
        few_shot=spec.strategies.few_shot,
        instructions=spec.strategies.instructions,
        seed=spec.seed,
        base=plan.base,
        source=f"{where}.optimize",
        params=dict(step.params),
    )
    say = notify or (lambda _m: None)
    result = optimize_prompt(h, search, notify=lambda m: say(f"step {step.id}: {m}"), n_boot=n_boot)
    best = result.best
    chosen = str(best["version"])
    _, found = get_prompt(h.store, chosen)
    dev_start = (result.start.get("dev") or {}).get("mean")
    dev_best = (best.get("dev") or {}).get("mean")
    scored = sum(1 for c in result.candidates if c.dev is not None)
    if chosen == start:
        change = f"prompt search: kept the start ({scored} candidates on {spec.dev}, none better)"
    else:
        change = f"prompt search: {best['change']} (chosen on {spec.dev} of {scored} candidates)"
    summary = {
        "name": name,
        "start": start,
        "chosen": chosen,
        "change": best["change"],
        "dev": {"split": spec.dev, "start": dev_start, "chosen": dev_best},
        "candidates": scored,
        "calls": result.calls,
        "fresh_calls": result.fresh_calls,
        "cost_usd": result.cost_usd,
        "budget": {k: result.budget.get(k) for k in ("calls", "usd", "used_calls", "used_usd", "stopped")},
        "verdict": result.diff,
    }
    return found, chosen, change, summary
