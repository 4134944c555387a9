"""What every importer shares: mapping foreign model names to honed models, and writing and registering
the honed files an import produces.

An importer turns a foreign suite into an `ImportPlan` entirely in memory: prompts, cases and the
experiment spec. Anything it cannot map raises `InvalidInputError` (one line naming the construct and where
it is) before anything is written. `write_plan` then writes the files into a fresh folder beside the
output folder, checks that the spec's evaluators build from those files, and only then moves them into
place; `register_plan` records the prompt and dataset versions once the files are there. So a refused
import leaves neither files nor versions behind.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honed.datasets import Case, dataset_body, record_cases
from honed.datasets.writers import case_line
from honed.errors import HonedError, InvalidInputError
from honed.hashing import content_hash, short
from honed.prompts import Prompt, push
from honed.prompts.files import dump_yaml, to_yaml
from honed.prompts.registry import check_push

if TYPE_CHECKING:
    from honed.store import Store

SPEC_FILE = "experiment.yaml"
DATASET_FILE = "dataset.jsonl"
PROMPTS_DIR = "prompts"

_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str, fallback: str = "imported") -> str:
    """A valid honed name made from `text` (letters, digits, '.', '_', '-'; at most 60 characters)."""
    out = _SLUG.sub("-", text.strip()).strip("-._")[:60].strip("-._")
    return out or fallback


@dataclass(frozen=True)
class ModelMap:
    """`--model-map PATTERN=ENDPOINT/MODEL` rules, tried in order; `*` in a pattern matches anything."""

    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, items: Sequence[str]) -> ModelMap:
        rules: list[tuple[str, str]] = []
        for item in items:
            pattern, sep, target = item.partition("=")
            if not sep or not pattern or "/" not in target.strip("/"):
                raise InvalidInputError(
                    f"--model-map {item!r} is not PATTERN=ENDPOINT/MODEL",
                    hint="e.g. --model-map 'openai:*=local/smollm2-135m-instruct'",
                )
            rules.append((pattern.strip(), target.strip()))
        return cls(tuple(rules))

    def find(self, provider: str) -> str | None:
        for pattern, target in self.rules:
            if fnmatch.fnmatchcase(provider, pattern):
                return target
        return None

    def get(self, provider: str, where: str) -> str:
        """The honed model for `provider`; an unmapped one is a one-line error naming it and the flag."""
        found = self.find(provider)
        if found is None:
            raise InvalidInputError(
                f"{where}: provider {provider!r} has no honed model",
                hint=f"add --model-map '{provider}=ENDPOINT/MODEL' (a pattern such as "
                f"'{provider.split(':')[0]}:*' maps several)",
            )
        return found


@dataclass
class ImportPlan:
    """Everything an import will write and register (see the module docstring)."""

    source: str  # "promptfoo" or "openai-evals"
    name: str  # the dataset's and the experiment's name
    prompts: list[Prompt]
    cases: list[Case]
    variants: list[dict[str, Any]]  # prompt given by name: rewritten to its file when written
    evaluators: list[dict[str, Any]]
    repeats: int = 1
    #: Extra files (relative path -> text), e.g. generated Python adapters the evaluators call.
    files: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def dataset_ref(self) -> str:
        return f"{self.name}@{short(content_hash(dataset_body(self.cases)))}"

    def spec(self) -> dict[str, Any]:
        paths = {p.name: f"{PROMPTS_DIR}/{p.name}.yaml" for p in self.prompts}
        variants = [{**v, "prompt": paths.get(v["prompt"], v["prompt"])} for v in self.variants]
        out: dict[str, Any] = {"name": self.name, "dataset": self.dataset_ref()}
        if self.repeats != 1:
            out["repeats"] = self.repeats
        out["variants"] = variants
        out["evaluators"] = self.evaluators
        return out

    def check(self, store: Store) -> None:
        """What can be checked before writing: names, the prompts against the store, every case's inputs
        against every prompt's variables (honed renders strictly, where the source might render empty)."""
        if not self.cases:
            raise InvalidInputError(f"{self.source}: the suite has no test cases", hint="nothing to import")
        if not self.evaluators:
            raise InvalidInputError(
                f"{self.source}: the suite has no assertions, so nothing would be scored",
                hint="add at least one assertion (a test's `assert`, or defaultTest.assert)",
            )
        check_push(store, self.prompts)
        for prompt in self.prompts:
            needed = prompt.variables()
            for case in self.cases:
                missing = sorted(needed - set(case.inputs))
                if missing:
                    origin = case.metadata.get("source", case.id)
                    raise InvalidInputError(
                        f"{origin}: has no var {missing[0]!r}, which prompt {prompt.name!r} uses",
                        hint="honed refuses to render an undefined variable as empty; give the var "
                        "(or a defaultTest var) a value",
                    )


