"""Running prompts and chains: render (retrieval included), call the model through `ModelClient` (so the
cache, retries, limits, cost and call logging apply), and log the call with its prompt.

This is the one entry point for running a prompt: `honed prompts run`, the library's `honed.run_prompt`,
and the web playground call it; experiments render with the same `Renderer` and batch their calls.

The model a call uses is the first of: the `model` argument (a flag beats the file, as everywhere in
honed), the prompt's own `model:`, the workspace's `default_model`. Before the first call the models are
made ready: an unknown model or a missing API key fails before any work, and local weights load before
anything is timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack

from honed.errors import HonedError
from honed.logs.context import log_context
from honed.models.client import ModelClient, synchronous
from honed.models.types import ChatRequest, Completion
from honed.prompts.chain import Chain
from honed.prompts.inputs import check_chain_variables, resolve_steps
from honed.prompts.spec import Prompt
from honed.run.render import ParamsArg, Renderer
from honed.workspace import Workspace


class RunOptions(TypedDict, total=False):
    """How to run a prompt, every key optional: `model` (else the prompt's `model:`, else the workspace's
    default), `params` over the prompt's, `base` (the folder of the prompt's file: its `file` resources
    are relative to it) and `renderer` (an open one shared across calls)."""

    model: str | None
    params: ParamsArg
    base: Path | None
    renderer: Renderer | None


@dataclass(frozen=True, slots=True)
class PromptRun:
    """One prompt run: the prompt, the request sent, the completion, and what was retrieved for it
    (None when the prompt does not retrieve)."""

    prompt: Prompt
    request: ChatRequest
    completion: Completion
    retrieved: list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        return self.completion.text

    @property
    def log_id(self) -> str | None:
        """The id the call was logged under (for `Honed.feedback`); None when it was not logged."""
        return self.completion.log_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt.name,
            "version": self.prompt.version(),
            "messages": list(self.request.messages),
            **({"retrieved": self.retrieved} if self.retrieved is not None else {}),
            **self.completion.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of a chain run: the exact prompt version used, what was sent, what came back, and the
    value later steps saw (the text, or the parsed JSON when the prompt has a response schema)."""

    index: int
    output: str
    prompt: Prompt
    version: str
    request: ChatRequest
    completion: Completion
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.index,
            "output": self.output,
            "prompt": self.prompt.name,
            "version": self.version,
            "messages": list(self.request.messages),
            "value": self.value,
            **{k: v for k, v in self.completion.to_dict().items() if k not in ("text", "parsed")},
            "text": self.completion.text,
        }


@dataclass(frozen=True, slots=True)
class ChainResult:
    chain: str
    steps: list[StepResult]

    @property
    def outputs(self) -> dict[str, Any]:
        return {s.output: s.value for s in self.steps}

    @property
    def final(self) -> Any:
        """The last step's value: the chain's answer."""
        return self.steps[-1].value

    def to_dict(self) -> dict[str, Any]:
        return {"chain": self.chain, "outputs": self.outputs, "steps": [s.to_dict() for s in self.steps]}


def prompt_log_context(prompt: Prompt, inputs: Mapping[str, Any] | None) -> AbstractContextManager[Any]:
    """The log context of a call that runs `prompt`: the logged generation carries the prompt's name, its
    version and the inputs it was rendered with, so `honed logs list --prompt NAME` finds it."""
    return log_context(prompt=prompt.name, prompt_version=prompt.version(), inputs=dict(inputs or {}))


def _client(h: Workspace) -> ModelClient:
    return h.client


def ready(h: Workspace, models: Sequence[str]) -> None:
    """Fail fast on an unknown model or a missing key, and load local weights before anything is timed
    (a call the response cache answers loads nothing)."""
    for ref in dict.fromkeys(models):
        h.client.resolve(ref)[0].preflight()


async def arun_prompt(
    h: Workspace,
    prompt: Prompt,
    variables: Mapping[str, Any] | None = None,
    **options: Unpack[RunOptions],
) -> PromptRun:
    """Render and run `prompt` once. `base` is the folder of the prompt's file (its `file` resources are
    relative to it); `renderer` shares an open one across calls."""
    request, retrieved = _prepare(h, prompt, variables, options)
    with prompt_log_context(prompt, variables):
        completion = await h.client.complete(request)
    return PromptRun(prompt, request, completion, retrieved)


async def astream_prompt(
    h: Workspace,
    prompt: Prompt,
    variables: Mapping[str, Any] | None = None,
    **options: Unpack[RunOptions],
) -> AsyncIterator[str | PromptRun]:
    """`arun_prompt`, yielding the output in pieces as the model writes them, then the `PromptRun`.
    Drive it from one task: the log context it sets spans its pieces."""
    request, retrieved = _prepare(h, prompt, variables, options)
    completion: Completion | None = None
    with prompt_log_context(prompt, variables):
        async for item in h.client.stream(request):
            if isinstance(item, str):
                yield item
            else:
                completion = item
    assert completion is not None  # the client's stream always ends with its completion
    yield PromptRun(prompt, request, completion, retrieved)


def _prepare(
    h: Workspace, prompt: Prompt, variables: Mapping[str, Any] | None, options: RunOptions
) -> tuple[ChatRequest, list[dict[str, Any]] | None]:
    """The request to send (rendered, retrieval included) with what was retrieved, the model made ready."""
    renderer, base = options.get("renderer"), options.get("base")
    own = renderer is None
    rend = renderer if renderer is not None else Renderer(h, base=base)
    try:
        request, retrieved = rend.request(
            prompt, variables, model=options.get("model"), params=options.get("params"), base=base
        )
    finally:
        if own:
            rend.close()
    ready(h, [request.model])
    h.client.warm([request])
    return request, retrieved


