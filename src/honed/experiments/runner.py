"""Running an experiment: every (variant, case, sample) call, then every evaluator on every result.

Resumable by construction: each finished call is written as a `results` row keyed by (run, variant, case,
sample) within a fraction of a second, and a run of the same resolved spec continues the newest unfinished
run, skipping the keys it already has (an errored call is tried again). Ctrl-C, a crash or a kill loses at
most the calls in flight; their responses are usually in the response cache anyway.

The budget is checked twice: before any call, from token counts (prompt tokens + max_tokens at the
model's price), and during the run, where no new call starts once the calls made so far cost the budget.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from honed.errors import BudgetExceededError, HonedError, OutputParseError
from honed.evals.evaluators import EvalInput, Score
from honed.experiments.spec import Experiment, Variant
from honed.models.types import ChatRequest, Completion

if TYPE_CHECKING:
    from honed.api import Honed
    from honed.datasets import Case
    from honed.store import Store
    from honed.store.runs import Run

#: Output tokens assumed for the budget estimate when a variant sets no max_tokens.
DEFAULT_OUTPUT_ESTIMATE = 256
_FLUSH_ROWS = 200
_FLUSH_SECONDS = 0.5

Progress = Callable[[str, int, int], None]
"""`progress(phase, done, total)`; phase is "calls" or "scoring"."""


@dataclass(frozen=True)
class Planned:
    variant: Variant
    case: Case
    sample: int
    request: ChatRequest


def plan(exp: Experiment, done: set[tuple[str, str, int]]) -> list[Planned]:
    """The calls still to make. Rendering happens here, so a missing variable fails before any call."""
    out: list[Planned] = []
    for v in exp.variants:
        for case in exp.cases:
            for s in range(exp.spec.repeats):
                if (v.id, case.id, s) in done:
                    continue
                try:
                    request = v.prompt.request(case.inputs, model=v.model, params=v.params, sample_index=s)
                except HonedError as exc:
                    exc.message = f"case {case.id!r}, variant {v.id!r}: {exc.message}"
                    raise
                out.append(Planned(v, case, s, request))
    return out


def estimate_cost(h: Honed, calls: list[Planned]) -> float | None:
    """USD the calls would cost at most (prompt tokens + max_tokens); None if a price is unknown."""
    total = 0.0
    for p in calls:
        price = h.client.prices.price(p.request.model)
        if price is None:
            return None
        if price == (0.0, 0.0):
            continue
        prompt_tokens = h.client.count_tokens(p.request)
        out_tokens = p.request.params.max_tokens or DEFAULT_OUTPUT_ESTIMATE
        total += (prompt_tokens * price[0] + out_tokens * price[1]) / 1_000_000
    return total


class _Writer:
    """Buffers result rows and writes them in batches, from a worker thread, at most ~0.5 s late."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.last = time.monotonic()

    def add(self, row: dict[str, Any]) -> bool:
        with self.lock:
            self.rows.append(row)
            return len(self.rows) >= _FLUSH_ROWS or time.monotonic() - self.last > _FLUSH_SECONDS

    def flush(self) -> None:
        with self.lock:
            rows, self.rows = self.rows, []
            self.last = time.monotonic()
        self.store.runs.put_results(rows)


def _row(run_id: str, exp: Experiment, p: Planned, out: Completion | HonedError) -> dict[str, Any]:
    base = {
        "run_id": run_id,
        "variant": p.variant.id,
        "case_id": p.case.id,
        "sample_index": p.sample,
        "prompt_hash": p.variant.prompt_version.hash,
        "dataset_hash": exp.dataset.hash,
        "model": p.request.model,
        "params": p.request.params.to_dict(),
    }
    completion = out if isinstance(out, Completion) else None
    error = None
    if isinstance(out, OutputParseError):
        # The call worked and cost money; its text is kept, and the failed parse is the row's error.
        completion = out.completion if isinstance(out.completion, Completion) else None
        error = out.one_line()
    elif isinstance(out, HonedError):
        error = out.one_line()
    if completion is None:
        return {
            **base,
            "request_key": p.request.key(),
            "output": None,
            "parsed": None,
            "error": error,
            "input_tokens": 0,
            "output_tokens": 0,
            "latency_s": 0.0,
            "cost_usd": None,
            "cached": False,
        }
    return {
        **base,
        "request_key": completion.request_key,
        "output": completion.text,
        "parsed": completion.parsed,
        "error": error,
        "input_tokens": completion.usage.input_tokens,
        "output_tokens": completion.usage.output_tokens,
        "latency_s": completion.latency_s,
        "cost_usd": completion.cost_usd,
        "cached": completion.cached,
    }


