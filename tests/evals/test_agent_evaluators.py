"""Evaluators of whole agent traces: tool-call correctness, trajectory match, steps and tokens, and the
final answer by any evaluator; over an experiment's calls (cases carrying expected tool calls) and over
OTLP traces ingested into a workspace, scored with `honed logs eval` through the real CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import honed
from honed.config import init_workspace, load_settings
from honed.datasets import Case, record_cases
from honed.evals.evaluators import build_evaluator
from honed.evals.evaluators.base import EvalInput, Score, Trajectory
from honed.experiments import parse_spec, resolve, run_experiment
from honed.models.types import ChatRequest, ProviderResult, Usage
from honed.prompts import Prompt, push
from honed.testing import scripted
from tests.support.cli import honed as run_cli


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"id": f"c-{name}", "name": name, "arguments": json.dumps(arguments)}


def score(spec: dict[str, Any], item: EvalInput) -> Score:
    return asyncio.run(build_evaluator(spec).evaluate(item))


WEATHER = call("weather", city="Paris", unit="C")
SEARCH = call("search", query="Paris events")
BOOK = call("book", event="expo")
TRACE = Trajectory(
    (SEARCH, WEATHER, BOOK), steps=3, input_tokens=300, output_tokens=60, final_output="Booked."
)


def test_tool_calls_by_name_arguments_and_schema() -> None:
    item = EvalInput(output="", trace=TRACE)
    exact = score(
        {
            "type": "tool_calls",
            "expected": [{"name": "weather", "arguments": {"city": "Paris", "unit": "C"}}],
        },
        item,
    )
    assert (exact.value, exact.passed) == (1.0, True)
    wrong = score(
        {"type": "tool_calls", "expected": [{"name": "weather", "arguments": {"city": "Rome"}}]}, item
    )
    assert (wrong.value, wrong.passed) == (0.0, False) and 'missing weather({"city": "Rome"})' in wrong.reason
    subset = {
        "type": "tool_calls",
        "arguments": "subset",
        "expected": [{"name": "weather", "arguments": {"city": "Paris"}}],
    }
    assert score(subset, item).passed is True
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"enum": ["Paris", "Lyon"]}}}
    assert score({"type": "tool_calls", "expected": [{"name": "weather", "schema": schema}]}, item).passed
    half = score({"type": "tool_calls", "expected": ["weather", "email"]}, item)
    assert (half.value, half.passed) == (0.5, False) and "missing email()" in half.reason
    strict = score({"type": "tool_calls", "expected": ["weather"], "allow_extra": False}, item)
    assert strict.passed is False and "unexpected search" in strict.reason
    # Without expected calls anywhere it is an error, never a zero.
    assert score({"type": "tool_calls"}, item).error is not None


@pytest.mark.parametrize(
    ("mode", "expected", "passed"),
    [
        ("exact", ["search", "weather", "book"], True),
        ("exact", ["weather", "search", "book"], False),
        ("in_order", ["search", "book"], True),
        ("in_order", ["book", "search"], False),
        ("any_order", ["book", "weather", "search"], True),
        ("any_order", ["book", "weather"], False),
        ("subset", ["search", "weather", "book", "email"], True),
        ("subset", ["search", "weather"], False),
        ("superset", ["weather", "book"], True),
        ("superset", ["weather", "email"], False),
    ],
)
def test_trajectory_modes(mode: str, expected: list[str], passed: bool) -> None:
    result = score(
        {"type": "trajectory", "mode": mode, "expected": expected}, EvalInput(output="", trace=TRACE)
    )
    assert result.passed is passed, result.reason


def test_steps_tokens_and_the_final_answer() -> None:
    item = EvalInput(output="last step's text", trace=TRACE, reference="booked")
    steps = score({"type": "trace_steps", "max_steps": 2}, item)
    assert (steps.value, steps.passed) == (3.0, False) and "3 steps > 2" in steps.reason
    assert score({"type": "trace_steps", "max_steps": 5, "max_tokens": 400}, item).passed is True
    assert "360 tokens > 100" in score({"type": "trace_steps", "max_tokens": 100}, item).reason
    final = score({"type": "final_answer", "check": {"type": "contains", "strings": ["Booked"]}}, item)
    assert final.passed is True
    with pytest.raises(honed.InvalidInputError, match="max_steps"):
        build_evaluator({"type": "trace_steps"})


def test_an_experiment_scores_the_tool_calls_its_cases_expect(tmp_path: Path) -> None:
    def model(request: ChatRequest) -> ProviderResult:
        city = str(request.messages[-1]["content"])
        wrong = "broken" in str(request.messages[0]["content"]) and city == "Rome"
        tool = call("weather", city="Paris" if wrong else city)
        return ProviderResult("", Usage(10, 5), finish_reason="tool_calls", tool_calls=(tool,))

    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    h = honed.Honed(load_settings(start=init_workspace(tmp_path)))
    try:
        with scripted("agent", model) as ref:
            for system in ("use tools", "use tools, broken"):
                messages = [{"role": "system", "content": system}, {"role": "user", "content": "{{ city }}"}]
                body = {"name": "w", "model": ref, "messages": messages, "tools": tools}
                push(h.store, [Prompt.model_validate(body)])
            cases = [
                Case(
                    id=c,
                    inputs={"city": c},
                    metadata={"expected_tool_calls": [{"name": "weather", "arguments": {"city": c}}]},
                )
                for c in ("Paris", "Rome", "Oslo")
            ]
            record_cases(h.store, "cities", cases)
            spec = {
                "name": "tools",
                "dataset": "cities",
                "variants": [{"prompt": "w@v1"}, {"prompt": "w@v2"}],
                "evaluators": [{"type": "tool_calls"}, {"type": "trajectory", "expected": ["weather"]}],
            }
            run = run_experiment(h, resolve(h, parse_spec(spec)))
        scores = {
            (s["variant"], s["case_id"], s["evaluator"]): s["passed"] for s in h.store.runs.scores(run.id)
        }
        assert scores[("w@v1", "Rome", "tool_calls")] is True
        assert scores[("w@v2", "Rome", "tool_calls")] is False  # called weather for Paris instead
        assert scores[("w@v2", "Rome", "trajectory")] is True  # the right tool, whatever its arguments
    finally:
        h.close()


def test_logs_eval_scores_each_ingested_trace_once_on_its_last_generation(workspace: Path) -> None:
    from honed.logs.otlp import ingest_spans
    from honed.logs.otlp.decode import decode_json
    from honed.models.prices import PriceTable
    from tests.serve.test_traces import _otlp_json, _span

    trace = "9a" * 16

    def generation(
        span_id: str, parent: str, calls: list[dict[str, Any]], text: str, ms: int
    ) -> dict[str, Any]:
        parts = [
            {"type": "tool_call", "id": c["id"], "name": c["name"], "arguments": json.loads(c["arguments"])}
            for c in calls
        ]
        parts += [{"type": "text", "content": text}] if text else []
        span = _span(
            span_id,
            parent=parent,
            trace_id=trace,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 20,
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": parts}]),
            },
        )
        span["startTimeUnixNano"] = str(1_765_000_000_000_000_000 + ms * 1_000_000)
        return span

    root = "10" * 8
    spans = [
        _span(root, name="agent", trace_id=trace),
        generation("11" * 8, root, [SEARCH], "", 100),
        generation("12" * 8, root, [WEATHER], "", 200),
        generation("13" * 8, root, [], "It will be sunny; I booked the expo.", 300),
    ]
    with honed.connect(workspace) as h:
        decoded = decode_json(json.dumps(_otlp_json(spans)).encode())
        ingest_spans(h.store, PriceTable(), decoded.spans)
    expected = json.dumps({"type": "trajectory", "mode": "exact", "expected": ["search", "weather"]})
    steps = json.dumps({"type": "trace_steps", "max_steps": 2})
    final = json.dumps({"type": "final_answer", "check": {"type": "contains", "strings": ["booked"]}})
    for spec in (expected, steps, final):
        result = run_cli("logs", "eval", spec, "--trace", trace, "--json", cwd=workspace)
        assert result.returncode in (0, 3), result.stderr
    with honed.connect(workspace) as h:
        scored = h.store.logs.scores_for([f"span-{trace}-{s}" for s in ("11" * 8, "12" * 8, "13" * 8)])
    last = scored[f"span-{trace}-{'13' * 8}"]
    assert last["trajectory"]["passed"] is True
    assert last["trace_steps"]["passed"] is False and last["trace_steps"]["value"] == 3.0
    assert last["final_answer"]["passed"] is True  # the last generation's text, over the whole trace
    assert not scored[f"span-{trace}-{'11' * 8}"] and not scored[f"span-{trace}-{'12' * 8}"]
