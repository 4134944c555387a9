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
import contextlib
import gc
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from honed.config import system_user
from honed.errors import BudgetExceededError, HonedError, OutputParseError, RunInterrupted
from honed.evals.evaluators import EvalInput, Score
from honed.experiments.latency import aprobe
from honed.experiments.spec import Experiment, Variant
from honed.logs.context import log_context
from honed.models.client import synchronous
from honed.models.types import ChatRequest, Completion, Params
from honed.run.render import Renderer

if TYPE_CHECKING:
    from honed.datasets import Case
    from honed.store import Store
    from honed.store.runs import Run
    from honed.workspace import Workspace

#: Output tokens assumed for the budget estimate when a variant sets no max_tokens.
DEFAULT_OUTPUT_ESTIMATE = 256
#: After Ctrl-C, how long the calls in flight may take to finish (and be stored) before they are dropped.
INTERRUPT_GRACE_S = 30.0

Progress = Callable[[str, int, int], None]
"""`progress(phase, done, total)`; phase is "calls", "scoring" or the latency probe's."""


@dataclass(frozen=True)
class Planned:
    variant: Variant
    case: Case
    sample: int
    request: ChatRequest
    retrieved: list[dict[str, Any]] | None = None


def plan(exp: Experiment, done: set[tuple[str, str, int]], renderer: Renderer) -> list[Planned]:
    """The calls still to make. Rendering happens here, so a missing variable fails before any call;
    so does retrieval for prompts that retrieve, once per case, shared by its repeats."""
    out: list[Planned] = []
    for v in exp.variants:
        renderer.prepare(v.prompt, base=v.base)
        # What `Prompt.request` does per call, done once per variant (the params) and once per case (the
        # messages, shared by its repeats): thousands of cases make this the bulk of planning.
        params = Params.from_dict({**v.prompt.params, **v.params})
        for case in exp.cases:
            todo = [s for s in range(exp.spec.repeats) if (v.id, case.id, s) not in done]
            if not todo:
                continue
            try:
                rendered = renderer.render(
                    v.prompt, case.inputs, case_id=case.id, base=v.base, gold=case.context_ids
                )
                requests = [rendered.request(v.prompt, v.model, params, sample_index=s) for s in todo]
            except HonedError as exc:
                exc.message = f"case {case.id!r}, variant {v.id!r}: {exc.message}"
                raise
            out.extend(
                Planned(v, case, s, r, rendered.retrieved) for s, r in zip(todo, requests, strict=True)
            )
    return out


@dataclass(frozen=True)
class Pending:
    """Where a run of an experiment would start: the unfinished run it continues (None: a new run), and
    how many of its calls are finished and still to make (`plan` makes exactly the `todo` ones)."""

    run: Run | None
    total: int
    done: int

    @property
    def todo(self) -> int:
        return self.total - self.done


def pending(store: Store, exp: Experiment, *, new: bool = False) -> Pending:
    """What `arun(h, exp, new=new)` would continue, before it renders or calls anything."""
    run, done = _resume_point(store, exp, new=new)
    total = len(exp.variants) * len(exp.cases) * exp.spec.repeats
    keys = {(v.id, c.id, s) for v in exp.variants for c in exp.cases for s in range(exp.spec.repeats)}
    return Pending(run, total, len(done & keys))


def _resume_point(
    store: Store, exp: Experiment, *, new: bool
) -> tuple[Run | None, set[tuple[str, str, int]]]:
    """The newest unfinished run of this exact experiment (unless `new`) and its finished calls."""
    run = None if new else store.runs.find_unfinished(exp.hash)
    return run, store.runs.done_keys(run.id) if run is not None else set()


