"""OpenAI chat fine-tuning format: each rule is reported with its line, a valid file passes, and the
raising variant names the first problem in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from honed.errors import InvalidInputError
from honed.finetune.chat_format import (
    check_chat_examples,
    check_chat_jsonl,
    count_example_tokens,
    require_chat_examples,
)


def good(n: int = 0) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": f"What is {n} + 1?"},
            {"role": "assistant", "content": str(n + 1)},
        ]
    }


def ten() -> list[Any]:
    return [good(n) for n in range(10)]


def test_valid_examples_pass() -> None:
    tool_use = {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "assistant", "content": "Sunny.", "weight": 1},
        ],
        "tools": [{"type": "function", "function": {"name": "weather"}}],
    }
    assert check_chat_examples([*ten(), tool_use]) == []
    require_chat_examples(ten())


BROKEN = [
    ("not an object", "data_type"),
    ({"messages": [], "note": 1}, "unrecognized_key"),
    ({"prompt": "x", "completion": "y"}, "missing_messages_list"),
    ({"messages": [{"content": "hi"}, {"role": "assistant", "content": "a"}]}, "message_missing_key"),
    ({"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}, "message_missing_key"),
    (
        {"messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "a"}]},
        "unrecognized_role",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "hi", "mood": "ok"},
                {"role": "assistant", "content": "a"},
            ]
        },
        "message_unrecognized_key",
    ),
    (
        {"messages": [{"role": "user", "content": ["hi"]}, {"role": "assistant", "content": "a"}]},
        "missing_content",
    ),
    (
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": " "}]},
        "missing_content",
    ),
    (
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]},
        "example_missing_assistant_message",
    ),
    (
        {"messages": [{"role": "user", "content": "hi", "weight": 1}, {"role": "assistant", "content": "a"}]},
        "invalid_weight",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "a", "weight": 0.5},
            ]
        },
        "invalid_weight",
    ),
    (
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a", "weight": 0}]},
        "no_trained_message",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "tool", "content": "r"},
                {"role": "assistant", "content": "a"},
            ]
        },
        "message_missing_key",
    ),
]


@pytest.mark.parametrize(("example", "rule"), BROKEN)
def test_each_rule_is_reported_with_its_line(example: Any, rule: str) -> None:
    examples = ten()
    examples.insert(3, example)
    problems = check_chat_examples(examples)
    assert problems and {p.line for p in problems} == {4}
    assert rule in {p.rule for p in problems}
    with pytest.raises(InvalidInputError, match=r"^not valid OpenAI chat fine-tuning data: line 4: "):
        require_chat_examples(examples)


def test_token_limit_and_minimum_examples() -> None:
    long = good()
    long["messages"][1]["content"] = "word " * 300
    tokens = count_example_tokens(long)
    assert 300 <= tokens <= 330  # "word" and " word" are one o200k token each, plus framing
    problems = check_chat_examples([long, good()], max_tokens=200)
    assert [(p.line, p.rule) for p in problems] == [(1, "too_many_tokens"), (None, "too_few_examples")]
    assert str(problems[0]) == f"line 1: {tokens} tokens, over the 200-token limit [too_many_tokens]"
    assert check_chat_examples([good()], min_examples=1) == []


def test_raising_variant_is_one_line_listing_every_problem() -> None:
    examples = ten()
    examples[1] = {"messages": [{"role": "user", "content": "hi"}]}
    examples[7] = {"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "a"}]}
    with pytest.raises(InvalidInputError) as info:
        require_chat_examples(examples)
    line = info.value.one_line()
    assert "line 2: no assistant message to learn from [example_missing_assistant_message]" in line
    assert "; also line 8: " in line and "[unrecognized_role]" in line and "\n" not in line


def test_jsonl_file_check_reports_bad_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    lines = [json.dumps(e) for e in ten()]
    lines[5] = "{not json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = check_chat_jsonl(path)
    assert [(p.line, p.rule) for p in problems] == [(6, "invalid_json")]
