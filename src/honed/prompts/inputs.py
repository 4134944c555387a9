"""What a prompt or chain runs with: variables from `--var KEY=VALUE` pairs and a JSON file, the prompts a
chain's steps resolve to, and the check that every variable each step reads is given.

A chain is checked before its first call, so a typo does not cost the calls of the steps before it.
(That check reads the templates, so a variable used only under `{% if x is defined %}` must still be
given: pass it empty.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honed.errors import InvalidInputError
from honed.prompts.chain import Chain
from honed.prompts.registry import get_prompt
from honed.prompts.spec import Prompt

if TYPE_CHECKING:
    from honed.store import Store


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
