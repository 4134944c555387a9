"""Chains: each step's output reaches the next step; checks run before any call is spent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from honed.errors import InvalidInputError, OutputParseError
from honed.models.types import ChatRequest
from honed.prompts import Chain, Prompt, push
from honed.prompts.inputs import read_variables, resolve_steps
from honed.run import run_chain, run_prompt
from honed.store import Store
from honed.testing import scripted
from honed.workspace import Workspace


def inline(content: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **extra}


def test_run_prompt_uses_the_model_client(h: Workspace) -> None:
    p = Prompt.parse({"name": "qa", "messages": [{"role": "user", "content": "say {{ word }}"}]})
    with scripted("fixed", ["hello"]) as model:
        assert run_prompt(h, p, {"word": "x"}, model=model).text == "hello"
    # no model anywhere: the workspace default (scripted/echo here)
    assert run_prompt(h, p, {"word": "x"}).text == "say x"


def test_each_steps_output_is_available_to_the_next(h: Workspace, store: Store) -> None:
    push(
        store,
        [
            Prompt.parse(
                {"name": "extract", "messages": [{"role": "user", "content": "Facts about {{ topic }}"}]}
            )
        ],
    )
    seen: list[str] = []

    def reply(request: ChatRequest) -> str:
        text = request.messages[-1]["content"]
        seen.append(text)
        if text.startswith("Facts about"):
            return "water is wet"
        return f"answer using [{text}]"

    chain = Chain.parse(
        {
            "name": "flow",
            "steps": [
                {"prompt": "extract@latest", "output": "facts"},
                {"prompt": inline("Given {{ facts }}, answer about {{ topic }}"), "output": "answer"},
            ],
        }
    )
    with scripted("brain", reply) as model:
        result = run_chain(h, chain, {"topic": "water"}, model=model)
    assert seen == ["Facts about water", "Given water is wet, answer about water"]
    assert result.outputs == {
        "facts": "water is wet",
        "answer": "answer using [Given water is wet, answer about water]",
    }
    assert result.final == result.steps[1].value
    assert result.steps[0].prompt.name == "extract" and result.steps[0].version.startswith("sha256:")
    assert result.to_dict()["steps"][1]["messages"][-1]["content"].startswith("Given water is wet")


def test_a_step_with_a_schema_passes_parsed_json(h: Workspace) -> None:
    schema = {"type": "object", "properties": {"items": {"type": "array"}}}
    chain = Chain.parse(
        {
            "name": "flow",
            "steps": [
                {"prompt": inline("list", response_schema=schema), "output": "found"},
                {"prompt": inline("{% for i in found['items'] %}{{ i }};{% endfor %}"), "output": "joined"},
            ],
        }
    )
    with scripted(
        "json",
        lambda r: (
            json.dumps({"items": ["a", "b"]})
            if r.messages[-1]["content"] == "list"
            else r.messages[-1]["content"]
        ),
    ) as model:
        result = run_chain(h, chain, {}, model=model)
    assert result.outputs == {"found": {"items": ["a", "b"]}, "joined": "a;b;"}


def test_missing_variables_fail_before_any_call(h: Workspace) -> None:
    calls: list[ChatRequest] = []
    chain = Chain.parse(
        {
            "name": "flow",
            "steps": [
                {"prompt": inline("{{ question }}"), "output": "a"},
                {"prompt": inline("{{ a }} {{ b }}"), "output": "c"},
                {"prompt": inline("{{ c }}"), "output": "b"},
            ],
        }
    )

    def count(request: ChatRequest) -> str:
        calls.append(request)
        return "x"

    with scripted("count", count) as model:
        with pytest.raises(
            InvalidInputError, match="step 2 \\(c\\): prompt 'c' reads variable 'b', which a later step"
        ):
            run_chain(h, chain, {"question": "q"}, model=model)
        with pytest.raises(
            InvalidInputError, match="reads variable 'question', which no input or earlier step"
        ):
            run_chain(h, chain, {}, model=model)
        with pytest.raises(InvalidInputError, match="have the name of a step's output"):
            run_chain(h, chain, {"question": "q", "a": "1", "b": "2"}, model=model)
    assert calls == []


def test_a_failing_step_names_the_chain_and_step(h: Workspace) -> None:
    chain = Chain.parse(
        {
            "name": "flow",
            "steps": [
                {"prompt": inline("one"), "output": "a"},
                {"prompt": inline("two", response_schema={"type": "object"}), "output": "b"},
            ],
        }
    )
    with scripted("prose", ["fine", "not json"]) as model, pytest.raises(OutputParseError) as info:
        run_chain(h, chain, {}, model=model)
    assert info.value.message.startswith("chain 'flow' step 2 (b): model output is not valid JSON")


def test_stored_references_need_a_store() -> None:
    chain = Chain.parse({"name": "flow", "steps": [{"prompt": "qa", "output": "a"}]})
    with pytest.raises(InvalidInputError, match="there is no store"):
        resolve_steps(chain, None)


def test_read_variables(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    path.write_text('{"a": [1, 2], "b": "file"}')
    assert read_variables(["b=flag", "c=x=y"], path) == {"a": [1, 2], "b": "flag", "c": "x=y"}
    with pytest.raises(InvalidInputError, match="is not KEY=VALUE"):
        read_variables(["novalue"])
    path.write_text("[1]")
    with pytest.raises(InvalidInputError, match="expected a JSON object"):
        read_variables([], path)
    path.write_text("{")
    with pytest.raises(InvalidInputError, match=r"vars\.json:1: not valid JSON"):
        read_variables([], path)
