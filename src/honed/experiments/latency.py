"""Latency as one user sees it: a few calls per variant made one at a time, apart from the run.

A run sends its calls all at once, so even the time in the model there is that of a batch (the local
model runs up to `max_batch` calls together, and a call ends with its batch). Comparisons that report
latency per variant (`finetune compare`, the ladder) therefore time a short probe after the run: per
variant, `calls` uncached calls in turn on the run's first cases, after one warm-up call that loads a model
or an adapter and is not counted. Each figure is the call's time in the model (`Completion.latency_s`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from honed.errors import HonedError, OutputParseError
from honed.models.types import Completion

if TYPE_CHECKING:
    from honed.api import Honed
    from honed.experiments.spec import Experiment
    from honed.models.types import ChatRequest

__all__ = ["latency_probe"]


def latency_probe(h: Honed, exp: Experiment, calls: int, *, run_id: str) -> dict[str, list[float]]:
    """Per variant of `exp`, the times in the model of `calls` uncached calls made one at a time on its
    first cases (after a warm-up call). Prompts that retrieve are rendered with their retrieval first;
    the retrieval is not timed. The calls are logged with the run id and `purpose: latency probe`."""
    from honed.experiments.runner import plan
    from honed.logs.context import log_context

    if calls <= 0 or not exp.cases:
        return {}
    # The warm-up call and `calls` timed ones, each on its own case where there are enough.
    few = dataclasses.replace(exp, cases=exp.cases[: calls + 1])
    augmenter = None
    if any(v.prompt.augmented for v in few.variants):
        from honed.rag.augment import Augmenter

        augmenter = Augmenter(h, base=few.base)
    try:
        planned = plan(few, set(), augmenter)
    finally:
        if augmenter is not None:
            augmenter.close()
    per_case: dict[str, list[ChatRequest]] = {v.id: [] for v in few.variants}
    for p in planned:
        if p.sample == 0:
            per_case[p.variant.id].append(p.request)
    # Fewer cases than calls: go round them again (as further samples, never served from the cache).
    requests = {
        variant: [
            dataclasses.replace(reqs[i % len(reqs)], sample_index=i // len(reqs)) for i in range(calls + 1)
        ]
        for variant, reqs in per_case.items()
        if reqs
    }

    async def main() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        try:
            for variant, reqs in requests.items():
                latencies = []
                for i, request in enumerate(reqs):
                    try:
                        completion = await h.client.complete(request)
                    except OutputParseError as exc:  # answered, in a form the schema did not want
                        if not isinstance(exc.completion, Completion):
                            continue
                        completion = exc.completion
                    except HonedError:
                        continue  # a failed call has no time in the model; the run reports its errors
                    if i > 0:
                        latencies.append(completion.latency_s)
                out[variant] = latencies
        finally:
            await h.client.aclose_providers()
        return out

    cache, h.client.use_cache = h.client.use_cache, False
    try:
        with log_context(source="experiment", metadata={"run_id": run_id, "purpose": "latency probe"}):
            return asyncio.run(main())
    finally:
        h.client.use_cache = cache
