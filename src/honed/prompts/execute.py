"""Running prompts and chains through `ModelClient`, so the cache, retries, limits and cost apply.

The model a call uses is the first of: the `model` argument (a flag beats the file, as everywhere in
honed), the prompt's own `model:`, the workspace's `default_model`.

A chain checks before its first call that every variable each step reads comes from the inputs or an
earlier step's output, so a typo does not cost the calls of the steps before it. (That check reads the
templates, so a variable used only under `{% if x is defined %}` must still be given: pass it empty.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from honed.errors import HonedError, InvalidInputError
from honed.logs.context import log_context
from honed.models.types import ChatRequest, Completion, Params
from honed.prompts.chain import Chain
from honed.prompts.registry import get_prompt
from honed.prompts.spec import Prompt

if TYPE_CHECKING:
    from honed.models.client import ModelClient
    from honed.store import Store

T = TypeVar("T")
ParamsArg = Params | Mapping[str, Any] | None
Augment = Callable[[Prompt, Mapping[str, Any]], tuple[dict[str, Any], list[tuple[str, str]]]]
"""`augment(prompt, variables) -> (variables, examples)`: what a prompt that retrieves renders with
(`honed.rag.augment.Augmenter` provides it; prompts cannot depend on retrieval themselves)."""


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


def prompt_request(
    client: ModelClient,
    prompt: Prompt,
    variables: Mapping[str, Any] | None = None,
    *,
    model: str | None = None,
    params: ParamsArg = None,
    sample_index: int = 0,
) -> ChatRequest:
    chosen = model or prompt.model or client.settings.default_model
    return prompt.request(variables, model=chosen, params=params, sample_index=sample_index)


def prompt_log_context(prompt: Prompt, inputs: Mapping[str, Any] | None) -> AbstractContextManager[Any]:
    """The log context of a call that runs `prompt` (every path that does: the API, the CLI, chains):
    the logged generation carries the prompt's name, its version and the inputs it was rendered with, so
    `honed logs list --prompt NAME` finds it."""
    return log_context(prompt=prompt.name, prompt_version=prompt.version(), inputs=dict(inputs or {}))


def run_prompt(
    client: ModelClient,
    prompt: Prompt,
    variables: Mapping[str, Any] | None = None,
    *,
    model: str | None = None,
    params: ParamsArg = None,
) -> Completion:
    """Render and run `prompt` synchronously (not from inside a running event loop)."""
    request = prompt_request(client, prompt, variables, model=model, params=params)
    with prompt_log_context(prompt, variables):
        return _sync(client, lambda: client.complete(request))


def run_prompt_many(
    client: ModelClient,
    prompt: Prompt,
    many: Sequence[Mapping[str, Any]],
    *,
    model: str | None = None,
    params: ParamsArg = None,
) -> list[Completion | HonedError]:
    """Run `prompt` once per variables mapping, concurrently (so the local model batches them); failures
    come back in place. Each call is logged with the prompt's name, version and its own inputs."""

    async def one(variables: Mapping[str, Any]) -> Completion | HonedError:
        try:
            request = prompt_request(client, prompt, variables, model=model, params=params)
            with prompt_log_context(prompt, variables):
                return await client.complete(request)
        except HonedError as exc:
            return exc

    async def all_of_them() -> list[Completion | HonedError]:
        return list(await asyncio.gather(*(one(v) for v in many)))

    return _sync(client, all_of_them)


def resolve_steps(chain: Chain, store: Store | None) -> list[Prompt]:
    """The prompt each step runs: inline ones as they are, references fetched from `store`."""
    prompts: list[Prompt] = []
    for i, step in enumerate(chain.steps, 1):
        if isinstance(step.prompt, Prompt):
            prompts.append(step.prompt)
        elif store is None:
            raise InvalidInputError(
                f"chain {chain.name!r} step {i} refers to stored prompt {step.prompt!r}, "
                "but there is no store",
                hint="run inside a workspace (honed init) or put the prompt inline",
            )
        else:
            prompts.append(get_prompt(store, step.prompt)[1])
    return prompts


