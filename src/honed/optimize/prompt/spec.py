"""The spec of a prompt search (`honed optimize prompt SPEC.yaml`):

    name: nq-json                      # default: the file's stem
    prompt: qa@v1                      # the start: a stored version (NAME@REF) or a prompt file
    dataset: nq@latest                 # pinned to a version when run
    splits: {train: train, dev: dev, test: test}   # demonstrations/reflection, selection, the verdict
    evaluators: [{type: json_valid, name: valid_json}, {type: python, name: correct, ...}]
    primary: correct                   # the evaluator the search climbs on (default: the first)
    student: local/smollm2-135m-instruct   # default: the prompt's model, else the workspace default
    proposer: null                     # the model that writes new instructions (default: the student)
    target: '{"answer": "{{ reference[0] }}"}'   # a labelled demonstration's reply
    budget: {calls: 600, usd: 1.0}     # at least one; estimated before the start, a hard stop during it
    strategies:
      few_shot: {k: [1, 3], select: [bootstrapped, similar], bootstrap_cases: 20}
      instructions: {iterations: 2, minibatch: 3}   # GEPA's reflective mutation

Unknown keys are errors, and every error names the file, the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from honed.errors import InvalidInputError
from honed.experiments.spec import read_spec_file
from honed.prompts.template import TemplateText
from honed.store.names import check_name
from honed.userfiles import Lines, locate, validate

__all__ = ["Budget", "FewShotStrategy", "InstructionStrategy", "SearchSpec", "load_search", "parse_search"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Splits(_Strict):
    train: str = "train"
    dev: str = "dev"
    test: str = "test"

    @model_validator(mode="after")
    def _distinct(self) -> Splits:
        if len({self.train, self.dev, self.test}) != 3:
            raise ValueError("train, dev and test must be three different splits")
        return self


class Budget(_Strict):
    """The most the search may spend: model calls (each distinct request counted once, whether the
    response cache answered it or not) and/or USD at the models' prices."""

    calls: int | None = Field(default=None, ge=1)
    usd: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some(self) -> Budget:
        if self.calls is None and self.usd is None:
            raise ValueError("give calls and/or usd")
        return self


class FewShotStrategy(_Strict):
    """Demonstrations from the train split: `bootstrapped` ones are train cases the start prompt gets
    right, with its own replies (topped up with labelled cases, replies from `target`, when too few pass),
    `similar` ones the `k` train cases most similar to each case; one candidate per (select, k)."""

    k: list[int] = Field(default_factory=lambda: [3], min_length=1)
    select: list[Literal["bootstrapped", "similar"]] = Field(
        default_factory=lambda: list[Literal["bootstrapped", "similar"]](["bootstrapped"]), min_length=1
    )
    bootstrap_cases: int = Field(default=20, ge=1, le=10_000)

    @field_validator("k")
    @classmethod
    def _ks(cls, value: list[int]) -> list[int]:
        if any(k < 1 or k > 50 for k in value):
            raise ValueError("each k is between 1 and 50")
        return sorted(set(value))


class InstructionStrategy(_Strict):
    """New instructions (the system message) written by the proposer from the current best's failures on
    `minibatch` train cases, GEPA's reflective mutation; at most `iterations` proposals."""

    iterations: int = Field(default=3, ge=1, le=1000)
    minibatch: int = Field(default=3, ge=1, le=100)


class Strategies(_Strict):
    few_shot: FewShotStrategy | None = None
    instructions: InstructionStrategy | None = None

    @model_validator(mode="after")
    def _some(self) -> Strategies:
        if self.few_shot is None and self.instructions is None:
            raise ValueError("give few_shot and/or instructions")
        return self


class _SearchSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    prompt: str = Field(min_length=1)
    dataset: str = Field(min_length=1)
    splits: Splits = Field(default_factory=Splits)
    evaluators: list[dict[str, Any]] = Field(min_length=1)
    primary: str | None = None
    student: str | None = None
    proposer: str | None = None
    target: TemplateText = "{{ reference }}"
    budget: Budget
    strategies: Strategies
    seed: int = 0


@dataclass(frozen=True)
class SearchSpec:
    name: str
    prompt: str
    dataset: str
    train: str
    dev: str
    test: str
    evaluators: tuple[dict[str, Any], ...]
    primary: str
    student: str | None
    proposer: str | None
    target: str
    budget: Budget
    few_shot: FewShotStrategy | None
    instructions: InstructionStrategy | None
    seed: int = 0
    #: the folder a prompt file is read from (the spec file's); None for a spec built in code
    base: Path | None = None
    source: str = "search spec"
    #: call parameters every trial sets over the prompts' own (a ladder step's `params`)
    params: dict[str, Any] = field(default_factory=dict)


def load_search(path: Path) -> SearchSpec:
    """Read and validate a search spec file; errors are one line naming the file, the line and the field."""
    source = read_spec_file(path, "prompt search spec")
    return parse_search(source.data, source=source.where, base=path.resolve().parent, lines=source.lines)


def parse_search(
    data: dict[str, Any], *, source: str = "search spec", base: Path | None = None, lines: Lines | None = None
) -> SearchSpec:
    """Validate a search spec given as a mapping (`lines`: field path -> line, for errors)."""
    spec = validate(_SearchSpec, data, where=source, lines=lines)
    try:
        check_name("prompt-search", spec.name)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{locate(source, ('name',), lines)}: {exc.message}", hint=exc.hint) from None
    names = [str(e.get("name") or e.get("type")) for e in spec.evaluators]
    if spec.primary is not None and spec.primary not in names:
        raise InvalidInputError(
            f"{locate(source, ('primary',), lines)}: no evaluator named {spec.primary!r}",
            hint=f"one of {', '.join(names)}",
        )
    return SearchSpec(
        name=spec.name,
        prompt=spec.prompt,
        dataset=spec.dataset,
        train=spec.splits.train,
        dev=spec.splits.dev,
        test=spec.splits.test,
        evaluators=tuple(spec.evaluators),
        primary=spec.primary or names[0],
        student=spec.student,
        proposer=spec.proposer,
        target=spec.target,
        budget=spec.budget,
        few_shot=spec.strategies.few_shot,
        instructions=spec.strategies.instructions,
        seed=spec.seed,
        base=base,
        source=source,
    )
