"""`honed import openai-evals`: OpenAI's eval formats as honed prompts, a dataset and an experiment spec.

Two formats, told apart by their content:

- the open-source openai/evals registry (YAML): eval ids with `class:` specs. `basic.match:Match` (the
  output starts with an ideal answer) becomes `starts_with`; `basic.includes:Includes` (contains one,
  case-sensitive unless `ignore_case`) `contains`; `basic.fuzzy_match:FuzzyMatch` `fuzzy_match` and
  `token_f1` (its f1_score); `modelgraded.classify:ModelBasedClassify` with the `fact` spec an
  `llm_judge` (choices A, B, C, E pass; D, a disagreement, fails) and with `closedqa` one `llm_judge` per
  criterion. Samples are `args.samples_jsonl` under `--data`: `{"input": chat messages | text,
  "ideal": text | [text]}`. The graders of model-graded evals run on the tested model, as oaieval does
  with one completion function.
- the hosted Evals API (JSON): `data_source_config` (custom, with `item_schema`) and `testing_criteria`:
  `string_check` (eq, ne, like, ilike), `text_similarity` (cosine only), `label_model`, `score_model`
  and `python`, each with `{{item.x}}` / `{{sample.output_text}}` templates; items from `--data` (JSONL of
  `{"item": {...}}` or plain objects) or the run `data_source` the file may carry (its `input_messages`
  template is the prompt, its `model` the model). Item fields become the case's inputs, so `{{item.x}}`
  is `{{ x }}` in honed templates.

The model the file does not name is `--model` (default gpt-3.5-turbo), and every model name is mapped
with `--model-map` as `openai:NAME`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Required, TypedDict, Unpack

from honed.datasets import Case
from honed.errors import InvalidInputError
from honed.importers.common import Imported, ImportPlan, ModelMap, import_plan, slug
from honed.importers.promptfoo_asserts import CLOSEDQA_RUBRIC, FACT_RUBRIC
from honed.prompts import Prompt
from honed.prompts.template import render
from honed.userfiles import json_lines, read_file

if TYPE_CHECKING:
    from honed.store import Store

DEFAULT_MODEL = "gpt-3.5-turbo"
GRADER_FILE = "openai_graders.py"
_CLASSES = {
    "evals.elsuite.basic.match:Match": "match",
    "evals.elsuite.basic.includes:Includes": "includes",
    "evals.elsuite.basic.fuzzy_match:FuzzyMatch": "fuzzy_match",
    "evals.elsuite.modelgraded.classify:ModelBasedClassify": "modelgraded",
}
_ITEM = re.compile(r"\{\{\s*item\.")
_OUTPUT = re.compile(r"^\s*\{\{\s*sample\.output_text\s*\}\}\s*$")
_SAMPLE = re.compile(r"\{\{\s*sample\.output_text\s*\}\}")
_HOSTED_KEYS = frozenset(
    {
        "name",
        "data_source_config",
        "testing_criteria",
        "metadata",
        "data_source",
        "object",
        "id",
        "created_at",
    }
)


class EvalOptions(TypedDict, total=False):
    """How to read an eval file, the keywords of `plan_openai_evals` and `import_openai_evals`: `models`
    maps its model names (as `openai:NAME`); `data` is where its samples or items are (see the module);
    `eval_id` picks one eval of a registry file; `model` is the model under test where the file names
    none (default `DEFAULT_MODEL`); `name` names the prompt, dataset and experiment (default: the eval's)."""

    models: Required[ModelMap]
    data: Path | None
    eval_id: str | None
    model: str
    name: str | None


def import_openai_evals(
    store: Store, file: Path, *, out: Path | None = None, **options: Unpack[EvalOptions]
) -> Imported:
    """Map `file` (refusing what cannot be mapped), write the honed files to `out` (default:
    `honed-import/` beside the file) and record the prompt and dataset versions."""
    folder = (out or file.parent / "honed-import").resolve()
    plan = plan_openai_evals(file, **options)
    return import_plan(store, plan, folder)


def plan_openai_evals(file: Path, **options: Unpack[EvalOptions]) -> ImportPlan:
    source = read_file(file, "eval file")
    models, data, name = options["models"], options.get("data"), options.get("name")
    model = options.get("model", DEFAULT_MODEL)
    if isinstance(source.data, dict) and "testing_criteria" in source.data:
        return _hosted(file, source.data, models=models, data=data, model=model, name=name)
    if isinstance(source.data, dict):
        eval_id = options.get("eval_id")
        return _registry(file, source.data, models=models, data=data, eval_id=eval_id, model=model, name=name)
    raise InvalidInputError(f"{file}:1: not an openai/evals registry file or an Evals API definition")


# -- the openai/evals registry --------------------------------------------------------------------------


def _registry(
    file: Path,
    entries: dict[str, Any],
    *,
    models: ModelMap,
    data: Path | None,
    eval_id: str | None,
    model: str,
    name: str | None,
) -> ImportPlan:
    evals = [k for k, v in entries.items() if isinstance(v, dict) and ("class" in v or "id" in v)]
    bases = [k for k in evals if "id" in entries[k]]
    if eval_id is None:
        choices = bases or evals
        if len(choices) != 1:
            raise InvalidInputError(
                f"{file}: holds {len(choices)} evals; pick one with --eval",
                hint=f"ids: {', '.join(choices) or 'none'}",
            )
        eval_id = choices[0]
    if eval_id not in entries or not isinstance(entries[eval_id], dict):
        raise InvalidInputError(f"{file}: no eval {eval_id!r}", hint=f"ids: {', '.join(evals)}")
    spec_id = entries[eval_id].get("id", eval_id)
    spec = entries.get(spec_id)
    where = f"{file}: {spec_id}"
    if not isinstance(spec, dict) or "class" not in spec:
        raise InvalidInputError(f"{where}: has no `class:` spec")
    kind = _CLASSES.get(str(spec["class"]))
    if kind is None:
        raise InvalidInputError(
            f"{where}: eval class {spec['class']!r} is not supported",
            hint=f"supported: {', '.join(_CLASSES)}",
        )
    args = spec.get("args") or {}
    samples_ref = args.get("samples_jsonl")
    if not isinstance(samples_ref, str):
        raise InvalidInputError(f"{where}: args.samples_jsonl is missing")
    folder = data if data is not None else _default_data(file)
    samples_path = folder / samples_ref
    if not samples_path.is_file():
        raise InvalidInputError(
            f"{where}: samples file {samples_path} does not exist",
            hint="point --data at the registry's data folder",
        )
    samples = list(json_lines(samples_path, samples_path.read_text(encoding="utf-8")))
    tested = models.get(f"openai:{model}", f"{where}: the model under test")
    stem = slug(name or eval_id.split(".")[0])
    prompt, inputs = _sample_prompt(stem, samples, samples_path)
    cases: list[Case] = []
    for (line, sample), values in zip(samples, inputs, strict=True):
        ideal = sample.get("ideal")
        if not (
            isinstance(ideal, str) or (isinstance(ideal, list) and all(isinstance(i, str) for i in ideal))
        ):
            raise InvalidInputError(f"{samples_path}:{line}: `ideal` must be text or a list of texts")
        cases.append(
            Case(
                id=f"s{len(cases) + 1}",
                inputs=values,
                reference=ideal,
                metadata={"source": f"{samples_path}:{line}"},
            )
        )
    params: dict[str, Any] = {}
    evaluators: list[dict[str, Any]]
    if kind == "match":
        params = {"temperature": 0}
        evaluators = [{"type": "starts_with", "name": "match"}]
    elif kind == "includes":
        params = {"max_tokens": int(args.get("max_tokens", 500))}
        evaluators = [
            {"type": "contains", "name": "includes", "case_sensitive": not args.get("ignore_case", False)}
        ]
    elif kind == "fuzzy_match":
        params = {"temperature": 0, "max_tokens": 16}
        evaluators = [{"type": "fuzzy_match", "name": "accuracy"}, {"type": "token_f1", "name": "f1_score"}]
    else:
        evaluators = _modelgraded(args, where, tested)
    return _plan(
        stem, prompt, cases, tested, params, evaluators, note=f"imported from openai/evals {spec_id}"
    )


def _plan(
    stem: str,
    prompt: Prompt,
    cases: list[Case],
    tested: str,
    params: dict[str, Any],
    evaluators: list[dict[str, Any]],
    *,
    note: str,
    files: dict[str, str] | None = None,
) -> ImportPlan:
    """Either format's plan: one variant, the eval's prompt on the model under test with its params."""
    return ImportPlan(
        source="openai-evals",
        name=stem,
        prompts=[prompt],
        cases=cases,
        variants=[{"prompt": prompt.name, "model": tested, **({"params": params} if params else {})}],
        evaluators=evaluators,
        files=files or {},
        note=note,
    )


def _default_data(file: Path) -> Path:
    """The registry layout: registry/evals/x.yaml beside registry/data/."""
    beside = file.resolve().parent.parent / "data"
    return beside if beside.is_dir() else file.resolve().parent


def _modelgraded(args: Mapping[str, Any], where: str, grader: str) -> list[dict[str, Any]]:
    spec = args.get("modelgraded_spec")
    judge = {"type": "llm_judge", "model": grader, "scale": "pass_fail", "use_context": False}
    if spec == "fact":
        return [{**judge, "name": "fact", "rubric": FACT_RUBRIC}]
    if spec == "closedqa":
        criteria = (args.get("modelgraded_spec_args") or {}).get("criteria")
        if not isinstance(criteria, dict) or not criteria:
            raise InvalidInputError(f"{where}: closedqa needs args.modelgraded_spec_args.criteria")
        return [
            {
                **judge,
                "name": f"closedqa-{slug(k)}",
                "rubric": CLOSEDQA_RUBRIC.format(v),
                "use_reference": False,
            }
            for k, v in criteria.items()
        ]
    raise InvalidInputError(
        f"{where}: modelgraded spec {spec!r} is not supported", hint="supported: fact, closedqa"
    )


def _sample_prompt(
    stem: str, samples: list[tuple[int, Any]], path: Path
) -> tuple[Prompt, list[dict[str, Any]]]:
    """One prompt for every sample: messages that are the same in all samples are literal text, the
    others variables (the last user message `input`, the rest `message_N`)."""
    shapes: list[tuple[str, ...]] = []
    for line, sample in samples:
        if not isinstance(sample, dict) or "input" not in sample:
            raise InvalidInputError(f"{path}:{line}: a sample is {{input, ideal}}")
        raw = sample["input"]
        if isinstance(raw, str):
            shapes.append(("text",))
        elif isinstance(raw, list) and all(
            isinstance(m, dict)
            and m.get("role") in ("system", "user", "assistant")
            and isinstance(m.get("content"), str)
            for m in raw
        ):
            shapes.append(tuple(m["role"] for m in raw))
        else:
            raise InvalidInputError(f"{path}:{line}: `input` must be text or chat messages {{role, content}}")
    if not samples:
        raise InvalidInputError(f"{path}: has no samples")
    if len(set(shapes)) != 1:
        odd = next(line for (line, _), s in zip(samples, shapes, strict=True) if s != shapes[0])
        raise InvalidInputError(
            f"{path}:{odd}: its messages differ in roles from the first sample's",
            hint="a honed prompt has a fixed list of messages; import samples of one shape at a time",
        )
    if shapes[0] == ("text",):
        prompt = Prompt.parse({"name": stem, "messages": [{"role": "user", "content": "{{ input }}"}]})
        return prompt, [{"input": s["input"]} for _, s in samples]
    roles = shapes[0]
    last_user = max(i for i, r in enumerate(roles) if r == "user") if "user" in roles else len(roles) - 1
    messages: list[dict[str, str]] = []
    names: list[str | None] = []
    for i, role in enumerate(roles):
        contents = {s["input"][i]["content"] for _, s in samples}
        if len(contents) == 1 and i != last_user:
            text = next(iter(contents))
            messages.append(
                {"role": role, "content": "{% raw %}" + text + "{% endraw %}" if "{" in text else text}
            )
            names.append(None)
        else:
            var = "input" if i == last_user else f"message_{i + 1}"
            messages.append({"role": role, "content": "{{ " + var + " }}"})
            names.append(var)
    inputs = [
        {var: s["input"][i]["content"] for i, var in enumerate(names) if var is not None} for _, s in samples
    ]
    return Prompt.parse({"name": stem, "messages": messages}), inputs


# -- the hosted Evals API -------------------------------------------------------------------------------


def _hosted(
    file: Path, body: dict[str, Any], *, models: ModelMap, data: Path | None, model: str, name: str | None
) -> ImportPlan:
    where = str(file)
    unknown = sorted(set(body) - _HOSTED_KEYS)
    if unknown:
        raise InvalidInputError(f"{where}: key(s) {', '.join(unknown)} are not part of an eval definition")
    config = body.get("data_source_config") or {}
    if config.get("type") != "custom":
        raise InvalidInputError(
            f"{where}: data_source_config type {config.get('type')!r} is not supported",
            hint="only `custom` (items with an item_schema) can be imported",
        )
    run = body.get("data_source") or {}
    items = _items(file, run, data)
    schema = config.get("item_schema")
    if isinstance(schema, dict):
        import jsonschema

        validator = jsonschema.Draft202012Validator(schema)
        for origin, item in items:
            err = next(iter(validator.iter_errors(item)), None)
            if err is not None:
                raise InvalidInputError(f"{origin}: the item does not fit item_schema: {err.message}")
    stem = slug(name or str(body.get("name") or file.stem))
    prompt = _hosted_prompt(stem, run, items, where)
    tested = models.get(f"openai:{run.get('model') or model}", f"{where}: the model under test")
    params = _sampling(run.get("sampling_params") or {}, where)
    criteria = body.get("testing_criteria") or []
    if not isinstance(criteria, list) or not criteria:
        raise InvalidInputError(f"{where}: testing_criteria lists no grader")
    graders = _Graders()
    cases = []
    for n, (origin, item) in enumerate(items, 1):
        checks = [
            _criterion(c, f"{where}: testing_criteria[{i}]", item, models, graders)
            for i, c in enumerate(criteria)
        ]
        cases.append(Case(id=f"i{n}", inputs=item, metadata={"source": origin, "checks": checks}))
    names = list(dict.fromkeys(e["name"] for e in cases[0].metadata["checks"])) if cases else []
    files = {GRADER_FILE: graders.text()} if graders.sources else {}
    evaluators = [{"type": "case_checks", "name": n, "select": n} for n in names]
    note = f"imported from OpenAI eval {body.get('name') or file.name}"
    return _plan(stem, prompt, cases, tested, params, evaluators, note=note, files=files)


def _items(file: Path, run: Mapping[str, Any], data: Path | None) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, Any]] = []
    if data is not None:
        if not data.is_file():
            raise InvalidInputError(f"--data {data}: no such file", hint="give the JSONL file of items")
        rows = [(f"{data}:{n}", v) for n, v in json_lines(data, data.read_text(encoding="utf-8"))]
    else:
        src = run.get("source") or {}
        if src.get("type") != "file_content":
            raise InvalidInputError(
                f"{file}: no items: pass --data ITEMS.jsonl",
                hint="or carry them in data_source.source {type: file_content, content: [...]}",
            )
        rows = [
            (f"{file}: data_source.source.content[{i}]", v) for i, v in enumerate(src.get("content") or [])
        ]
    out = []
    for origin, row in rows:
        item = (
            row.get("item")
            if isinstance(row, dict) and set(row) <= {"item", "sample"} and "item" in row
            else row
        )
        if not isinstance(item, dict) or not item:
            raise InvalidInputError(f'{origin}: an item is a JSON object (or {{"item": {{...}}}})')
        out.append((origin, item))
    if not out:
        raise InvalidInputError(f"{file}: no items to import")
    return out


