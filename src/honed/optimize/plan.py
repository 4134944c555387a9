"""A ladder plan: the steps of an optimisation path, each building on the one before.

    name: catalogue-ladder
    dataset: catalogue@latest      # pinned to a version when run
    split: test                    # the cases every step is measured on
    primary: strict                # the evaluator the ladder climbs on (default: the first)
    correct: correct               # the evaluator of content, and ...
    format: format                 # ... of form: the two axes, kept apart in failures and diagnosis
    target: '{"answer": "{{ reference }}"}'   # a case's ideal output: demonstrations, fine-tuning replies
    evaluators: [{type: python, name: correct, function: "checks.py:correct"}, ...]
    diagnose: {step: instructions, kb: catalogue}   # optional: which axis holds the prompt back
    latency_calls: 5               # per step, calls timed one at a time after the run (0: none)
    notional_prices:               # optional: price a free (local) model's tokens in the ledger, saying so
      local/smollm2-135m-instruct: {input: 0.15, output: 0.60}
    steps:
      - {id: baseline, prompt: prompts/bare.yaml}
      - {id: instructions, prompt: prompts/instructions.yaml}
      - {id: few-shot, few_shot: {split: train, k: 3}}          # demonstrations from the dataset
      - {id: rag, retrieve: {kb: catalogue, k: 3, into: facts}}  # retrieved context in the prompt
      - {id: searched, optimize: {train: train, dev: dev, budget: {calls: 300},
                                  strategies: {few_shot: {k: [3], select: [bootstrapped, similar]}}}}
      - {id: fine-tuned, finetune: {split: train}, few_shot: none}

A step states only what it changes: every field it leaves out is the previous step's. `prompt`, `model`
and `params` replace the previous value whole (params are not merged, so a step reads the same wherever it
sits). `few_shot` and `retrieve` change the prompt the step inherits (see `honed.optimize.derive`), so
"few-shot, then RAG" keeps the demonstrations; a step that names a new `prompt` file starts from that file.
`finetune` trains the step's model on the step's own prompt, as rendered for the cases of a training
split, and later steps inherit the fine-tuned model. `optimize` runs the prompt search
(`honed.optimize.prompt`, as `honed optimize prompt` does) from the prompt the step inherits (after its own
`prompt`, `few_shot` and `retrieve` changes), with the step's model and params, the plan's evaluators,
primary and target: candidates are built from `train` and chosen on `dev` under `budget`, its verdict is
on the ladder's `split`, and the chosen prompt becomes the step's (and so the later steps'). The step is
then measured like any other, so its ledger row shows what the search bought against the previous step;
the search's own spend is in the row's `search`. Prompt files are relative to the plan file's folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from honed.errors import InvalidInputError
from honed.experiments.spec import read_spec_file
from honed.optimize.prompt.spec import Budget, Strategies
from honed.prompts.template import TemplateText, check_syntax
from honed.store.names import check_name
from honed.userfiles import Lines, locate, validate

__all__ = [
    "DiagnoseSpec",
    "FewShot",
    "FinetuneStep",
    "LadderPlan",
    "OptimizeStep",
    "Retrieve",
    "Step",
    "load_plan",
    "parse_plan",
    "up_to",
]

DEFAULT_TARGET = "{{ reference }}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FewShot(_Strict):
    """Demonstrations from the plan's dataset: `k` cases of `split`, the most similar to each case
    (`select: similar`, dynamic few-shot) or the first `k` by id (`fixed`). A demonstration's user turn is
    `input` (a template over the example case's inputs; default: the prompt's last user message), its
    reply the plan's `target`."""

    split: str = "train"
    k: int = Field(default=3, ge=1, le=50)
    select: Literal["similar", "fixed"] = "similar"
    input: str | None = None

    @field_validator("input")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            check_syntax(value)
        return value


class Retrieve(_Strict):
    """Retrieval a step adds to its prompt (replacing any the prompt had): the `k` best chunks of `kb`
    for `query` (default: the prompt's last user message) into the variable `into`. When the prompt's
    templates do not read `into`, the context goes before the last user message under its name
    ("Facts:" for `into: facts`)."""

    kb: str
    k: int = Field(default=3, ge=1, le=1000)
    method: Literal["dense", "bm25", "hybrid"] = "hybrid"
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    into: str = Field(default="context", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    query: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    where: dict[str, Any] | None = None


class FinetuneStep(_Strict):
    """Fine-tune the step's model on `split` (never the evaluated split): the step's prompt rendered for
    each case as the input, the plan's `target` as the reply. `backend` defaults to `local` for local
    models and `openai` otherwise. A finished job with the same data and settings is reused."""

    split: str = "train"
    validation_split: str | None = None
    backend: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)


