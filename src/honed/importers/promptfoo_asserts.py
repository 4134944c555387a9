"""promptfoo assertions as honed checks (see `honed.evals.evaluators.checks` for the check form).

| promptfoo                                   | honed check                                                 |
|---------------------------------------------|-------------------------------------------------------------|
| equals (text / JSON value)                  | exact (strip: false) / json_schema {const: value}           |
| contains, icontains                         | contains (case_sensitive true / false)                      |
| contains-any/-all, icontains-any/-all       | contains (mode any / all)                                   |
| starts-with                                 | starts_with                                                 |
| regex                                       | regex                                                       |
| is-json (optional schema)                   | json_valid / json_schema                                    |
| similar (threshold, default 0.75)           | embedding_similarity                                        |
| llm-rubric, factuality, model-graded-closedqa | llm_judge (pass_fail) with a rubric for each              |
| latency (ms), cost ($)                      | latency (max_s), cost (max_usd)                             |
| python (file or inline)                     | python, through a generated adapter file                    |
| javascript (inline or file)                 | javascript (Node.js)                                        |
| not-X                                       | not {X}                                                     |

The per-assertion `value` (rendered with the test's vars where it is a template), `threshold`, `weight`,
`metric` (the check's name; by default its type), `provider` (a grader) and `transform` carry over.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from honed.errors import InvalidInputError
from honed.evals.evaluators.javascript import node_path
from honed.importers.common import ModelMap, relative_to, text_value
from honed.importers.nunjucks import to_jinja
from honed.prompts.template import render

#: promptfoo's default grader when the config names none (mapped with --model-map like any provider).
DEFAULT_GRADER = "openai:gpt-4.1-2025-04-14"
SIMILAR_THRESHOLD = 0.75
CSV_SIMILAR_THRESHOLD = 0.8
ADAPTER_FILE = "promptfoo_checks.py"

#: promptfoo's base assertion types, as its CSV `__expected` syntax recognises them (a type not listed
#: here is read as an `equals` value, as promptfoo does).
BASE_TYPES = [
    "answer-relevance",
    "bleu",
    "classifier",
    "contains-all",
    "contains-any",
    "contains-html",
    "contains-json",
    "contains-sql",
    "contains-xml",
    "contains",
    "context-faithfulness",
    "context-recall",
    "context-relevance",
    "conversation-relevance",
    "cost",
    "equals",
    "factuality",
    "finish-reason",
    "g-eval",
    "gleu",
    "guardrails",
    "icontains-all",
    "icontains-any",
    "icontains",
    "is-html",
    "is-json",
    "is-refusal",
    "is-sql",
    "is-valid-function-call",
    "is-valid-openai-function-call",
    "is-valid-openai-tools-call",
    "is-xml",
    "javascript",
    "latency",
    "levenshtein",
    "llm-rubric",
    "meteor",
    "model-graded-closedqa",
    "model-graded-factuality",
    "moderation",
    "perplexity-score",
    "perplexity",
    "pi",
    "python",
    "regex",
    "rouge-n",
    "ruby",
    "select-best",
    "similar",
    "starts-with",
    "webhook",
    "word-count",
]
_CSV_ASSERTION = re.compile(
    rf"^(not-)?({'|'.join(map(re.escape, BASE_TYPES))})(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$"
)
_THRESHOLD_TYPES = frozenset(
    [
        "answer-relevance",
        "classifier",
        "context-faithfulness",
        "context-recall",
        "context-relevance",
        "cost",
        "latency",
        "levenshtein",
        "perplexity-score",
        "perplexity",
        "rouge-n",
        "similar",
        "starts-with",
    ]
)
_ASSERT_KEYS = frozenset({"type", "value", "threshold", "weight", "metric", "provider", "transform"})

FACT_RUBRIC = (
    "Compare the factual content of the response with the reference answer (the expert answer); ignore "
    "differences in style, grammar or punctuation. Pass if the response is a subset or a superset of the "
    "reference and fully consistent with it, contains the same details, or differs only in ways that do "
    "not matter for factuality. Fail if the response and the reference disagree."
)
CLOSEDQA_RUBRIC = (
    "Does the response meet this criterion? Pass if it does, fail if it does not.\nCriterion: {}"
)


def assertion_from_string(text: str) -> dict[str, Any]:
    """A CSV `__expected` cell as a promptfoo assertion, as promptfoo reads it."""
    for prefix in ("javascript:", "fn:", "eval:"):
        if text.startswith(prefix):
            return {"type": "javascript", "value": text[len(prefix) :].strip()}
    for prefix in ("grade:", "llm-rubric:"):
        if text.startswith(prefix):
            return {"type": "llm-rubric", "value": text[len(prefix) :]}
    if text.startswith("python:") or (
        text.startswith("file://") and (text.endswith(".py") or ".py:" in text)
    ):
        cut = len("python:") if text.startswith("python:") else 0
        return {"type": "python", "value": text[cut:].strip()}
    if text.startswith("file://") and (text.endswith((".js", ".ts")) or ".js:" in text or ".ts:" in text):
        return {"type": "javascript", "value": text.strip()}
    m = _CSV_ASSERTION.match(text)
    if m is None:
        return {"type": "equals", "value": text}
    negated, kind, threshold, value = m.group(1), m.group(2), m.group(3), m.group(4) or ""
    full = f"not-{kind}" if negated else kind
    if kind in ("contains-all", "contains-any", "icontains-all", "icontains-any"):
        return {"type": full, "value": [s.strip() for s in value.split(",")]}
    if kind in _THRESHOLD_TYPES:
        default = CSV_SIMILAR_THRESHOLD if kind == "similar" else 0.75
        return {"type": full, "value": value, "threshold": float(threshold) if threshold else default}
    return {"type": full, "value": value}


@dataclass
class Adapters:
    """The generated Python file that adapts promptfoo's Python assertions to honed's `python` evaluator."""

    out: Path
    functions: list[str] = field(default_factory=list)

    def add_file(self, path: Path, name: str, threshold: float | None) -> str:
        n = len(self.functions) + 1
        rel = relative_to(path, self.out)
        self.functions.append(
            f"def check_{n}(output, inputs, metadata):\n"
            f"    fn = _load({rel!r}, {name!r})\n"
            f"    return _result(fn(output, _context(inputs, metadata)), {threshold!r})\n"
        )
        return f"{ADAPTER_FILE}:check_{n}"

    def add_inline(self, code: str, threshold: float | None) -> str:
        n = len(self.functions) + 1
        body = code if "\n" in code.strip() else f"return {code.strip()}"
        indented = "\n".join(f"    {line}" for line in body.splitlines())
        self.functions.append(
            f"def _inline_{n}(output, context):\n{indented}\n\n\n"
            f"def check_{n}(output, inputs, metadata):\n"
            f"    return _result(_inline_{n}(output, _context(inputs, metadata)), {threshold!r})\n"
        )
        return f"{ADAPTER_FILE}:check_{n}"

    def text(self) -> str | None:
        if not self.functions:
            return None
        return _ADAPTER_HEAD + "\n\n".join(self.functions)


_ADAPTER_HEAD = '''"""Generated by `honed import promptfoo`: promptfoo's Python assertions as functions for
honed's `python` evaluator. Each calls the assertion as promptfoo does, f(output, context), and turns its
result (a bool, a number, or {pass, score, reason}) into honed's form."""

