"""`honed import promptfoo`: a promptfoo config (promptfooconfig.yaml) as honed prompts, a dataset and an
experiment spec.

- prompts: inline text, `file://` text files (several prompts separated by `---` lines), chat messages
  (JSON/YAML files, a JSON string, or an inline list); Nunjucks is translated to Jinja2 (`nunjucks.py`);
  a plain-text prompt is one user message, as promptfoo sends it;
- providers: mapped to honed models with `--model-map` (temperature, max_tokens, top_p, seed and stop in
  their `config` become params); one variant per prompt x provider;
- tests: inline, or `file://` CSV (with `__expected`, `__expected1..N`, `__description`, `__metric`),
  JSONL, YAML or JSON; `defaultTest` is merged into every test (vars and options under, assertions
  before the test's own); vars that are `file://` paths are read;
- assertions become per-case checks (`promptfoo_asserts.py`), scored by one `case_checks` evaluator per
  assertion type (or `metric`).

What has no honed equivalent (scenarios, prompt functions, custom Nunjucks filters, list vars, ...) is
refused with where it is; nothing is written then.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from honed.datasets import Case
from honed.errors import InvalidInputError
from honed.importers.common import Imported, ImportPlan, ModelMap, import_plan, slug
from honed.importers.nunjucks import to_jinja
from honed.importers.promptfoo_asserts import (
    ADAPTER_FILE,
    Adapters,
    AssertContext,
    assertion_from_string,
    map_assertion,
)
from honed.prompts import Prompt
from honed.userfiles import locate, read_file

if TYPE_CHECKING:
    from honed.store import Store

_TOP_KEYS = frozenset(
    {"description", "prompts", "providers", "tests", "defaultTest", "evaluateOptions", "env", "sharing"}
    | {"outputPath", "tags", "writeLatestResults", "metadata"}
)
_TEST_KEYS = frozenset({"description", "vars", "assert", "options", "metadata"})
_OPTION_KEYS = frozenset({"transform", "provider"})
_PARAMS = {"temperature": "temperature", "max_tokens": "max_tokens", "top_p": "top_p", "seed": "seed"}
_PARAMS |= {"stop": "stop", "maxTokens": "max_tokens"}
#: Provider settings about the connection, which honed's endpoints hold instead.
_CONNECTION = frozenset(
    {"apiKey", "apiKeyEnvar", "apiHost", "apiBaseUrl", "organization", "headers", "basePath"}
)
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def import_promptfoo(
    store: Store,
    config: Path,
    *,
    models: ModelMap,
    default_model: str,
    out: Path | None = None,
    name: str | None = None,
) -> Imported:
    """Map `config` (refusing what cannot be mapped), write the honed files to `out` (default:
    `honed-import/` beside the config) and record the prompt and dataset versions."""
    folder = (out or config.parent / "honed-import").resolve()
    plan = plan_promptfoo(config, models=models, default_model=default_model, out=folder, name=name)
    return import_plan(store, plan, folder)


def plan_promptfoo(
    config: Path, *, models: ModelMap, default_model: str, out: Path, name: str | None = None
) -> ImportPlan:
    """The honed prompts, cases and spec for `config`, all in memory."""
    source = read_file(config, "promptfoo config")
    data = source.data
    if not isinstance(data, dict):
        raise InvalidInputError(f"{config}:1: a promptfoo config is a mapping (prompts, providers, tests)")
    w = _Where(str(config), source.lines)
    for key in data:
        if key not in _TOP_KEYS:
            raise InvalidInputError(f"{w.at((key,))}: is not supported by the importer", hint=_hint(key))
    base = config.resolve().parent
    dataset_name = slug(name or str(data.get("description") or "") or base.name)
    if "prompts" not in data or "providers" not in data:
        raise InvalidInputError(f"{config}: needs `prompts` and `providers`")
    prompts = _prompts(data["prompts"], base, w, dataset_name)
    providers = _providers(data["providers"], w, models)
    ctx = AssertContext(
        base=base, out=out, models=models, default_model=default_model, adapters=Adapters(out)
    )
    default = _default_test(data.get("defaultTest"), base, w)
    tests = _tests(data.get("tests"), base, w)
    cases = [_case(i, test, default, ctx) for i, test in enumerate(tests, 1)]
    names: list[str] = []
    for case in cases:
        for entry in case.metadata.get("checks", []):
            if entry["name"] not in names:
                names.append(entry["name"])
    variants = []
    for prompt in prompts:
        for pid, label, model, params in providers:
            vid = f"{prompt.name} {label or pid}"[:100] if len(prompts) * len(providers) > 1 else None
            variant: dict[str, Any] = {"prompt": prompt.name, "model": model}
            if vid:
                variant = {"id": vid, **variant}
            if params:
                variant["params"] = params
            variants.append(variant)
    repeats = (data.get("evaluateOptions") or {}).get("repeat", 1)
    files = {}
    adapter = ctx.adapters.text()
    if adapter is not None:
        files[ADAPTER_FILE] = adapter
    return ImportPlan(
        source="promptfoo",
        name=dataset_name,
        prompts=prompts,
        cases=cases,
        variants=variants,
        evaluators=[{"type": "case_checks", "name": n, "select": n} for n in names],
        repeats=int(repeats),
        files=files,
        note=f"imported from promptfoo config {config.name}",
    )


class _Where:
    """Error locations in the config: FILE:LINE: field."""

    def __init__(self, path: str, lines: Mapping[tuple[Any, ...], int]) -> None:
        self.path = path
        self.lines = lines

    def at(self, loc: tuple[str | int, ...]) -> str:
        return locate(self.path, loc, self.lines)


def _hint(key: str) -> str:
    if key == "scenarios":
        return "scenarios have no honed equivalent; write their combinations out as tests"
    if key == "nunjucksFilters":
        return "custom Nunjucks filters are JavaScript; honed templates have Jinja's filters plus dump, load"
    return "remove it, or import the suite without it"


# -- prompts --------------------------------------------------------------------------------------------


def _prompts(raw: Any, base: Path, w: _Where, stem: str) -> list[Prompt]:
    items: list[tuple[Any, str | None, tuple[str | int, ...]]] = []
    if isinstance(raw, str):
        items.append((raw, None, ("prompts",)))
    elif isinstance(raw, list):
        items.extend((item, None, ("prompts", i)) for i, item in enumerate(raw))
    elif isinstance(raw, dict):  # {file://x.txt: label}
        items.extend((k, str(v), ("prompts", k)) for k, v in raw.items())
    else:
        raise InvalidInputError(f"{w.at(('prompts',))}: must be a list of prompts")
    found: list[tuple[str | None, list[dict[str, str]], str]] = []
    for item, label, loc in items:
        where = w.at(loc)
        if isinstance(item, dict) and "role" not in item:
            unknown = sorted(set(item) - {"id", "raw", "label"})
            if unknown:
                raise InvalidInputError(f"{where}: prompt key(s) {', '.join(unknown)} are not supported")
            label = item.get("label")
            item = item.get("raw", item.get("id"))
        if isinstance(item, list):
            found.append((label, _messages(item, where), where))
        elif isinstance(item, str) and item.startswith("file://"):
            for lab, messages, origin in _prompt_files(item, base, where):
                found.append((label or lab, messages, origin))
        elif isinstance(item, str):
            found.append((label, _text_prompt(item, where), where))
        else:
            raise InvalidInputError(f"{where}: a prompt is text, file://PATH or a list of messages")
    out: list[Prompt] = []
    used: set[str] = set()
    for i, (label, messages, origin) in enumerate(found, 1):
        name = slug(label) if label else f"{stem}-{i}"
        while name in used:
            name = f"{name}-{i}"
        used.add(name)
        converted = [{"role": m["role"], "content": to_jinja(m["content"], origin)} for m in messages]
        out.append(Prompt.parse({"name": name, "messages": converted}, where=origin))
    return out


def _prompt_files(ref: str, base: Path, where: str) -> list[tuple[str | None, list[dict[str, str]], str]]:
    pattern = ref.removeprefix("file://")
    if any(ch in pattern for ch in "*?["):
        paths = sorted(base.glob(pattern))
        if not paths:
            raise InvalidInputError(f"{where}: {ref} matches no file")
    else:
        paths = [base / pattern]
    found: list[tuple[str | None, list[dict[str, str]], str]] = []
    for path in paths:
        at = f"{path}"
        if path.suffix in (".js", ".ts", ".mjs", ".cjs", ".py") or ":" in path.name:
            raise InvalidInputError(
                f"{where}: {ref} is a prompt function, which honed cannot import",
                hint="render the prompt to text or chat messages and point at that file",
            )
        if not path.is_file():
            raise InvalidInputError(f"{where}: {ref} does not exist (paths are relative to the config)")
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".json", ".yaml", ".yml"):
            try:
                data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            except (json.JSONDecodeError, yaml.YAMLError) as exc:
                raise InvalidInputError(f"{at}: not valid {path.suffix[1:].upper()} ({exc})") from None
            if isinstance(data, str):
                found.append((None, _text_prompt(data, at), at))
            else:
                found.append((None, _messages(data, at), at))
            continue
        parts = [p.strip() for p in _split_prompts(text)]
        for n, part in enumerate(p for p in parts if p):
            found.append((None, _text_prompt(part, f"{at} (prompt {n + 1})"), f"{at} (prompt {n + 1})"))
    return found


def _split_prompts(text: str) -> list[str]:
    """promptfoo's separator between prompts in one text file: a line that is `---`."""
    parts: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if line.strip() == "---":
            parts.append([])
        else:
            parts[-1].append(line)
    return ["".join(p) for p in parts]