def estimate_cost(h: Workspace, calls: list[Planned]) -> float | None:
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
    """Writes result rows from one thread of its own, a batch at a time (group commit).

    A worker hands over its row with `put` and awaits the returned future, which is done once the row is
    committed; only then does the worker take its next call. So the calls whose rows are not yet stored
    are never more than the calls in flight, and a kill -9 loses at most those. Rows that finish while a
    batch is being written form the next batch, so a busy run still writes in batches.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: list[dict[str, Any]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="honed-results")
        self._inflight: Future[None] | None = None

    def put(self, row: dict[str, Any]) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rows.append(row)
        self._waiters.append(waiter)
        self._wake.set()
        return waiter

    def _take(self) -> tuple[list[dict[str, Any]], list[asyncio.Future[None]]]:
        taken = self._rows, self._waiters
        self._rows, self._waiters = [], []
        return taken

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            rows, waiters = self._take()
            if not rows:
                continue
            self._inflight = self._thread.submit(self.store.runs.put_results, rows)
            try:
                await asyncio.shield(asyncio.wrap_future(self._inflight))
            except asyncio.CancelledError:
                raise  # the batch is still being written: close() waits for it
            except BaseException:
                self._inflight = None  # its error goes up from here, not again from close()
                for waiter in waiters:
                    waiter.cancel()
                raise
            self._inflight = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def close(self) -> None:
        """Wait for the batch in flight (raising its error), then write what is left, synchronously."""
        self._thread.shutdown(wait=True)
        if self._inflight is not None and not self._inflight.cancelled():
            self._inflight.result()
        rows, waiters = self._take()
        self.store.runs.put_results(rows)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _row(base: dict[str, Any], p: Planned, out: Completion | HonedError) -> dict[str, Any]:
    """A `results` row; `base` holds the fields every call of the variant shares (see `_base`)."""
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
            "case_id": p.case.id,
            "sample_index": p.sample,
            "request_key": p.request.key(),
            "output": None,
            "parsed": None,
            "tool_calls": None,
            "retrieved": p.retrieved,
            "error": error,
            "input_tokens": 0,
            "output_tokens": 0,
            "latency_s": 0.0,
            "queue_s": None,
            "cost_usd": None,
            "cached": False,
        }
    return {
        **base,
        "case_id": p.case.id,
        "sample_index": p.sample,
        "request_key": completion.request_key,
        "output": completion.text,
        "parsed": completion.parsed,
        "tool_calls": list(completion.tool_calls) if completion.tool_calls else None,
        "retrieved": p.retrieved,
        "error": error,
        "input_tokens": completion.usage.input_tokens,
        "output_tokens": completion.usage.output_tokens,
        "latency_s": completion.latency_s,  # time in the model; the wait for a slot or a batch is apart
        "queue_s": completion.queue_s,
        "cost_usd": completion.cost_usd,
        "cached": completion.cached,
    }


def _base(run_id: str, exp: Experiment, p: Planned) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "variant": p.variant.id,
        "prompt_hash": p.variant.prompt_version.hash,
        "dataset_hash": exp.dataset.hash,
        "model": p.request.model,
        "params": p.request.params.to_dict(),
    }


@dataclass
class _Outcome:
    within_budget: bool
    errors: int  # calls of this session that ended in an error
    ok_rows: list[dict[str, Any]]  # the rows of this session's successful calls, for scoring


async def _call_all(
    h: Workspace, exp: Experiment, run: Run, calls: list[Planned], progress: Progress | None
) -> _Outcome:
    """Make the calls, at most each endpoint's limit at a time, writing a row for each."""
    budget = exp.spec.budget_usd
    spent = h.store.runs.spent(run.id)
    writer = _Writer(h.store)
    # Per endpoint, as many workers as the client's own limit take the calls in plan order from one
    # shared iterator: the budget is checked right before a call starts, and a queued call costs no task
    # or semaphore wait of its own (20,000 of them add up).
    endpoint_of: dict[str, str] = {}
    queues: dict[str, list[Planned]] = {}
    limits: dict[str, int] = {}
    for p in calls:
        name = endpoint_of.get(p.request.model)
        if name is None:
            provider, ref, endpoint = h.client.resolve(p.request.model)
            name = endpoint_of[p.request.model] = ref.endpoint
            limits[name] = endpoint.max_concurrency or provider.default_max_concurrency
        queues.setdefault(name, []).append(p)
    bases: dict[tuple[str, str, Params], dict[str, Any]] = {}
    outcome = _Outcome(True, 0, [])
    done = 0
    total = len(calls)
    stopping = False  # set by Ctrl-C: no new call starts
    in_flight = 0

    async def worker(queue: Iterator[Planned]) -> None:
        nonlocal spent, done, in_flight
        for p in queue:
            if stopping:
                return
            if budget is not None and spent >= budget:
                outcome.within_budget = False
                return
            in_flight += 1
            try:
                with log_context(
                    source="experiment",
                    prompt=p.variant.prompt.name,
                    prompt_version=p.variant.prompt_version.hash,
                    inputs=p.case.inputs,
                    metadata={"run_id": run.id, "variant": p.variant.id, "case_id": p.case.id},
                ):
                    out: Completion | HonedError = await h.client.complete(p.request)
            except HonedError as exc:
                out = exc
            finally:
                in_flight -= 1
            if isinstance(out, Completion) and not out.cached and out.cost_usd:
                spent += out.cost_usd
            key = (p.variant.id, p.request.model, p.request.params)
            base = bases.get(key)
            if base is None:
                base = bases[key] = _base(run.id, exp, p)
            row = _row(base, p, out)
            stored = writer.put(row)
            if row["error"] is None:
                outcome.ok_rows.append(row)
            else:
                outcome.errors += 1
            done += 1
            if progress is not None:
                progress("calls", done, total)
            await stored  # the row is committed before this worker takes another call

    if progress is not None:
        progress("calls", 0, total)
    flusher = asyncio.ensure_future(writer.run())
    workers: list[asyncio.Task[None]] = []
    for name, planned in queues.items():
        queue = iter(planned)
        workers += [asyncio.ensure_future(worker(queue)) for _ in range(min(limits[name], len(planned)))]
    calls_done = asyncio.gather(*workers)
    try:
        either: list[asyncio.Future[Any]] = [calls_done, flusher]
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Ctrl-C (asyncio.run cancels the main task; a second Ctrl-C raises KeyboardInterrupt): start no
            # new call, give the calls in flight a bounded time to finish and be stored, then say so.
            stopping = True
            waiting = in_flight
            if progress is not None:
                progress("stopping", 0, waiting)
            deadline = asyncio.get_running_loop().time() + INTERRUPT_GRACE_S
            while not calls_done.done() and asyncio.get_running_loop().time() < deadline:
                await asyncio.wait([calls_done], timeout=0.1)
                if progress is not None:
                    progress("stopping", waiting - in_flight, waiting)
            raise RunInterrupted(
                f"interrupted: {done} of {total} calls done"
                + (f", {in_flight} in flight dropped" if in_flight else "")
                + "; run the same command to resume",
            ) from None
        if flusher.done():  # the store failed: stop rather than make calls whose rows cannot be kept
            flusher.result()
        await calls_done  # a worker's failure
    finally:
        # A failed worker or store (or Ctrl-C) stops the others; what finished is written, synchronously,
        # since this also runs while the run is being cancelled.
        calls_done.cancel()
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(calls_done, flusher, return_exceptions=True)
        try:
            writer.close()
        finally:
            h.client.flush()
    return outcome