def _template(text: str, where: str) -> str:
    if _SAMPLE.search(text):
        raise InvalidInputError(
            f"{where}: the prompt uses {{{{sample.output_text}}}}, which only graders may"
        )
    return _ITEM.sub("{{ ", text)


def _hosted_prompt(
    stem: str, run: Mapping[str, Any], items: list[tuple[str, dict[str, Any]]], where: str
) -> Prompt:
    messages = (run.get("input_messages") or {}) if run else {}
    if not messages:
        if all(isinstance(item.get("input"), str) for _, item in items):
            return Prompt.parse({"name": stem, "messages": [{"role": "user", "content": "{{ input }}"}]})
        raise InvalidInputError(
            f"{where}: no prompt: add a run `data_source` with `input_messages` (a template)",
            hint='e.g. "data_source": {"type": "completions", "input_messages": {"type": "template", '
            '"template": [{"role": "user", "content": "{{item.question}}"}]}}',
        )
    if messages.get("type") != "template":
        raise InvalidInputError(
            f"{where}: data_source.input_messages type {messages.get('type')!r} is not supported"
        )
    out = [
        _message(m, f"{where}: data_source.input_messages.template[{i}]")
        for i, m in enumerate(messages.get("template") or [])
    ]
    return Prompt.parse(
        {"name": stem, "messages": [{**m, "content": _template(m["content"], where)} for m in out]},
        where=where,
    )


