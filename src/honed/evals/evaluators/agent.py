"""Evaluators of what an agent did over a trace, not only of its final text.

- `tool_calls`: were the expected tools called with the expected arguments? Each expected call names a
  tool and either `arguments` (compared after JSON parsing: `exact`, or `subset` where the expected keys
  must have the expected values) or a JSON `schema` the arguments must satisfy. Value: the share of
  expected calls made (each actual call matches at most one); passes when all were made, and, with
  `allow_extra: false`, nothing else was called.
- `trajectory`: the sequence of tools called against an expected one: `exact` (the same calls in the
  same order), `in_order` (the expected calls appear in this order, others may come between), `any_order`
  (the same calls, any order), `subset` (no call that was not expected), `superset` (every expected call,
  others allowed). Items are tool names, or calls with arguments (then compared as `tool_calls` does).
- `trace_steps`: the number of model calls and the tokens they used, against `max_steps` and
  `max_tokens`. Value: the number of steps.
- `final_answer`: any evaluator (`check`, a spec) applied to the trace's final answer.

The expected calls come from the evaluator's `expected`, else the case's `metadata["expected_tool_calls"]`
(cases carry them in a dataset), else a reference that is a list of calls. An experiment's output is a
trajectory of one step (the calls that one model call asked for); a logged trace's last generation is
scored over the whole trace (see `honed.logs.online`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from honed.errors import InvalidInputError
from honed.evals.evaluators.base import (
    EvalInput,
    Evaluator,
    Score,
    SyncEvaluator,
    Trajectory,
    binary,
)
from honed.evals.evaluators.checks import Wrapper

EXPECTED_KEY = "expected_tool_calls"
NO_EXPECTED = "no expected tool calls (evaluator `expected`, case metadata expected_tool_calls)"
ArgumentsMode = Literal["exact", "subset", "ignore"]


def trajectory_of(item: EvalInput) -> Trajectory:
    """The item's trace, or the one step its own output is."""
    if item.trace is not None:
        return item.trace
    return Trajectory(tuple(item.tool_calls or ()), 1, None, None, item.output)


def _expected(given: list[Any] | None, item: EvalInput) -> list[Any] | None:
    if given is not None:
        return given
    found = item.metadata.get(EXPECTED_KEY)
    calls = isinstance(item.reference, list) and all(
        isinstance(c, dict) and "name" in c for c in item.reference
    )
    if found is None and calls and item.reference:
        found = item.reference
    return found if isinstance(found, list) else None