import functools
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


@functools.cache
def _load(rel, name):
    path = (HERE / rel).resolve()
    spec = importlib.util.spec_from_file_location(f"promptfoo_assert_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return getattr(module, name)


def _context(inputs, metadata):
    return {"vars": inputs, "test": {"vars": inputs, "metadata": metadata}}


def _result(value, threshold):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        passed = value >= threshold if threshold is not None else value > 0
        return {"value": float(value), "passed": passed}
    if isinstance(value, dict) and ("pass" in value or "pass_" in value or "score" in value):
        ok = value.get("pass", value.get("pass_"))
        score = value.get("score")
        score = float(score) if score is not None else (1.0 if ok else 0.0)
        if ok is None:
            ok = score >= threshold if threshold is not None else score > 0
        return {"value": score, "passed": bool(ok), "reason": str(value.get("reason") or "")}
    raise TypeError(f"the assertion returned {type(value).__name__}: expected bool, number or dict")


'''


@dataclass
class AssertContext:
    """What mapping one test's assertions needs."""

    base: Path  # the folder file:// paths are relative to
    out: Path
    models: ModelMap
    default_model: str
    adapters: Adapters


def map_assertion(
    raw: Any, where: str, vars_: Mapping[str, Any], options: Mapping[str, Any], ctx: AssertContext
) -> dict[str, Any]:
    """One promptfoo assertion (with the test's vars and options) as a `case_checks` entry."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        raise InvalidInputError(f"{where}: an assertion must be a mapping with a `type`")
    unknown = sorted(set(raw) - _ASSERT_KEYS)
    if unknown:
        raise InvalidInputError(
            f"{where}: assertion key(s) {', '.join(unknown)} are not supported",
            hint=f"supported: {', '.join(sorted(_ASSERT_KEYS))}",
        )
    full: str = raw["type"]
    negated = full.startswith("not-")
    kind = full[4:] if negated else full
    value = raw.get("value")
    if isinstance(value, str) and kind not in ("python", "javascript") and ("{{" in value or "{%" in value):
        value = render(to_jinja(value, where), vars_, where=where)
    threshold = raw.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
        raise InvalidInputError(f"{where}: threshold must be a number, not {threshold!r}")
    entry: dict[str, Any] = {"name": str(raw.get("metric") or full)}
    check = _check(kind, full, value, threshold, raw, where, options, ctx, entry)
    entry["check"] = {"type": "not", "check": check} if negated else check
    if raw.get("weight") is not None:
        weight = raw["weight"]
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise InvalidInputError(f"{where}: weight must be a number >= 0, not {weight!r}")
        entry["weight"] = weight
    transforms = [t for t in (options.get("transform"), raw.get("transform")) if t is not None]
    if transforms:
        entry["transform"] = [_transform(t, where, ctx) for t in transforms]
    return entry


def _check(
    kind: str,
    full: str,
    value: Any,
    threshold: float | None,
    raw: Mapping[str, Any],
    where: str,
    options: Mapping[str, Any],
    ctx: AssertContext,
    entry: dict[str, Any],
) -> dict[str, Any]:
    def need_text() -> str:
        if not isinstance(value, str):
            raise InvalidInputError(f"{where}: {full} needs a text `value`, not {value!r}")
        return value

    def strings() -> list[str]:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",")]
        if isinstance(value, list) and value:
            return [text_value(v) for v in value]
        raise InvalidInputError(f"{where}: {full} needs a list of strings as `value`")

    if kind == "equals":
        if value is None:
            raise InvalidInputError(f"{where}: equals needs a `value`")
        if isinstance(value, str):
            entry["reference"] = value
            return {"type": "exact", "strip": False}
        return {"type": "json_schema", "schema": {"const": value}}
    if kind in ("contains", "icontains"):
        return {
            "type": "contains",
            "strings": [text_value(need_text())],
            "case_sensitive": kind == "contains",
        }
    if kind in ("contains-any", "contains-all", "icontains-any", "icontains-all"):
        return {
            "type": "contains",
            "strings": strings(),
            "mode": kind.rsplit("-", 1)[1],
            "case_sensitive": not kind.startswith("i"),
        }
    if kind == "starts-with":
        return {"type": "starts_with", "prefixes": [need_text()]}
    if kind == "regex":
        return {"type": "regex", "pattern": need_text()}
    if kind == "is-json":
        schema = _schema(value, where, ctx)
        return {"type": "json_valid"} if schema is None else {"type": "json_schema", "schema": schema}
    if kind == "similar":
        if isinstance(value, list):
            entry["reference"] = [text_value(v) for v in value]
        else:
            entry["reference"] = need_text()
        return {
            "type": "embedding_similarity",
            "threshold": threshold if threshold is not None else SIMILAR_THRESHOLD,
        }
    if kind in ("llm-rubric", "factuality", "model-graded-factuality", "model-graded-closedqa"):
        if threshold is not None:
            raise InvalidInputError(
                f"{where}: {full} with a threshold is not supported",
                hint="honed's judge gives pass/fail here; drop the threshold",
            )
        grader = _grader(raw.get("provider") or options.get("provider"), where, ctx)
        text = need_text()
        spec: dict[str, Any] = {"type": "llm_judge", "model": grader, "scale": "pass_fail"}
        if kind == "llm-rubric":
            return {**spec, "rubric": text, "use_inputs": False, "use_reference": False, "use_context": False}
        if kind == "model-graded-closedqa":
            rubric = CLOSEDQA_RUBRIC.format(text)
            return {**spec, "rubric": rubric, "use_reference": False, "use_context": False}
        entry["reference"] = text
        return {**spec, "rubric": FACT_RUBRIC, "use_context": False}
    if kind in ("latency", "cost"):
        if threshold is None or threshold < 0:
            raise InvalidInputError(
                f"{where}: {full} needs a `threshold` ({'ms' if kind == 'latency' else '$'})"
            )
        if kind == "latency":
            return {"type": "latency", "max_s": float(threshold) / 1000}
        return {"type": "cost", "max_usd": float(threshold)}
    if kind == "python":
        code = need_text()
        if code.startswith("file://"):
            path, name = _file_function(code, where, ctx, default="get_assert", suffixes=(".py",))
            return {"type": "python", "function": ctx.adapters.add_file(path, name, threshold)}
        return {"type": "python", "function": ctx.adapters.add_inline(code, threshold)}
    if kind == "javascript":
        code = need_text()
        _need_node(where, full)
        out: dict[str, Any] = {"type": "javascript"}
        if code.startswith("file://"):
            path, name = _file_function(code, where, ctx, default="", suffixes=(".js", ".cjs"))
            out["file"] = relative_to(path, ctx.out) + (f":{name}" if name else "")
        else:
            out["code"] = code
        if threshold is not None:
            out["threshold"] = threshold
        return out
    raise InvalidInputError(
        f"{where}: assertion type {full!r} has no honed equivalent",
        hint="supported: equals, contains, icontains, contains-any/-all, icontains-any/-all, starts-with, "
        "regex, is-json, similar, llm-rubric, factuality, model-graded-closedqa, latency, cost, python, "
        "javascript, and their not- forms",
    )


def _need_node(where: str, what: str) -> None:
    if node_path() is None:
        raise InvalidInputError(
            f"{where}: {what} needs Node.js to run, and `node` is not installed",
            hint="install Node.js (https://nodejs.org), or rewrite it as a python assertion",
        )


def _grader(provider: Any, where: str, ctx: AssertContext) -> str:
    if isinstance(provider, Mapping):
        provider = provider.get("id")
    if provider is None:
        return ctx.models.find(DEFAULT_GRADER) or ctx.default_model
    if not isinstance(provider, str):
        raise InvalidInputError(f"{where}: the grading provider must be a provider id, not {provider!r}")
    return ctx.models.get(provider, f"{where}: grader")


def _schema(value: Any, where: str, ctx: AssertContext) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        text = value
        if value.startswith("file://"):
            path = _path(value, where, ctx)
            text = path.read_text(encoding="utf-8")
        try:
            import yaml

            loaded = yaml.safe_load(text)
        except yaml.YAMLError:
            loaded = None
        if isinstance(loaded, dict):
            return loaded
    raise InvalidInputError(
        f"{where}: is-json's value must be a JSON schema (a mapping or file://schema.json)"
    )


def _path(ref: str, where: str, ctx: AssertContext) -> Path:
    path = ctx.base / ref.removeprefix("file://")
    if not path.is_file():
        raise InvalidInputError(f"{where}: {ref} does not exist (paths are relative to the config)")
    return path


def _file_function(
    ref: str, where: str, ctx: AssertContext, *, default: str, suffixes: tuple[str, ...]
) -> tuple[Path, str]:
    body = ref.removeprefix("file://")
    head, sep, tail = body.rpartition(":")
    file_part, name = (head, tail) if sep and head.endswith(suffixes) else (body, default)
    if not file_part.endswith(suffixes):
        raise InvalidInputError(f"{where}: {ref} is not a {'/'.join(suffixes)} file")
    return _path(f"file://{file_part}", where, ctx), name


def _transform(raw: Any, where: str, ctx: AssertContext) -> dict[str, str]:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInputError(
            f"{where}: a transform must be a JavaScript expression or file://FILE.py[:fn]"
        )
    if raw.startswith("file://"):
        if ".py" not in raw:
            raise InvalidInputError(
                f"{where}: transform {raw} is not supported (only file://FILE.py[:fn] and inline JavaScript)",
                hint="inline the JavaScript expression, or write the transform in Python",
            )
        path, name = _file_function(raw, where, ctx, default="get_transform", suffixes=(".py",))
        return {"python": f"{relative_to(path, ctx.out)}:{name}"}
    _need_node(where, "a JavaScript transform")
    return {"javascript": raw}