def _text_prompt(text: str, where: str) -> list[dict[str, str]]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list) and data and all(isinstance(m, dict) and "role" in m for m in data):
            return _messages(data, where)
    return [{"role": "user", "content": text}]


def _messages(data: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(data, list) or not data:
        raise InvalidInputError(f"{where}: chat prompts are a list of {{role, content}} messages")
    out = []
    for i, m in enumerate(data, 1):
        if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise InvalidInputError(
                f"{where}: message {i} must be {{role: system|user|assistant, content: TEXT}}",
                hint="multi-part content (images, tool messages) has no honed prompt equivalent",
            )
        out.append({"role": _ROLES[m["role"]], "content": m["content"]})
    return out


# -- providers ------------------------------------------------------------------------------------------


def _providers(raw: Any, w: _Where, models: ModelMap) -> list[tuple[str, str | None, str, dict[str, Any]]]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        where = w.at(("providers", i) if isinstance(raw, list) else ("providers",))
        label: str | None = None
        config: Any = {}
        if isinstance(item, str):
            pid = item
        elif isinstance(item, dict) and "id" in item:
            unknown = sorted(set(item) - {"id", "label", "config"})
            if unknown:
                raise InvalidInputError(f"{where}: provider key(s) {', '.join(unknown)} are not supported")
            pid, label, config = item["id"], item.get("label"), item.get("config") or {}
        elif isinstance(item, dict) and len(item) == 1:
            pid, body = next(iter(item.items()))
            body = body or {}
            label, config = body.get("label"), body.get("config") or {}
        else:
            raise InvalidInputError(f"{where}: a provider is an id or {{id, label, config}}")
        if not isinstance(pid, str) or pid.startswith("file://"):
            raise InvalidInputError(
                f"{where}: provider {pid!r} is not supported (custom provider files have no honed model)",
                hint="name the provider by its id (e.g. openai:gpt-4o-mini) and map it with --model-map",
            )
        params: dict[str, Any] = {}
        for key, value in dict(config).items():
            if key in _PARAMS:
                params[_PARAMS[key]] = value
            elif key not in _CONNECTION:
                raise InvalidInputError(
                    f"{where}: provider config {key!r} has no honed equivalent",
                    hint=f"supported: {', '.join(sorted(_PARAMS))}",
                )
        out.append((pid, label, models.get(pid, where), params))
    if not out:
        raise InvalidInputError(f"{w.at(('providers',))}: lists no provider")
    return out


# -- tests ----------------------------------------------------------------------------------------------


class _Test:
    def __init__(self, data: dict[str, Any], where: str, assert_where: list[str]) -> None:
        self.data = data
        self.where = where
        self.assert_where = assert_where


def _default_test(raw: Any, base: Path, w: _Where) -> _Test:
    if raw is None:
        return _Test({}, w.at(("defaultTest",)), [])
    if isinstance(raw, str) and raw.startswith("file://"):
        path = base / raw.removeprefix("file://")
        source = read_file(path, "defaultTest file")
        return _check_test(source.data, _Where(str(path), source.lines), ())
    return _check_test(raw, w, ("defaultTest",))


def _check_test(data: Any, w: _Where, loc: tuple[str | int, ...]) -> _Test:
    where = w.at(loc)
    if not isinstance(data, dict):
        raise InvalidInputError(f"{where}: a test is a mapping (vars, assert, ...)")
    for key in data:
        if key not in _TEST_KEYS:
            raise InvalidInputError(
                f"{w.at((*loc, key))}: test key {key!r} is not supported",
                hint=f"supported: {', '.join(sorted(_TEST_KEYS))}",
            )
    for key in data.get("options") or {}:
        if key not in _OPTION_KEYS:
            raise InvalidInputError(
                f"{w.at((*loc, 'options', key))}: option {key!r} is not supported",
                hint=f"supported: {', '.join(sorted(_OPTION_KEYS))}",
            )
    asserts = data.get("assert") or []
    if not isinstance(asserts, list):
        raise InvalidInputError(f"{w.at((*loc, 'assert'))}: must be a list of assertions")
    return _Test(data, where, [w.at((*loc, "assert", j)) for j in range(len(asserts))])


def _tests(raw: Any, base: Path, w: _Where) -> list[_Test]:
    if raw is None:
        raise InvalidInputError(f"{w.path}: has no `tests`")
    items = raw if isinstance(raw, list) else [raw]
    out: list[_Test] = []
    for i, item in enumerate(items):
        loc: tuple[str | int, ...] = ("tests", i) if isinstance(raw, list) else ("tests",)
        if isinstance(item, str) and item.startswith("file://"):
            pattern = item.removeprefix("file://")
            paths = sorted(base.glob(pattern)) if any(c in pattern for c in "*?[") else [base / pattern]
            for path in paths:
                out.extend(_test_file(path, w.at(loc)))
        else:
            out.append(_check_test(item, w, loc))
    return out


def _test_file(path: Path, where: str) -> list[_Test]:
    if not path.is_file():
        raise InvalidInputError(f"{where}: {path} does not exist (paths are relative to the config)")
    if path.suffix == ".csv":
        return _csv_tests(path)
    if path.suffix == ".jsonl":
        from honed.userfiles import json_lines

        text = path.read_text(encoding="utf-8")
        return [_check_test(d, _Where(f"{path}:{n}", {}), ()) for n, d in json_lines(path, text)]
    if path.suffix in (".yaml", ".yml", ".json"):
        source = read_file(path, "test file")
        if not isinstance(source.data, list):
            raise InvalidInputError(f"{path}:1: a test file holds a list of tests")
        fw = _Where(str(path), source.lines)
        return [_check_test(d, fw, (i,)) for i, d in enumerate(source.data)]
    raise InvalidInputError(
        f"{where}: test file {path.name} is not supported", hint="use .csv, .jsonl, .yaml, .yml or .json"
    )


def _csv_tests(path: Path) -> list[_Test]:
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise InvalidInputError(f"{path}:1: the CSV file has no header")
    out: list[_Test] = []
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}:{start}"
        data: dict[str, Any] = {"vars": {}, "assert": []}
        metric: str | None = None
        for key, value in zip(header, row, strict=False):
            if key.startswith("__expected"):
                if value.strip():
                    data["assert"].append(assertion_from_string(value))
            elif key == "__description":
                data["description"] = value
            elif key == "__metric":
                metric = value or None
            elif key.startswith("__"):
                raise InvalidInputError(
                    f"{where}: column {key} is not supported",
                    hint="supported: __expected, __expected1..N, __description, __metric",
                )
            else:
                data["vars"][key] = value
        if metric:
            for a in data["assert"]:
                a["metric"] = metric
        out.append(_Test(data, where, [f"{where}: __expected ({j + 1})" for j in range(len(data["assert"]))]))
    return out