def _calls(
    given: list[Any] | None, item: EvalInput
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | Score:
    """(expected calls, calls made), or the error score of an item with no expected calls."""
    raw = _expected(given, item)
    if raw is None:
        return Score.failed(NO_EXPECTED)
    return [_call(c) for c in raw], list(trajectory_of(item).tool_calls)


def _arguments(value: Any) -> Any:
    """A call's arguments as data: the JSON text a model wrote, parsed (text that is not JSON stays)."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else {}
        except ValueError:
            return value
    return {} if value is None else value


def _call(expected: Any) -> dict[str, Any]:
    """An expected call as a dict: a bare tool name means the tool, any arguments."""
    if isinstance(expected, str):
        return {"name": expected}
    if not isinstance(expected, dict) or not isinstance(expected.get("name"), str):
        raise InvalidInputError(f"an expected tool call needs a name: {expected!r}")
    return expected


def call_matches(expected: dict[str, Any], actual: dict[str, Any], mode: ArgumentsMode) -> bool:
    if expected["name"] != actual.get("name"):
        return False
    args = _arguments(actual.get("arguments"))
    if "schema" in expected:
        import jsonschema

        return bool(jsonschema.Draft202012Validator(expected["schema"]).is_valid(args))
    if mode == "ignore" or "arguments" not in expected:
        return True
    want = _arguments(expected["arguments"])
    if mode == "subset" and isinstance(want, dict) and isinstance(args, dict):
        return all(key in args and args[key] == value for key, value in want.items())
    return bool(want == args)


def _label(call: dict[str, Any]) -> str:
    args = call.get("arguments")
    shown = "" if args in (None, "", {}) else json.dumps(_arguments(args), ensure_ascii=False)[:60]
    return f"{call.get('name')}({shown})"


def _pair(
    expected: Sequence[dict[str, Any]], actual: Sequence[dict[str, Any]], mode: ArgumentsMode
) -> tuple[list[int | None], set[int]]:
    """For each expected call, the index of the actual call it matched (each used once), and the actual
    calls matched."""
    used: set[int] = set()
    found: list[int | None] = []
    for want in expected:
        hit = next(
            (i for i, got in enumerate(actual) if i not in used and call_matches(want, got, mode)), None
        )
        if hit is not None:
            used.add(hit)
        found.append(hit)
    return found, used


@dataclass(frozen=True, kw_only=True, eq=False)
class ToolCalls(SyncEvaluator):
    """The share of expected tool calls made, with the expected arguments (see the module docstring)."""

    kind = "tool_calls"
    expected: list[Any] | None = None
    arguments: ArgumentsMode = "exact"
    allow_extra: bool = True

    def score(self, item: EvalInput) -> Score:
        calls = _calls(self.expected, item)
        if isinstance(calls, Score):
            return calls
        want, actual = calls
        found, used = _pair(want, actual, self.arguments)
        missing = [_label(w) for w, hit in zip(want, found, strict=True) if hit is None]
        extra = [_label(a) for i, a in enumerate(actual) if i not in used]
        made = len(want) - len(missing)
        value = made / len(want) if want else (1.0 if not actual or self.allow_extra else 0.0)
        passed = not missing and (self.allow_extra or not extra)
        words = [f"{made} of {len(want)} expected call(s) made"]
        if missing:
            words.append("missing " + ", ".join(missing))
        if extra:
            words.append(("unexpected " if not self.allow_extra else "also called ") + ", ".join(extra))
        return Score(value=value, passed=passed, reason="; ".join(words))


@dataclass(frozen=True, kw_only=True, eq=False)
class TrajectoryMatch(SyncEvaluator):
    """The tools called, in order, against an expected trajectory (see the module docstring)."""

    kind = "trajectory"
    expected: list[Any] | None = None
    mode: Literal["exact", "in_order", "any_order", "subset", "superset"] = "exact"
    arguments: ArgumentsMode = "ignore"

    def score(self, item: EvalInput) -> Score:
        calls = _calls(self.expected, item)
        if isinstance(calls, Score):
            return calls
        want, actual = calls
        ok = self._match(want, actual)
        shown = " -> ".join(str(a.get("name")) for a in actual) or "no tool calls"
        expected = " -> ".join(str(w["name"]) for w in want) or "none"
        return binary(ok, f"{self.mode}: called {shown}; expected {expected}")

    def _match(self, want: list[dict[str, Any]], actual: list[dict[str, Any]]) -> bool:
        mode, args = self.mode, self.arguments
        if mode == "exact":
            return len(want) == len(actual) and all(
                call_matches(w, a, args) for w, a in zip(want, actual, strict=True)
            )
        if mode == "in_order":
            position = 0
            for w in want:
                while position < len(actual) and not call_matches(w, actual[position], args):
                    position += 1
                if position == len(actual):
                    return False
                position += 1
            return True
        found, used = _pair(want, actual, args)
        if mode == "any_order":
            return all(hit is not None for hit in found) and len(used) == len(actual)
        if mode == "superset":
            return all(hit is not None for hit in found)
        # subset: every call made was expected (each expected call covers one made call)
        covered, _ = _pair(actual, want, args)
        return all(hit is not None for hit in covered)


@dataclass(frozen=True, kw_only=True, eq=False)
class TraceSteps(SyncEvaluator):
    """How many model calls the trace took (the value) and their tokens, within `max_steps` and
    `max_tokens`."""

    kind = "trace_steps"
    max_steps: int | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_steps is None and self.max_tokens is None:
            raise InvalidInputError(
                "trace_steps needs max_steps, max_tokens or both",
                hint="e.g. {type: trace_steps, max_steps: 5}",
            )

    def score(self, item: EvalInput) -> Score:
        trace = trajectory_of(item)
        tokens = None
        if trace.input_tokens is not None or trace.output_tokens is not None:
            tokens = (trace.input_tokens or 0) + (trace.output_tokens or 0)
        problems = []
        if self.max_steps is not None and trace.steps > self.max_steps:
            problems.append(f"{trace.steps} steps > {self.max_steps}")
        if self.max_tokens is not None:
            if tokens is None:
                return Score.failed("the trace's token counts are unknown")
            if tokens > self.max_tokens:
                problems.append(f"{tokens} tokens > {self.max_tokens}")
        reason = f"{trace.steps} step(s)" + (f", {tokens} tokens" if tokens is not None else "")
        if problems:
            reason += ": " + "; ".join(problems)
        return Score(value=float(trace.steps), passed=not problems, reason=reason)


@dataclass(frozen=True, kw_only=True, eq=False)
class FinalAnswer(Wrapper):
    """The evaluator `check` (a spec) applied to the trace's final answer."""

    kind = "final_answer"

    async def evaluate_many(self, items: Sequence[EvalInput]) -> list[Score]:
        finals = [replace(i, output=trajectory_of(i).final_output, parsed=None) for i in items]
        return await self._inner.evaluate_many(finals)


AGENT_EVALUATORS: tuple[type[Evaluator], ...] = (ToolCalls, TrajectoryMatch, TraceSteps, FinalAnswer)
TRACE_KINDS = frozenset(cls.kind for cls in AGENT_EVALUATORS)