def check_chain_variables(chain: Chain, prompts: list[Prompt], inputs: Mapping[str, Any]) -> None:
    outputs = [s.output for s in chain.steps]
    clash = sorted(set(inputs) & set(outputs))
    if clash:
        raise InvalidInputError(
            f"chain {chain.name!r}: input(s) {', '.join(map(repr, clash))} have the name of a step's output",
            hint="rename the input or the step's `output`",
        )
    available = set(inputs)
    for i, (step, prompt) in enumerate(zip(chain.steps, prompts, strict=True), 1):
        for var in sorted(prompt.variables() - available):
            later = var in outputs
            raise InvalidInputError(
                f"chain {chain.name!r} step {i} ({step.output}): prompt {prompt.name!r} reads variable "
                f"{var!r}, which " + ("a later step produces" if later else "no input or earlier step gives"),
                hint=f"available here: {', '.join(sorted(available)) or 'none'}"
                + ("" if later else f"; pass it with --var {var}=..."),
            )
        available.add(step.output)


async def arun_chain(
    client: ModelClient,
    chain: Chain,
    inputs: Mapping[str, Any] | None = None,
    *,
    store: Store | None = None,
    model: str | None = None,
    params: ParamsArg = None,
    augment: Augment | None = None,
) -> ChainResult:
    """Run the steps in order; step N renders with the inputs and the outputs of steps 1..N-1. A failure
    is raised with the chain and step prepended to its message. A step whose prompt retrieves is
    prepared by `augment`."""
    values = dict(inputs or {})
    prompts = resolve_steps(chain, store if store is not None else client.store)
    check_chain_variables(chain, prompts, values)
    done: list[StepResult] = []
    for i, (step, prompt) in enumerate(zip(chain.steps, prompts, strict=True), 1):
        try:
            if prompt.augmented:
                if augment is None:
                    raise InvalidInputError(
                        f"prompt {prompt.name!r} retrieves, but nothing was given to retrieve with",
                        hint="run it with honed (the CLI, or honed.rag.augment.Augmenter)",
                    )
                rendered, examples = augment(prompt, values)
                chosen = model or prompt.model or client.settings.default_model
                request = prompt.request(rendered, model=chosen, params=params, examples=examples)
            else:
                request = prompt_request(client, prompt, values, model=model, params=params)
            with prompt_log_context(prompt, {k: v for k, v in values.items() if k in prompt.variables()}):
                completion = await client.complete(request)
        except HonedError as exc:
            exc.message = f"chain {chain.name!r} step {i} ({step.output}): {exc.message}"
            raise
        value = completion.parsed if prompt.response_schema is not None else completion.text
        values[step.output] = value
        done.append(StepResult(i, step.output, prompt, prompt.version(), request, completion, value))
    return ChainResult(chain.name, done)


def run_chain(
    client: ModelClient,
    chain: Chain,
    inputs: Mapping[str, Any] | None = None,
    *,
    store: Store | None = None,
    model: str | None = None,
    params: ParamsArg = None,
    augment: Augment | None = None,
) -> ChainResult:
    """`arun_chain`, synchronously (not from inside a running event loop)."""
    return _sync(
        client,
        lambda: arun_chain(client, chain, inputs, store=store, model=model, params=params, augment=augment),
    )


def read_variables(pairs: Sequence[str], vars_file: Path | None = None) -> dict[str, Any]:
    """Variables from a JSON object file, then `KEY=VALUE` pairs on top (values are strings)."""
    values: dict[str, Any] = {}
    if vars_file is not None:
        try:
            loaded = json.loads(vars_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInputError(f"{vars_file}: cannot read ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{vars_file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(loaded, dict):
            raise InvalidInputError(f"{vars_file}: expected a JSON object of variables")
        values.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--var {pair!r} is not KEY=VALUE", hint='e.g. --var question="Why?"')
        values[key] = value
    return values


def _sync(client: ModelClient, make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await make()
        finally:
            await client.aclose()

    return asyncio.run(main())