def _message(m: Any, where: str) -> dict[str, str]:
    if not isinstance(m, dict):
        raise InvalidInputError(f"{where}: a message is {{role, content}}")
    content = m.get("content")
    if isinstance(content, dict) and content.get("type") in ("input_text", "output_text"):
        content = content.get("text")
    role = {"developer": "system"}.get(m.get("role", ""), m.get("role"))
    if role not in ("system", "user", "assistant") or not isinstance(content, str):
        raise InvalidInputError(f"{where}: only text messages with role system, developer, user or assistant")
    return {"role": str(role), "content": content}


def _sampling(params: Mapping[str, Any], where: str) -> dict[str, Any]:
    names = {
        "temperature": "temperature",
        "top_p": "top_p",
        "seed": "seed",
        "max_completions_tokens": "max_tokens",
    }
    names["max_completion_tokens"] = "max_tokens"
    out = {}
    for key, value in params.items():
        if key not in names:
            raise InvalidInputError(f"{where}: sampling_params.{key} has no honed equivalent")
        out[names[key]] = value
    return out


class _Graders:
    """Python graders (`def grade(sample, item)`) gathered into one generated file."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[str, float | None]] = {}

    def add(self, source: str, threshold: float | None) -> str:
        key = f"grade_{len(self.sources) + 1}"
        for k, (s, t) in self.sources.items():
            if s == source and t == threshold:
                return f"{GRADER_FILE}:{k}"
        self.sources[key] = (source, threshold)
        return f"{GRADER_FILE}:{key}"

    def text(self) -> str:
        parts = [
            '"""Generated by `honed import openai-evals`: the eval\'s python graders, each called as\n'
            'the Evals API calls it, grade(sample, item), for honed\'s `python` evaluator."""\n\n',
            "def _run(source, output, inputs, threshold):\n"
            "    scope = {}\n"
            "    exec(source, scope)\n"
            '    value = float(scope["grade"]({"output_text": output, "choices": []}, inputs))\n'
            '    return {"value": value, "passed": None if threshold is None else value >= threshold}\n',
        ]
        for key, (source, threshold) in self.sources.items():
            parts.append(
                f"\n\ndef {key}(output, inputs):\n"
                f"    return _run({source!r}, output, inputs, {threshold!r})\n"
            )
        return "".join(parts)


