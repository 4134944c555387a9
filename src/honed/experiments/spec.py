"""Experiment specs: a dataset version x a matrix of variants x evaluators x N repeats.

A spec is YAML (or a dict) the user writes:

    name: qa-prompts
    dataset: faq@v2            # NAME[@REF]
    split: test                # optional: only these cases
    repeats: 3                 # independent samples per case (never served from one cached answer)
    budget_usd: 1.00           # optional: checked before the run, and the run stops when it is spent
    variants:                  # explicit variants ...
      - {prompt: qa@v1}
      - {prompt: qa@v2, model: local/smollm2-135m-instruct, params: {temperature: 0}}
    matrix:                    # ... and/or the cross product of these lists
      prompt: [qa@v1, qa@v2]
      model: [local/smollm2-135m-instruct]
    evaluators:
      - {type: exact}

`resolve()` pins every reference to a content hash (prompt versions, the dataset version, evaluator
versions); the hash of that resolved form identifies the run, so the same spec resumes the same run.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from honed.datasets import Case, DatasetVersion, get_dataset
from honed.errors import InvalidInputError
from honed.evals.evaluators import BuildContext, Evaluator, build_evaluator
from honed.hashing import content_hash, short
from honed.models.types import Params
from honed.prompts import Prompt, get_prompt, load_prompt, push
from honed.prompts.registry import PROMPT, check_push
from honed.userfiles import Lines, Loc, UserFile, read_file, validate

if TYPE_CHECKING:
    from collections.abc import Callable

    from honed.store.names import Version
    from honed.workspace import Workspace


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariantSpec(_Strict):
    id: str | None = Field(default=None, max_length=100)
    prompt: str
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class MatrixSpec(_Strict):
    prompt: list[str] = Field(min_length=1)
    model: list[str | None] = Field(default_factory=lambda: list[str | None]([None]))
    params: list[dict[str, Any]] = Field(default_factory=lambda: list[dict[str, Any]]([{}]))


class ExperimentSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    dataset: str
    split: str | None = None
    repeats: int = Field(default=1, ge=1, le=100)
    budget_usd: float | None = Field(default=None, gt=0)
    variants: list[VariantSpec] = Field(default_factory=list)
    matrix: MatrixSpec | None = None
    evaluators: list[dict[str, Any]] = Field(min_length=1)

    @model_validator(mode="after")
    def _has_variants(self) -> ExperimentSpec:
        if not self.variants and self.matrix is None:
            raise ValueError("give `variants:` or `matrix:` (at least one variant to run)")
        return self

    def all_variants(self) -> list[VariantSpec]:
        out = list(self.variants)
        if self.matrix is not None:
            for prompt, model, params in itertools.product(
                self.matrix.prompt, self.matrix.model, self.matrix.params
            ):
                out.append(VariantSpec(prompt=prompt, model=model, params=params))
        return out


def read_spec_file(path: Path, what: str) -> UserFile:
    """A YAML mapping from `path` with `name` defaulting to the file's stem, and the line of each field
    (see `honed.userfiles`); errors name file and line."""
    source = read_file(path, what)
    if not isinstance(source.data, dict):
        raise InvalidInputError(f"{path}:1: the {what} must be a YAML mapping of its fields")
    source.data.setdefault("name", path.stem)
    return source


def load_spec(path: Path) -> ExperimentSpec:
    """Read and validate a spec file; errors name the file, the line and the field."""
    source = read_spec_file(path, "experiment spec")
    return parse_spec(source.data, source=source.where, lines=source.lines)


def load_experiment(h: Workspace, path: Path | str) -> Experiment:
    """An experiment spec file resolved against the workspace (its prompt files read relative to the
    file), ready for `run_experiment`."""
    path = Path(path)
    return resolve(h, load_spec(path), base=path.parent)


def parse_spec(
    data: dict[str, Any],
    *,
    source: str = "spec",
    lines: Lines | None = None,
    rename: Callable[[Loc], Loc] | None = None,
) -> ExperimentSpec:
    """Validate a spec given as a mapping; `lines` (and `rename`, see `honed.userfiles.validate`) let
    errors name the line of the file it came from."""
    return validate(ExperimentSpec, data, where=source, lines=lines, rename=rename)


@dataclass(frozen=True)
class Variant:
    """One resolved variant: a prompt version, the model and params it runs with."""

    id: str
    prompt: Prompt
    prompt_version: Version
    model: str
    params: dict[str, Any]
    #: The folder a prompt file was read from (its `file` resources are relative to it); None if stored.
    base: Path | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prompt": f"{self.prompt.name}@v{self.prompt_version.number}",
            "prompt_hash": self.prompt_version.hash,
            "model": self.model,
            "params": self.params,
        }


@dataclass(frozen=True)
class Experiment:
    """A spec with every reference pinned to content: what a run runs."""

    spec: ExperimentSpec
    dataset: DatasetVersion
    cases: tuple[Case, ...]
    variants: tuple[Variant, ...]
    evaluators: tuple[Evaluator, ...]
    #: Knowledge bases the prompts retrieve from, pinned to their current version (name -> hash): a run
    #: resumes only over the same content.
    knowledge: tuple[tuple[str, str], ...] = ()
    base: Path | None = None
    #: Prompt files the variants read, not yet stored: `store_prompts` records them once the run has
    #: planned every call, so a spec that fails (an unknown evaluator, an undefined variable) stores nothing.
    unstored: tuple[tuple[Prompt, str], ...] = ()

    def store_prompts(self, h: Workspace) -> None:
        """Record the prompt files as versions (a no-op for content already stored)."""
        for prompt, note in self.unstored:
            push(h.store, [prompt], note=note)

    def body(self) -> dict[str, Any]:
        """The resolved form whose hash identifies the run."""
        extra: dict[str, Any] = {"knowledge": dict(self.knowledge)} if self.knowledge else {}
        return {
            **extra,
            "name": self.spec.name,
            "dataset": {"ref": self.dataset.ref, "hash": self.dataset.hash},
            "split": self.spec.split,
            "repeats": self.spec.repeats,
            "budget_usd": self.spec.budget_usd,
            "variants": [v.describe() for v in self.variants],
            "evaluators": [{"name": e.name, "version": e.version, "spec": e.spec()} for e in self.evaluators],
        }

    @property
    def hash(self) -> str:
        return content_hash(self.body())

    def variant(self, variant_id: str) -> Variant:
        for v in self.variants:
            if v.id == variant_id:
                return v
        raise InvalidInputError(f"no variant {variant_id!r}", hint=", ".join(v.id for v in self.variants))


def resolve(h: Workspace, spec: ExperimentSpec, *, base: Path | None = None) -> Experiment:
    """Pin the spec's references. A prompt given as a YAML file is pushed first, so results always name a
    stored prompt version."""
    dataset = get_dataset(h.store, spec.dataset)
    cases = tuple(dataset.split(spec.split)) if spec.split else dataset.cases
    variants: list[Variant] = []
    unstored: dict[tuple[str, str], tuple[Prompt, str]] = {}
    for vs in spec.all_variants():
        version, prompt, folder = prompt_for(h, vs.prompt, base, unstored)
        model = vs.model or prompt.model or h.settings.default_model
        params = Params.from_dict({**prompt.params, **vs.params}).to_dict()
        vid = vs.id or _variant_id(prompt, version, model, vs, spec)
        variants.append(Variant(vid, prompt, version, model, params, folder))
    ids = [v.id for v in variants]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InvalidInputError(
            f"variants repeat: {', '.join(dupes)}", hint="give each variant a distinct `id`"
        )
    context = BuildContext(client=h.client, root=base)
    evaluators = tuple(build_evaluator(e, context=context) for e in spec.evaluators)
    names = [e.name for e in evaluators]
    if len(set(names)) != len(names):
        raise InvalidInputError("two evaluators share a name", hint="give each a distinct `name`")
    knowledge = _knowledge(h, variants)
    return Experiment(
        spec, dataset, cases, tuple(variants), evaluators, knowledge, base, tuple(unstored.values())
    )


def _knowledge(h: Workspace, variants: list[Variant]) -> tuple[tuple[str, str], ...]:
    names: set[str] = set()
    for v in variants:
        for step in v.prompt.retrieve or []:
            if step.kb is not None:
                names.add(step.kb)
            for route in (step.router or {}).get("routes", []):
                if isinstance(route, dict) and isinstance(route.get("kb"), str):
                    names.add(route["kb"])
        names.update(r.kb for r in (v.prompt.resources or {}).values() if r.kb is not None)
    pinned: list[tuple[str, str]] = []
    for v in variants:
        # The example pool of dynamic few-shot is content too: a new version of it is a new run.
        if v.prompt.examples_from is not None:
            ds = get_dataset(h.store, v.prompt.examples_from.dataset)
            pinned.append((f"dataset:{ds.ref}", ds.hash))
    if not names:
        return tuple(sorted(set(pinned)))
    from honed.rag.index.kb import KIND

    for name in sorted(names):
        history = h.store.names.history(KIND, name)
        if not history:
            raise InvalidInputError(
                f"a prompt retrieves from knowledge base {name!r}, which does not exist",
                hint=f"create it: honed kb create {name}, then honed kb ingest {name} PATH...",
            )
        pinned.append((name, history[-1].hash))
    return tuple(sorted(set(pinned)))


def prompt_for(
    h: Workspace,
    ref: str,
    base: Path | None,
    unstored: dict[tuple[str, str], tuple[Prompt, str]],
) -> tuple[Version, Prompt, Path | None]:
    """The prompt a variant names: a YAML file (relative to `base`) or a stored `NAME@REF`; with its
    version and the folder its file was read from (None when stored).

    A file's version is the one it will have once stored; new content is added to `unstored` for the
    caller to store once everything else is checked (see `Experiment.store_prompts`)."""
    if not ref.endswith((".yaml", ".yml")):
        return (*get_prompt(h.store, ref), None)
    path = Path(ref) if base is None or Path(ref).is_absolute() else base / ref
    prompt = load_prompt(path)
    note = f"pushed by an experiment from {path.name}"
    check_push(h.store, [prompt])
    pending = [key for name, key in unstored if name == prompt.name]
    version = h.store.names.prospective(PROMPT, prompt.name, prompt.body(), note=note, pending=pending)
    if version.hash in pending:  # new content: stored by `Experiment.store_prompts` once planned
        unstored.setdefault((prompt.name, version.hash), (prompt, note))
    return version, prompt, path.resolve().parent


def _variant_id(prompt: Prompt, version: Version, model: str, vs: VariantSpec, spec: ExperimentSpec) -> str:
    parts = [f"{prompt.name}@v{version.number}"]
    models = {v.model for v in spec.all_variants()}
    if len(models) > 1 or vs.model:
        parts.append(model.split("/", 1)[-1])
    if vs.params:
        parts.append(",".join(f"{k}={v}" for k, v in sorted(vs.params.items())))
    text = " ".join(parts)
    return text if len(text) <= 100 else f"{text[:86]}~{short(content_hash(text), 12)}"