class OptimizeStep(_Strict):
    """A prompt search as a step (see `honed.optimize.prompt.search`): candidates from `train` (few-shot
    demonstrations, GEPA's instructions), chosen on `dev`, judged on the ladder's split; `train` and
    `dev` must both differ from it. `proposer` writes new instructions (default: the step's model)."""

    train: str = "train"
    dev: str = "dev"
    budget: Budget
    strategies: Strategies
    proposer: str | None = None
    seed: int = 0


class DiagnoseSpec(_Strict):
    """The diagnosis run before the ladder (see `honed.optimize.diagnose`): the prompt of `step`
    (default: the first) with gold context from `kb`, and with `few_shot` demonstrations."""

    step: str | None = None
    kb: str
    few_shot: FewShot = Field(default_factory=FewShot)


class NotionalPrice(_Strict):
    """USD per million tokens, shown (as notional) in the ledger's cost per step; never charged."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class _StepSpec(_Strict):
    id: str = Field(min_length=1, max_length=100)
    prompt: str | None = None
    model: str | None = None
    params: dict[str, Any] | None = None
    note: str | None = None
    few_shot: FewShot | Literal["none"] | None = None
    retrieve: Retrieve | Literal["none"] | None = None
    finetune: FinetuneStep | None = None
    optimize: OptimizeStep | None = None


class _PlanSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    dataset: str = Field(min_length=1)
    split: str | None = None
    repeats: int = Field(default=1, ge=1, le=100)
    primary: str | None = None
    correct: str | None = None
    format: str | None = None
    target: TemplateText = DEFAULT_TARGET
    evaluators: list[dict[str, Any]] = Field(min_length=1)
    diagnose: DiagnoseSpec | None = None
    latency_calls: int = Field(default=5, ge=0, le=1000)
    notional_prices: dict[str, NotionalPrice] = Field(default_factory=dict)
    steps: list[_StepSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Step:
    """One rung with everything inherited filled in. `model` None: the prompt's model or the default.
    `sets` names the fields the step itself set (the rest it inherited)."""

    id: str
    prompt: str
    model: str | None
    params: dict[str, Any]
    note: str | None = None
    few_shot: FewShot | Literal["none"] | None = None
    retrieve: Retrieve | Literal["none"] | None = None
    finetune: FinetuneStep | None = None
    sets: frozenset[str] = frozenset()
    optimize: OptimizeStep | None = None


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
    correct: str | None = None
    format: str | None = None
    target: str = DEFAULT_TARGET
    diagnose: DiagnoseSpec | None = None
    #: per step, how many calls are timed one at a time after the run for its latency (0: the run's own)
    latency_calls: int = 5
    #: model reference -> (input, output) USD per million tokens, shown as notional in the ledger
    notional_prices: dict[str, tuple[float, float]] = field(default_factory=dict)


def load_plan(path: Path) -> LadderPlan:
    """Read and validate a plan file; errors are one line naming the file, the line and the field."""
    source = read_spec_file(path, "ladder plan")
    return parse_plan(source.data, source=source.where, base=path.resolve().parent, lines=source.lines)


def parse_plan(
    data: dict[str, Any],
    *,
    source: str = "ladder plan",
    base: Path | None = None,
    lines: Lines | None = None,
) -> LadderPlan:
    """Validate a plan given as a mapping and fill in what each step inherits; `lines` (field path ->
    line, from `read_spec_file`) lets errors name the line."""
    spec = validate(_PlanSpec, data, where=source, lines=lines)

    def at(*loc: str | int) -> str:
        return locate(source, loc, lines)

    try:
        check_name("ladder", spec.name)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{at('name')}: {exc.message}", hint=exc.hint) from None
    seen: set[str] = set()
    steps: list[Step] = []
    prompt: str | None = None
    model: str | None = None
    params: dict[str, Any] = {}
    for i, s in enumerate(spec.steps):
        if s.id in seen:
            raise InvalidInputError(
                f"{at('steps', i, 'id')}: {s.id!r} is used by an earlier step",
                hint="give each step its own id",
            )
        seen.add(s.id)
        prompt = s.prompt or prompt
        if prompt is None:
            raise InvalidInputError(
                f"{at('steps', 0)}.prompt: the first step must set a prompt",
                hint="later steps inherit it; e.g. prompt: prompts/bare.yaml",
            )
        if s.finetune is not None and spec.split is not None and s.finetune.split == spec.split:
            raise InvalidInputError(
                f"{at('steps', i, 'finetune', 'split')}: {s.finetune.split!r} is the split the ladder is "
                "measured on",
                hint="train on another split (e.g. train), or the fine-tuned step is graded on its own data",
            )
        if s.optimize is not None:
            _check_optimize(spec, s.optimize, i, at)
        model = s.model or model
        params = dict(s.params) if s.params is not None else params
        sets = frozenset(k for k in ("prompt", "model", "params") if getattr(s, k) is not None)
        steps.append(
            Step(
                s.id,
                prompt,
                model,
                dict(params),
                s.note,
                s.few_shot,
                s.retrieve,
                s.finetune,
                sets,
                s.optimize,
            )
        )
    names = [str(e.get("name") or e.get("type")) for e in spec.evaluators]
    for key in ("primary", "correct", "format"):
        value = getattr(spec, key)
        if value is not None and value not in names:
            raise InvalidInputError(
                f"{at(key)}: no evaluator named {value!r}", hint=f"one of {', '.join(names)}"
            )
    if spec.diagnose is not None:
        if spec.diagnose.step is not None and spec.diagnose.step not in seen:
            raise InvalidInputError(
                f"{at('diagnose', 'step')}: no step {spec.diagnose.step!r}", hint=f"one of {', '.join(seen)}"
            )
        if spec.correct is None:
            raise InvalidInputError(
                f"{at('diagnose')}: needs `correct:`, the evaluator of content",
                hint="e.g. correct: correct (and format: format for the evaluator of form)",
            )
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
        correct=spec.correct,
        format=spec.format,
        target=spec.target,
        diagnose=spec.diagnose,
        latency_calls=spec.latency_calls,
        notional_prices={ref: (p.input, p.output) for ref, p in spec.notional_prices.items()},
    )


def search_name(plan_name: str, step_id: str) -> str:
    """The name an `optimize` step's search result is stored under (`prompt-search/NAME`)."""
    return f"{plan_name}.{step_id}"