async def _score_all(
    h: Workspace, exp: Experiment, run: Run, results: list[dict[str, Any]], progress: Progress | None
) -> None:
    """Score every successful result in `results` that lacks a score from an evaluator (resumable)."""
    cases = {c.id: c for c in exp.cases}
    have = {
        (s["variant"], s["case_id"], s["sample_index"], s["evaluator"]) for s in h.store.runs.scores(run.id)
    }
    total = len(results) * len(exp.evaluators)
    todos = {
        ev.name: [r for r in results if (r["variant"], r["case_id"], r["sample_index"], ev.name) not in have]
        for ev in exp.evaluators
    }
    done = total - sum(len(t) for t in todos.values())
    if progress is not None and total:
        progress("scoring", done, total)
    for ev in exp.evaluators:
        todo = todos[ev.name]
        if not todo:
            continue
        for start in range(0, len(todo), 500):
            chunk = todo[start : start + 500]
            scores = await ev.evaluate_many([_eval_input(r, cases[r["case_id"]]) for r in chunk])
            await asyncio.to_thread(
                h.store.runs.put_scores,
                [_score_row(r, ev.name, ev.version, s) for r, s in zip(chunk, scores, strict=True)],
            )
            done += len(chunk)
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
        tool_calls=row.get("tool_calls"),
        context=_context(row.get("retrieved")),
        latency_s=row.get("latency_s"),
        cost_usd=row.get("cost_usd"),
    )


