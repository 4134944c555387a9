"""Evaluators written as Python functions: `python` (a function in the user's file) and `as_evaluator(fn)`.

The function receives what it names, by keyword: any of `output`, `reference`, `inputs`, `parsed`,
`context`, `metadata`, `id`, `baseline`, `tool_calls`, `latency_s`, `cost_usd`, or `item` (the whole
EvalInput); a function of one other parameter gets the EvalInput. It may return a bool, a number,
`(number or bool, reason)`, a `Score`, or a dict with `value`/`score`, `passed`, `reason`, `details`.
An exception inside it becomes that item's error score with the exception's message, never a crash of
the whole run. A missing file or function is an `InvalidInputError` at build time, naming it.

The version hashes the function's source as well as the spec, so editing the file makes a new version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import inspect
import math
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from honed.errors import InvalidInputError
from honed.evals.evaluators.base import EvalInput, Evaluator, Score, binary, passed_at
from honed.hashing import content_hash

PASSABLE = (
    "output",
    "reference",
    "inputs",
    "parsed",
    "context",
    "metadata",
    "id",
    "baseline",
    "tool_calls",
    "latency_s",
    "cost_usd",
    "item",
)
_DICT_KEYS = frozenset({"value", "score", "passed", "reason", "details", "error"})


def coerce_result(result: Any, threshold: float | None = None) -> Score:
    """A user function's return value as a Score (see the module docstring for what is accepted)."""
    if type(result).__module__ == "numpy" and hasattr(result, "item"):
        result = result.item()
    if isinstance(result, Score):
        return result
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        score = coerce_result(result[0], threshold)
        return score if score.error else dataclasses.replace(score, reason=result[1])
    if isinstance(result, bool):
        return binary(result, f"function returned {result}")
    if isinstance(result, int | float):
        value = float(result)
        if not math.isfinite(value):
            return Score.failed(f"function returned {value}, not a finite number", raw=repr(result))
        return Score(value, passed_at(value, threshold), f"function returned {value:g}")
    if isinstance(result, Mapping):
        unknown = sorted(set(result) - _DICT_KEYS)
        if unknown:
            return Score.failed(f"function returned unknown key(s) {unknown}", raw=repr(result)[:500])
        if result.get("error"):
            return Score.failed(str(result["error"]), reason=str(result.get("reason") or ""))
        given = result.get("value", result.get("score"))
        if given is None:
            return Score.failed("function returned a dict without a value", raw=repr(result)[:500])
        inner = coerce_result(given, threshold)
        if inner.error:
            return inner
        passed = result.get("passed", inner.passed)
        reason = str(result.get("reason") or inner.reason)
        return Score(
            inner.value,
            None if passed is None else bool(passed),
            reason,
            details=dict(result.get("details") or {}),
        )
    return Score.failed(
        f"function returned {type(result).__name__}; expected bool, number, (number, reason), Score or dict",
        raw=repr(result)[:500],
    )


def _call_plan(fn: Callable[..., Any], where: str) -> tuple[str, ...] | None:
    """The EvalInput attributes to pass by keyword, or None to pass the EvalInput positionally."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return PASSABLE
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(named) == 1 and named[0].name not in PASSABLE and named[0].kind is not named[0].KEYWORD_ONLY:
        return None
    unknown = [p.name for p in named if p.name not in PASSABLE and p.default is p.empty]
    if unknown:
        raise InvalidInputError(
            f"{where}: parameter(s) {', '.join(map(repr, unknown))} are not passed by honed",
            hint=f"name parameters from: {', '.join(PASSABLE)}",
        )
    return tuple(p.name for p in named if p.name in PASSABLE)


@dataclass(frozen=True, kw_only=True, eq=False)
class _FunctionEvaluator(Evaluator):
    function: str
    threshold: float | None = None
    _fn: Callable[..., Any] = field(init=False, repr=False)
    _plan: tuple[str, ...] | None = field(init=False, repr=False)
    _source: str = field(init=False, repr=False)

    def _bind(self, fn: Callable[..., Any], source: str) -> None:
        object.__setattr__(self, "_plan", _call_plan(fn, f"evaluator function {self.function!r}"))
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "_source", source)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "source": self._source}

    async def evaluate(self, item: EvalInput) -> Score:
        try:
            if self._plan is None:
                result = self._fn(item)
            else:
                values = {name: item if name == "item" else getattr(item, name) for name in self._plan}
                result = self._fn(**values)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            return Score.failed(
                f"{type(exc).__name__}: {exc}",
                reason=f"the evaluator function {self.function} raised",
                details={"traceback": "".join(traceback.format_exception(exc, limit=-3))},
            )
        return coerce_result(result, self.threshold)


def load_function(ref: str, root: Path | None, *, what: str) -> tuple[Callable[..., Any], str]:
    """The function `ref` ("path/to/file.py:name", relative to `root`, default the current folder) names,
    and the content hash of its file's source. Errors are `InvalidInputError`s that begin with `what`."""
    file_part, sep, fn_name = ref.rpartition(":")
    if not sep or not file_part.endswith(".py") or not fn_name.isidentifier():
        raise InvalidInputError(
            f"{what}: function {ref!r} is not PATH.py:NAME", hint="e.g. function: evals/checks.py:is_polite"
        )
    path = (root or Path.cwd()) / file_part
    if not path.is_file():
        raise InvalidInputError(
            f"{what}: file {path} does not exist", hint="paths are relative to the workspace"
        )
    source = path.read_bytes()
    module_name = f"honed_user_eval_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidInputError(f"{what}: cannot load {path} as a module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise InvalidInputError(
            f"{what}: {path} failed to import: {type(exc).__name__}: {exc}",
            hint="run the file with python to see the full error",
        ) from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(path.parent))
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        found = sorted(n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_"))
        raise InvalidInputError(
            f"{what}: {path} has no function {fn_name!r}",
            hint=f"functions there: {', '.join(found) or 'none'}",
        )
    return fn, content_hash(source.decode("utf-8", errors="replace"))


@dataclass(frozen=True, kw_only=True, eq=False)
class PythonFunction(_FunctionEvaluator):
    """`function: "path/to/file.py:name"`, resolved against the workspace (the build context's root)."""

    kind = "python"
    root: Path | None = field(default=None, metadata={"context": "root"}, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        fn, source = load_function(self.function, self.root, what="evaluator 'python'")
        self._bind(fn, source)


@dataclass(frozen=True, kw_only=True, eq=False)
class CallableEvaluator(_FunctionEvaluator):
    """A Python callable used as an evaluator from code (`as_evaluator`); not rebuildable from a spec."""

    kind = "callable"


def as_evaluator(
    obj: Evaluator | Callable[..., Any], *, name: str = "", threshold: float | None = None
) -> Evaluator:
    """An evaluator as is, or a plain function wrapped as one (its source is part of the version)."""
    if isinstance(obj, Evaluator):
        return obj
    if not callable(obj):
        raise InvalidInputError(f"{obj!r} is neither an evaluator nor a function")
    qualname = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        source = qualname
    ev = CallableEvaluator(
        function=qualname, name=name or getattr(obj, "__name__", "callable"), threshold=threshold
    )
    ev._bind(obj, content_hash(source))
    return ev
