"""The `Chain` value type: prompts run in order, each step's output a variable of the steps after it.

This is the "make the model do each step" pattern: instead of one prompt that extracts, reasons and
answers at once, each step is its own call whose result the next one reads. A step names a stored prompt
(`NAME[@REF]`) or holds one inline. Like a prompt, a chain is versioned by its `body()`; a reference
such as `qa@production` is stored as written (the chain follows the label), and every run reports the
exact prompt version each step used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from honed.hashing import content_hash
from honed.prompts.spec import Named, Prompt

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9:._-]+)?$")


def _step_kind(value: Any) -> str:
    return "<inline>" if isinstance(value, Mapping | Prompt) else "<ref>"


class ChainStep(BaseModel):
    """`prompt`: `NAME[@REF]` of a stored prompt, or an inline prompt (named after `output` unless it says
    otherwise). `output`: the variable later steps read this step's result from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Annotated[
        Annotated[str, Tag("<ref>")] | Annotated[Prompt, Tag("<inline>")], Discriminator(_step_kind)
    ]
    output: str

    @model_validator(mode="before")
    @classmethod
    def _inline_name(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("prompt"), Mapping):
            prompt = data["prompt"]
            if "name" not in prompt and isinstance(data.get("output"), str):
                return {**data, "prompt": {"name": data["output"], **prompt}}
        return data

    @field_validator("prompt")
    @classmethod
    def _ref(cls, value: str | Prompt) -> str | Prompt:
        if isinstance(value, str) and not _REF.match(value):
            raise ValueError(
                f"{value!r} is not a prompt reference: use NAME or NAME@REF (e.g. qa@production)"
            )
        return value

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a variable name: use letters, digits and _")
        return value


class Chain(Named):
    """An ordered list of steps. Build one with `Chain.parse(mapping)` or `honed.prompts.load_chain`."""

    noun = "chain"

    name: str
    description: str | None = None
    steps: list[ChainStep] = Field(min_length=1)

    @field_validator("steps")
    @classmethod
    def _unique_outputs(cls, steps: list[ChainStep]) -> list[ChainStep]:
        seen: set[str] = set()
        for i, step in enumerate(steps, 1):
            if step.output in seen:
                raise ValueError(f"step {i} reuses the output name {step.output!r}; each step needs its own")
            seen.add(step.output)
        return steps

    def body(self) -> dict[str, Any]:
        """Canonical JSON content for the version hash; inline prompts appear as their own bodies."""
        steps: list[dict[str, Any]] = []
        for step in self.steps:
            prompt = step.prompt
            if isinstance(prompt, Prompt):
                inline = prompt.body()
                if prompt.name != step.output:
                    inline["name"] = prompt.name
                steps.append({"prompt": inline, "output": step.output})
            else:
                steps.append({"prompt": prompt, "output": step.output})
        out: dict[str, Any] = {"steps": steps}
        if self.description is not None:
            out["description"] = self.description
        return out

    def version(self) -> str:
        return content_hash(self.body())
