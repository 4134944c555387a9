"""A ladder plan: the steps of an optimisation path, each building on the one before.

    name: catalogue-ladder
    dataset: catalogue@latest      # pinned to a version when run
    split: test                    # optional
    primary: correct               # the evaluator the ladder climbs on (default: the first)
    evaluators: [{type: contains, name: correct}, {type: json_valid, name: format}]
    steps:
      - {id: baseline, prompt: prompts/bare.yaml, model: local/smollm2-135m-instruct}
      - {id: instructions, prompt: prompts/instructions.yaml}   # inherits the model
      - {id: fine-tuned, model: local/smollm2-135m-instruct+ft-abc}  # inherits the prompt

A step states only what it changes: every field it leaves out (prompt, model, params) is the previous
step's, and a field it sets replaces the previous value whole (params are not merged, so a step reads
the same wherever it sits). Prompt files are relative to the plan file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from honed.errors import InvalidInputError
from honed.experiments.spec import read_spec_file, spec_error
from honed.store.names import check_name

__all__ = ["LadderPlan", "Step", "load_plan", "parse_plan"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _StepSpec(_Strict):
    id: str = Field(min_length=1, max_length=100)
    prompt: str | None = None
    model: str | None = None
    params: dict[str, Any] | None = None
    note: str | None = None


class _PlanSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    dataset: str = Field(min_length=1)
    split: str | None = None
    repeats: int = Field(default=1, ge=1, le=100)
    primary: str | None = None
    evaluators: list[dict[str, Any]] = Field(min_length=1)
    steps: list[_StepSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Step:
    """One rung with everything inherited filled in. `model` None: the prompt's model or the default."""

    id: str
    prompt: str
    model: str | None
    params: dict[str, Any]
    note: str | None = None


@dataclass(frozen=True)
class LadderPlan:
    name: str
    dataset: str
    split: str | None
    repeats: int
    primary: str | None
    evaluators: tuple[dict[str, Any], ...]
    steps: tuple[Step, ...]
    #: The folder prompt files are read from (the plan file's); None for a plan built in code.
    base: Path | None = None
    source: str = "ladder plan"


def load_plan(path: Path) -> LadderPlan:
    """Read and validate a plan file; errors are one line naming the file and the field."""
    return parse_plan(read_spec_file(path, "ladder plan"), source=str(path), base=path.resolve().parent)


def parse_plan(data: dict[str, Any], *, source: str = "ladder plan", base: Path | None = None) -> LadderPlan:
    """Validate a plan given as a mapping and fill in what each step inherits."""
    try:
        spec = _PlanSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error(exc, source) from None
    try:
        check_name("ladder", spec.name)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{source}: name: {exc.message}", hint=exc.hint) from None
    seen: set[str] = set()
    steps: list[Step] = []
    prompt: str | None = None
    model: str | None = None
    params: dict[str, Any] = {}
    for i, s in enumerate(spec.steps):
        if s.id in seen:
            raise InvalidInputError(
                f"{source}: steps.{i}.id: {s.id!r} is used by an earlier step",
                hint="give each step its own id",
            )
        seen.add(s.id)
        prompt = s.prompt or prompt
        if prompt is None:
            raise InvalidInputError(
                f"{source}: steps.0.prompt: the first step must set a prompt",
                hint="later steps inherit it; e.g. prompt: prompts/bare.yaml",
            )
        model = s.model or model
        params = dict(s.params) if s.params is not None else params
        steps.append(Step(s.id, prompt, model, dict(params), s.note))
    return LadderPlan(
        name=spec.name,
        dataset=spec.dataset,
        split=spec.split,
        repeats=spec.repeats,
        primary=spec.primary,
        evaluators=tuple(spec.evaluators),
        steps=tuple(steps),
        base=base,
        source=source,
    )