async def _call_all(
    h: Honed, exp: Experiment, run: Run, calls: list[Planned], progress: Progress | None
) -> bool:
    """Make the calls; returns False when the budget stopped the run."""
    budget = exp.spec.budget_usd
    spent = h.store.runs.spent(run.id)
    writer = _Writer(h.store)
    gates: dict[str, asyncio.Semaphore] = {}
    for p in calls:
        provider, ref, endpoint = h.client.resolve(p.request.model)
        if ref.endpoint not in gates:
            # The same limit as the client's, taken here first, so the budget is checked right before a
            # call starts rather than when it was queued.
            gates[ref.endpoint] = asyncio.Semaphore(
                endpoint.max_concurrency or provider.default_max_concurrency
            )
    stopped = False
    done = 0

    async def one(p: Planned) -> None:
        nonlocal spent, stopped, done
        async with gates[p.request.model.split("/", 1)[0]]:
            if budget is not None and spent >= budget:
                stopped = True
                return
            try:
                out: Completion | HonedError = await h.client.complete(p.request)
            except HonedError as exc:
                out = exc
            if isinstance(out, Completion) and not out.cached and out.cost_usd:
                spent += out.cost_usd
            if writer.add(_row(run.id, exp, p, out)):
                await asyncio.to_thread(writer.flush)
            done += 1
            if progress is not None:
                progress("calls", done, len(calls))

    if progress is not None:
        progress("calls", 0, len(calls))
    try:
        await asyncio.gather(*(one(p) for p in calls))
    finally:
        writer.flush()  # synchronously: this also runs when Ctrl-C cancels the gather
        h.client.flush()
    return not stopped


async def _score_all(h: Honed, exp: Experiment, run: Run, progress: Progress | None) -> None:
    """Score every successful result that lacks a score from each evaluator (again: resumable)."""
    cases = {c.id: c for c in exp.cases}
    results = [r for r in h.store.runs.results(run.id) if r["error"] is None]
    have = {
        (s["variant"], s["case_id"], s["sample_index"], s["evaluator"]) for s in h.store.runs.scores(run.id)
    }
    total = len(results) * len(exp.evaluators)
    done = total - sum(
        1
        for r in results
        for e in exp.evaluators
        if (r["variant"], r["case_id"], r["sample_index"], e.name) not in have
    )
    if progress is not None and total:
        progress("scoring", done, total)
    for ev in exp.evaluators:
        todo = [r for r in results if (r["variant"], r["case_id"], r["sample_index"], ev.name) not in have]
        if not todo:
            continue
        items = [_eval_input(r, cases[r["case_id"]]) for r in todo]
        for start in range(0, len(items), 500):
            chunk_rows, chunk_items = todo[start : start + 500], items[start : start + 500]
            scores = await ev.evaluate_many(chunk_items)
            await asyncio.to_thread(
                h.store.runs.put_scores,
                [_score_row(r, ev.name, ev.version, s) for r, s in zip(chunk_rows, scores, strict=True)],
            )
            done += len(chunk_rows)
            if progress is not None:
                progress("scoring", done, total)
        await ev.aclose()


def _eval_input(row: dict[str, Any], case: Case) -> EvalInput:
    return EvalInput(
        output=row["output"] or "",
        inputs=dict(case.inputs),
        reference=case.reference,
        parsed=row["parsed"],
        metadata=dict(case.metadata),
        id=case.id,
    )


def _score_row(result: dict[str, Any], evaluator: str, version: str, s: Score) -> dict[str, Any]:
    return {
        "run_id": result["run_id"],
        "variant": result["variant"],
        "case_id": result["case_id"],
        "sample_index": result["sample_index"],
        "evaluator": evaluator,
        "evaluator_version": version,
        "value": s.value,
        "passed": s.passed,
        "reason": s.reason,
        "error": s.error,
        "raw": s.raw,
        "details": s.details or None,
    }


async def arun(
    h: Honed, exp: Experiment, *, new: bool = False, progress: Progress | None = None, force: bool = False
) -> Run:
    """Run (or continue) `exp`. Returns the run with its final status."""
    store = h.store
    run = None if new else store.runs.find_unfinished(exp.hash)
    done = store.runs.done_keys(run.id) if run is not None else set()
    calls = plan(exp, done)
    budget = exp.spec.budget_usd
    if budget is not None and not force:
        estimate = estimate_cost(h, calls)
        if estimate is None:
            unknown = sorted(
                {p.request.model for p in calls if h.client.prices.price(p.request.model) is None}
            )
            raise BudgetExceededError(
                f"cannot check the budget: no price for {', '.join(unknown)}",
                hint=f'add [prices."{unknown[0]}"] input/output (USD per million tokens) to honed.toml',
            )
        already = store.runs.spent(run.id) if run is not None else 0.0
        if already + estimate > budget:
            raise BudgetExceededError(
                f"the run would cost up to ${already + estimate:.4f} (estimate from token counts), "
                f"over its budget of ${budget:.4f}",
                hint="raise budget_usd, run fewer cases or repeats, or pass --force to stop when it is spent",
            )
    if run is None:
        run = store.runs.create(exp.body(), exp.hash, name=exp.spec.name, budget_usd=budget)
    else:
        store.runs.set_status(run.id, "running")
    finished = False
    try:
        within_budget = await _call_all(h, exp, run, calls, progress)
        if not within_budget:
            finished = True
            store.runs.set_status(run.id, "budget_exceeded")
            return store.runs.get(run.id)
        await _score_all(h, exp, run, progress)
        finished = True
    finally:
        if not finished:
            store.runs.set_status(run.id, "stopped")
    errors = sum(1 for r in store.runs.results(run.id) if r["error"] is not None)
    store.runs.set_status(run.id, "completed" if errors == 0 else "failed")
    return store.runs.get(run.id)


def run_experiment(
    h: Honed, exp: Experiment, *, new: bool = False, progress: Progress | None = None, force: bool = False
) -> Run:
    """Synchronous `arun` for the CLI and scripts."""

    async def main() -> Run:
        try:
            return await arun(h, exp, new=new, progress=progress, force=force)
        finally:
            await h.client.aclose_providers()

    return asyncio.run(main())
