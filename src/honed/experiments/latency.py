"""Latency as one user sees it, and the one way honed summarises it.

A call's latency is its time in the model (`Completion.latency_s`): the wait for a concurrency slot or a
batch is apart (`queue_s`). A cached row keeps the figure of the call that produced it, so a run replayed
from the cache reports the latency it measured. Every report (`experiments show`, the HTML report, the CI
gate's `latency_p95_s`, the ladder, `finetune compare`) summarises these figures with `summarise`.

A run sends its calls all at once, so on a provider that batches (the local model runs up to `max_batch`
calls together, and a call ends with its batch) even the time in the model is that of a batch, not of one
call. So after a run, `probe` times a few calls per such variant made one at a time (uncached, on the
run's first cases, after one warm-up call that loads a model or an adapter and is not counted), and those
figures stand for the variant's latency (`ONE_AT_A_TIME`), stored with the run; the run's own figures are
kept beside them (`IN_THE_RUN`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from honed.errors import HonedError, OutputParseError
from honed.models.types import Completion
from honed.run.render import Renderer

if TYPE_CHECKING:
    from honed.experiments.spec import Experiment
    from honed.models.types import ChatRequest
    from honed.workspace import Workspace

__all__ = ["IN_THE_RUN", "ONE_AT_A_TIME", "Latency", "aprobe", "latency_probe", "percentile", "summarise"]

#: how the figures were measured: calls made one at a time after the run, or the run's own calls
ONE_AT_A_TIME = "one at a time"
IN_THE_RUN = "in the run"


@dataclasses.dataclass(frozen=True)
class Latency:
    """Time in the model per call: median, 95th percentile, how many calls, and how they were made."""

    p50_s: float
    p95_s: float
    calls: int
    mode: str  # ONE_AT_A_TIME or IN_THE_RUN


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`th percentile (numpy's linear interpolation), None for no values."""
    return float(np.percentile(values, q)) if len(values) else None


def summarise(times: Sequence[float], mode: str = IN_THE_RUN) -> Latency | None:
    """p50 and p95 of `times` (None when there are none)."""
    if not len(times):
        return None
    return Latency(float(np.percentile(times, 50)), float(np.percentile(times, 95)), len(times), mode)


def latency_probe(h: Workspace, exp: Experiment, calls: int, *, run_id: str) -> dict[str, list[float]]:
    """`aprobe` from synchronous code; closes the providers it opened."""
    return h.client.blocking(lambda: aprobe(h, exp, calls, run_id=run_id))


async def aprobe(
    h: Workspace,
    exp: Experiment,
    calls: int,
    *,
    run_id: str,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, list[float]]:
    """Per variant of `exp`, the times in the model of `calls` uncached calls made one at a time on its
    first cases (after a warm-up call). Prompts that retrieve are rendered with their retrieval first;
    the retrieval is not timed. The calls are logged with the run id and `purpose: latency probe`."""
    from honed.logs.context import log_context

    requests = _requests(h, exp, calls)  # rendered as the run renders them (retrieval included)
    phase = f"latency: 1 warm-up + {calls} calls one at a time, per variant"
    total, done = sum(len(r) for r in requests.values()), 0
    out: dict[str, list[float]] = {}
    cache, h.client.use_cache = h.client.use_cache, False
    try:
        with log_context(source="experiment", metadata={"run_id": run_id, "purpose": "latency probe"}):
            for variant, reqs in requests.items():
                latencies = []
                for i, request in enumerate(reqs):
                    completion = await _timed(h, request)
                    if completion is not None and i > 0:
                        latencies.append(completion.latency_s)
                    done += 1
                    if progress is not None:
                        progress(phase, done, total)
                out[variant] = latencies
    finally:
        h.client.use_cache = cache
    return out


async def _timed(h: Workspace, request: ChatRequest) -> Completion | None:
    try:
        return await h.client.complete(request)
    except OutputParseError as exc:  # answered, in a form the schema did not want: still timed
        return exc.completion if isinstance(exc.completion, Completion) else None
    except HonedError:
        return None  # a failed call has no time in the model; the run reports its errors


def _requests(h: Workspace, exp: Experiment, calls: int) -> dict[str, list[ChatRequest]]:
    """Per variant, the warm-up request and `calls` timed ones, each on its own case where there are
    enough; with fewer cases, round them again as further samples (never served from the cache)."""
    from honed.experiments.runner import plan

    if calls <= 0 or not exp.cases:
        return {}
    few = dataclasses.replace(exp, cases=exp.cases[: calls + 1])
    with Renderer(h, base=few.base) as renderer:
        planned = plan(few, set(), renderer)
    per_case: dict[str, list[ChatRequest]] = {v.id: [] for v in few.variants}
    for p in planned:
        if p.sample == 0:
            per_case[p.variant.id].append(p.request)
    return {
        variant: [
            dataclasses.replace(reqs[i % len(reqs)], sample_index=i // len(reqs)) for i in range(calls + 1)
        ]
        for variant, reqs in per_case.items()
        if reqs
    }


def stored(body: Any) -> dict[str, Latency]:
    """The probe stored with a run (`{"calls": N, "variants": {id: [seconds]}}`), summarised per variant."""
    if not isinstance(body, dict):
        return {}
    out = {}
    for variant, times in (body.get("variants") or {}).items():
        found = summarise([float(t) for t in times], ONE_AT_A_TIME)
        if found is not None:
            out[variant] = found
    return out