run_prompt = synchronous(arun_prompt, _client, name="run_prompt", flush=True)


def run_prompt_many(
    h: Workspace,
    prompt: Prompt,
    many: Sequence[Mapping[str, Any]],
    *,
    model: str | None = None,
    params: ParamsArg = None,
    base: Path | None = None,
) -> list[PromptRun | HonedError]:
    """Run `prompt` once per variables mapping, concurrently (so the local model batches them); failures
    come back in place. Each call is logged with the prompt's name, version and its own inputs."""

    async def all_of_them(renderer: Renderer) -> list[PromptRun | HonedError]:
        async def one(variables: Mapping[str, Any]) -> PromptRun | HonedError:
            try:
                return await arun_prompt(h, prompt, variables, model=model, params=params, renderer=renderer)
            except HonedError as exc:
                return exc

        return list(await asyncio.gather(*(one(v) for v in many)))

    with Renderer(h, base=base) as renderer:
        return h.client.blocking(lambda: all_of_them(renderer), flush=True)


@dataclass(frozen=True, slots=True)
class Piece:
    """Text that the model of `column` wrote for variable set `row` of a grid run, as it arrived."""

    row: int
    column: int
    text: str


Grid = list[list[PromptRun | HonedError]]
"""One row per variable set, one run or failure per model, in order."""


async def astream_prompt_grid(
    h: Workspace,
    prompt: Prompt,
    models: Sequence[str],
    variable_sets: Sequence[Mapping[str, Any]],
) -> AsyncIterator[Piece | Grid]:
    """`prompt` on each model for each set of variables, all calls at once (the playground's side by
    side), yielding each output's pieces as they arrive, then the whole `Grid`. A model that cannot be
    made ready fails in its own column only; local weights load off the event loop (a server running
    this keeps answering meanwhile). New cache entries are written at the end, so a rerun hits them.
    A caller that stops reading cancels the calls still running."""
    unready: dict[str, HonedError] = {}
    for model in models:
        try:
            await asyncio.to_thread(ready, h, [model])
        except HonedError as exc:
            unready[model] = exc
    pieces: asyncio.Queue[Piece | None] = asyncio.Queue()

    async def one(renderer: Renderer, row: int, column: int) -> PromptRun | HonedError:
        model = models[column]
        if model in unready:
            return unready[model]
        run: PromptRun | HonedError | None = None
        try:
            async for item in astream_prompt(h, prompt, variable_sets[row], model=model, renderer=renderer):
                if isinstance(item, str):
                    pieces.put_nowait(Piece(row, column, item))
                else:
                    run = item
        except HonedError as exc:
            run = exc
        assert run is not None
        return run

    with Renderer(h) as renderer:
        cells = [(r, c) for r in range(len(variable_sets)) for c in range(len(models))]
        everything = asyncio.gather(*(one(renderer, r, c) for r, c in cells))
        everything.add_done_callback(lambda _: pieces.put_nowait(None))
        try:
            while (piece := await pieces.get()) is not None:
                yield piece
            flat = everything.result()
        finally:
            everything.cancel()
    if h.client.use_cache:
        await asyncio.to_thread(h.client.flush)
    per = len(models)
    yield [list(flat[i * per : (i + 1) * per]) for i in range(len(variable_sets))]


async def arun_prompt_grid(
    h: Workspace,
    prompt: Prompt,
    models: Sequence[str],
    variable_sets: Sequence[Mapping[str, Any]],
) -> Grid:
    """`astream_prompt_grid`'s grid, for a caller that shows the outputs only when all are done."""
    async for event in astream_prompt_grid(h, prompt, models, variable_sets):
        if not isinstance(event, Piece):
            return event
    raise AssertionError("the grid's stream ended without its grid")


async def arun_chain(
    h: Workspace,
    chain: Chain,
    inputs: Mapping[str, Any] | None = None,
    *,
    model: str | None = None,
    params: ParamsArg = None,
    base: Path | None = None,
) -> ChainResult:
    """Run the steps in order; step N renders with the inputs and the outputs of steps 1..N-1. A failure
    is raised with the chain and step prepended to its message. Every step's model is made ready, and
    every name checked, before the first call."""
    values = dict(inputs or {})
    prompts = resolve_steps(chain, h.store)
    check_chain_variables(chain, prompts, values)
    with Renderer(h, base=base) as renderer:
        ready(h, [m for p in prompts if (m := renderer.model(p, model)) is not None])
        done: list[StepResult] = []
        for i, (step, prompt) in enumerate(zip(chain.steps, prompts, strict=True), 1):
            try:
                run = await arun_prompt(
                    h,
                    prompt,
                    {k: v for k, v in values.items() if k in prompt.variables()},
                    model=model,
                    params=params,
                    renderer=renderer,
                )
            except HonedError as exc:
                exc.message = f"chain {chain.name!r} step {i} ({step.output}): {exc.message}"
                raise
            completion = run.completion
            value = completion.parsed if prompt.response_schema is not None else completion.text
            values[step.output] = value
            done.append(StepResult(i, step.output, prompt, prompt.version(), run.request, completion, value))
    return ChainResult(chain.name, done)


run_chain = synchronous(arun_chain, _client, name="run_chain", flush=True)