def _check_optimize(spec: _PlanSpec, opt: OptimizeStep, i: int, at: Callable[..., str]) -> None:
    """An `optimize` step's splits: the search judges on the ladder's split, so that split must be named
    and apart from the ones the search builds candidates from and chooses on."""
    step_id = spec.steps[i].id
    if spec.split is None:
        raise InvalidInputError(
            f"{at('steps', i, 'optimize')}: needs the ladder's `split:`, the cases the step is measured on",
            hint="e.g. split: test, with optimize: {train: train, dev: dev, ...}",
        )
    for key in ("train", "dev"):
        if getattr(opt, key) == spec.split:
            raise InvalidInputError(
                f"{at('steps', i, 'optimize', key)}: {spec.split!r} is the split the ladder is measured on",
                hint="search on other splits (e.g. train, dev): no step is graded on the cases that chose it",
            )
    if opt.train == opt.dev:
        raise InvalidInputError(
            f"{at('steps', i, 'optimize', 'dev')}: {opt.dev!r} is also the train split",
            hint="choose on a split the demonstrations do not come from",
        )
    try:
        check_name("prompt-search", search_name(spec.name, step_id))
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"{at('steps', i, 'id')}: names the step's search: {exc.message}", hint=exc.hint
        ) from None


def up_to(plan: LadderPlan, step_id: str) -> LadderPlan:
    """`plan` cut after the step `step_id`: the ladder climbed that far (and its diagnosis)."""
    ids = [s.id for s in plan.steps]
    if step_id not in ids:
        raise InvalidInputError(
            f"{plan.source}: no step {step_id!r} to stop at", hint=f"one of {', '.join(ids)}"
        )
    kept = plan.steps[: ids.index(step_id) + 1]
    if plan.diagnose is not None and plan.diagnose.step not in (None, *(s.id for s in kept)):
        raise InvalidInputError(
            f"{plan.source}: the diagnosis uses step {plan.diagnose.step!r}, which comes after {step_id!r}",
            hint=f"stop at {plan.diagnose.step!r} or later",
        )
    return replace(plan, steps=kept)