def _case(index: int, test: _Test, default: _Test, ctx: AssertContext) -> Case:
    d, t = default.data, test.data
    vars_ = {**(d.get("vars") or {}), **(t.get("vars") or {})}
    for key, value in list(vars_.items()):
        vars_[key] = _var(key, value, test.where, ctx.base)
    options = {**(d.get("options") or {}), **(t.get("options") or {})}
    checks = [
        map_assertion(a, where, vars_, options, ctx)
        for a, where in [
            *zip(d.get("assert") or [], default.assert_where, strict=True),
            *zip(t.get("assert") or [], test.assert_where, strict=True),
        ]
    ]
    metadata: dict[str, Any] = {"source": test.where}
    if t.get("description"):
        metadata["description"] = str(t["description"])
    extra = {**(d.get("metadata") or {}), **(t.get("metadata") or {})}
    if extra:
        metadata["promptfoo"] = extra
    if checks:
        metadata["checks"] = checks
    if not vars_:
        raise InvalidInputError(
            f"{test.where}: the test has no vars", hint="honed cases need at least one input"
        )
    return Case(id=f"t{index}", inputs=vars_, metadata=metadata)


def _var(key: str, value: Any, where: str, base: Path) -> Any:
    if isinstance(value, list):
        raise InvalidInputError(
            f"{where}: vars.{key} is a list: promptfoo runs one test per value, honed does not expand it",
            hint="write one test per value",
        )
    if isinstance(value, str) and value.startswith("file://"):
        path = base / value.removeprefix("file://")
        if not path.is_file():
            raise InvalidInputError(f"{where}: vars.{key}: {value} does not exist")
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            return json.loads(text)
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return text
    return value