def _context(retrieved: list[dict[str, Any]] | None) -> list[str] | None:
    """The texts retrieval put into the prompt, in order (for faithfulness and context judges)."""
    if not retrieved:
        return None
    return [c["text"] for entry in retrieved for c in entry.get("chunks", []) if c.get("text")]


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
    h: Workspace,
    exp: Experiment,
    *,
    new: bool = False,
    progress: Progress | None = None,
    force: bool = False,
    latency_calls: int | None = None,
    by: str | None = None,
) -> Run:
    """Run (or continue) `exp`. Returns the run with its final status. Variants on a model that batches
    then have `latency_calls` calls timed one at a time (default: `[local] latency_calls`; see
    `honed.experiments.latency`). `by` is who runs it (default: the system user)."""
    store = h.store
    run, done = _resume_point(store, exp, new=new)
    with Renderer(h, base=exp.base) as renderer:
        calls = plan(exp, done, renderer)
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
    # Everything is checked (references, evaluators, every call rendered, the budget): now store.
    exp.store_prompts(h)
    if run is None:
        run = store.runs.create(
            exp.body(), exp.hash, name=exp.spec.name, budget_usd=budget, created_by=by or system_user()
        )
    else:
        store.runs.set_status(run.id, "running")
    finished = False
    # The planned calls (their rendered messages, one request each) live until the run ends. Frozen, the
    # collector's full passes during the call phase stop walking them again and again (with 20,000 calls
    # those passes took more CPU than honed's own per-call work); they return to it afterwards.
    try:
        gc.freeze()
        try:
            outcome = await _call_all(h, exp, run, calls, progress)
        finally:
            gc.unfreeze()
        if not outcome.within_budget:
            finished = True
            store.runs.set_status(run.id, "budget_exceeded")
            return store.runs.get(run.id)
        # Every stored row that is not a finished call (an error, or missing) was planned, and so made
        # again, above: this session's rows are the run's errors, and with no earlier finished calls
        # they are all its results. Only a resumed run reads its results back to score them.
        results = outcome.ok_rows
        if done:
            results = [r for r in store.runs.results(run.id) if r["error"] is None]
        await _score_all(h, exp, run, results, progress)
        calls_each = h.settings.local.latency_calls if latency_calls is None else latency_calls
        await _probe_latency(h, exp, run, calls_each, progress)
        finished = True
    finally:
        if not finished:
            store.runs.set_status(run.id, "stopped")
    store.runs.set_status(run.id, "completed" if outcome.errors == 0 else "failed")
    return store.runs.get(run.id)


async def _probe_latency(
    h: Workspace, exp: Experiment, run: Run, calls: int, progress: Progress | None
) -> None:
    """Time `calls` calls one at a time per variant whose model batches (a batched call's time in the
    model is its batch's), unless the run already holds as many for it (a resumed run). A variant whose
    every call came from the cache keeps the figures an earlier run of the same spec timed, as a cached
    answer keeps its call's latency: nothing new was run, so nothing new is timed."""
    if calls <= 0:
        return
    have: dict[str, list[float]] = dict((run.latency_probe or {}).get("variants") or {})
    todo = [
        v for v in exp.variants if h.client.resolve(v.model)[0].batches and len(have.get(v.id) or ()) < calls
    ]
    if not todo:
        return
    fresh = h.store.runs.fresh_calls(run.id)
    reused: dict[str, str] = {}
    for variant in [v for v in todo if not fresh.get(v.id)]:
        for earlier, probe in h.store.runs.earlier_probes(run.spec_hash, run.id):
            times = (probe.get("variants") or {}).get(variant.id) or []
            if len(times) >= calls:
                have[variant.id] = list(times)
                # Name the run that timed them, through any runs that kept them before this one.
                reused[variant.id] = (probe.get("reused_from") or {}).get(variant.id, earlier)
                break
    todo = [v for v in todo if v.id not in reused]
    probed = (
        await aprobe(h, replace(exp, variants=tuple(todo)), calls, run_id=run.id, progress=progress)
        if todo
        else {}
    )
    body: dict[str, Any] = {"calls": calls, "variants": {**have, **probed}}
    if reused:
        body["reused_from"] = reused
    h.store.runs.set_latency_probe(run.id, body)


# For the CLI and scripts.
run_experiment = synchronous(arun, lambda h: h.client, name="run_experiment")