@dataclass(frozen=True)
class Imported:
    """What an import wrote and recorded."""

    out: Path
    spec: Path
    prompts: list[dict[str, Any]]
    dataset: dict[str, Any]
    variants: int
    evaluators: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "spec": str(self.spec),
            "prompts": self.prompts,
            "dataset": self.dataset,
            "variants": self.variants,
            "evaluators": self.evaluators,
        }


def write_plan(plan: ImportPlan, out: Path) -> Path:
    """Write the plan's files into `out` (created, or its files of the same names replaced) and return the
    spec's path. The files are written and the evaluators built in a fresh folder first, so a failure
    leaves `out` as it was."""
    from honed.evals.evaluators import BuildContext, build_evaluator

    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        texts: dict[str, str] = {f"{PROMPTS_DIR}/{p.name}.yaml": to_yaml(p) for p in plan.prompts}
        texts[DATASET_FILE] = "".join(case_line(c) + "\n" for c in plan.cases)
        texts[SPEC_FILE] = dump_yaml(plan.spec())
        texts.update(plan.files)
        for rel, text in texts.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        # Relative paths in specs (Python files) are resolved against the spec's folder, which will be
        # `out`; the staged copies sit at the same depth, so paths that leave the folder resolve alike.
        context = BuildContext(root=staging)
        for spec in plan.evaluators:
            build_evaluator(spec, context=context)
        _check_case_checks(plan.cases, context)
        out.mkdir(exist_ok=True)
        for rel in texts:
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / SPEC_FILE


def _check_case_checks(cases: Sequence[Case], context: Any) -> None:
    """Build every distinct check the cases list, so a bad one fails the import, not the run."""
    import json

    from honed.evals.evaluators import build_evaluator

    seen: set[str] = set()
    for case in cases:
        for entry in case.metadata.get("checks", []):
            key = json.dumps(entry["check"], sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            try:
                build_evaluator(entry["check"], context=context)
            except HonedError as exc:
                origin = case.metadata.get("source", case.id)
                raise InvalidInputError(f"{origin}: {entry.get('name')}: {exc}", hint=exc.hint) from None


def register_plan(store: Store, plan: ImportPlan, out: Path, spec: Path) -> Imported:
    """Record the plan's prompts and cases as versions (after `write_plan` succeeded)."""
    note = plan.note or f"imported from {plan.source}"
    pushed = push(store, plan.prompts, note=note)
    result = record_cases(store, plan.name, plan.cases, note=note)
    return Imported(
        out=out,
        spec=spec,
        prompts=[
            {
                "name": p.version.name,
                "version": p.version.number,
                "hash": p.version.hash,
                "created": p.created,
            }
            for p in pushed
        ],
        dataset={**result.dataset.summary(), "status": result.status},
        variants=len(plan.variants),
        evaluators=[str(e.get("name") or e["type"]) for e in plan.evaluators],
    )


def import_plan(store: Store, plan: ImportPlan, out: Path) -> Imported:
    """Check, write, then register (see the module docstring)."""
    plan.check(store)
    spec = write_plan(plan, out)
    return register_plan(store, plan, out.resolve(), spec)


def relative_to(path: Path, folder: Path) -> str:
    """`path` as the spec in `folder` should name it (relative where possible, with forward slashes)."""
    try:
        return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return path.resolve().as_posix()


def text_value(value: Any) -> str:
    """A var or reference as the text a template or check compares with."""
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, ensure_ascii=False)


def require_mapping(value: Any, where: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{where}: {what} must be a mapping, not {type(value).__name__}")
    return value