def _criterion(
    c: Any, where: str, item: dict[str, Any], models: ModelMap, graders: _Graders
) -> dict[str, Any]:
    if not isinstance(c, dict) or not isinstance(c.get("type"), str):
        raise InvalidInputError(f"{where}: a grader is a mapping with a `type`")
    kind = c["type"]
    name = str(c.get("name") or kind)

    def fill(text: Any, field: str) -> str:
        if not isinstance(text, str):
            raise InvalidInputError(f"{where}: {field} must be a template string")
        return render(_ITEM.sub("{{ ", text), item, where=f"{where}.{field}")

    def output_input() -> None:
        if not isinstance(c.get("input"), str) or not _OUTPUT.match(c["input"]):
            raise InvalidInputError(
                f"{where}: input {c.get('input')!r} is not supported",
                hint="honed grades {{sample.output_text}}",
            )

    if kind == "string_check":
        output_input()
        ref = fill(c.get("reference"), "reference")
        op = c.get("operation")
        if op == "eq":
            return {"name": name, "check": {"type": "exact", "strip": False}, "reference": ref}
        if op == "ne":
            return {
                "name": name,
                "check": {"type": "not", "check": {"type": "exact", "strip": False}},
                "reference": ref,
            }
        if op in ("like", "ilike"):
            return {
                "name": name,
                "check": {"type": "contains", "strings": [ref], "case_sensitive": op == "like"},
            }
        raise InvalidInputError(
            f"{where}: string_check operation {op!r} is not supported", hint="eq, ne, like, ilike"
        )
    if kind == "text_similarity":
        output_input()
        metric = c.get("evaluation_metric")
        if metric != "cosine":
            raise InvalidInputError(
                f"{where}: text_similarity metric {metric!r} has no honed evaluator",
                hint="honed maps `cosine` (embedding similarity); use a python grader for the others",
            )
        check = {"type": "embedding_similarity", "threshold": float(c.get("pass_threshold", 0.0))}
        return {"name": name, "check": check, "reference": fill(c.get("reference"), "reference")}
    if kind in ("label_model", "score_model"):
        grader = models.get(f"openai:{c.get('model')}", f"{where}: grader")
        texts = [_message(m, f"{where}.input[{i}]")["content"] for i, m in enumerate(c.get("input") or [])]
        if not texts:
            raise InvalidInputError(f"{where}: input lists no messages")
        shown = "\n\n".join(
            render(_SAMPLE.sub("[the response below]", _ITEM.sub("{{ ", t)), item, where=where) for t in texts
        )
        judge: dict[str, Any] = {
            "type": "llm_judge",
            "model": grader,
            "use_inputs": False,
            "use_reference": False,
        }
        judge["use_context"] = False
        if kind == "label_model":
            labels, passing = c.get("labels") or [], c.get("passing_labels") or []
            rubric = (
                f"{shown}\n\nThe possible labels: {', '.join(map(str, labels))}. Pass if the "
                f"response's label is one of: {', '.join(map(str, passing))}; fail otherwise."
            )
            return {"name": name, "check": {**judge, "scale": "pass_fail", "rubric": rubric}}
        low, high = c.get("range") or [0, 1]
        if not all(isinstance(v, int) or (isinstance(v, float) and v.is_integer()) for v in (low, high)):
            raise InvalidInputError(f"{where}: score_model range {[low, high]} is not whole numbers")
        check = {**judge, "scale": f"{int(low)}-{int(high)}", "rubric": shown}
        if c.get("pass_threshold") is not None:
            check["threshold"] = float(c["pass_threshold"])
        return {"name": name, "check": check}
    if kind == "python":
        source = c.get("source")
        if not isinstance(source, str) or "def grade" not in source:
            raise InvalidInputError(f"{where}: a python grader's source defines grade(sample, item)")
        threshold = c.get("pass_threshold")
        return {"name": name, "check": {"type": "python", "function": graders.add(source, threshold)}}
    raise InvalidInputError(
        f"{where}: grader type {kind!r} is not supported",
        hint="supported: string_check, text_similarity (cosine), label_model, score_model, python",
    )
