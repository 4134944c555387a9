"""The rules of OpenAI's chat fine-tuning format, checked before a file is written or uploaded.

The checks follow OpenAI's documented format and the cookbook's data-preparation notebook
(`Chat_finetuning_data_prep`): every line is a JSON object with a `messages` list; each message has a
known `role` (system, user, assistant, tool, or the legacy function) and string `content` (an assistant
message that calls a tool or function may leave it out); no unknown keys; at least one assistant message
to learn from; `weight` only on assistant messages and only 0 or 1; an example within the model's token
limit; and at least 10 examples, OpenAI's minimum for a job. Each problem names its 1-based line and the
rule it breaks, so one run lists everything to fix instead of failing on the first upload attempt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from honed.errors import InvalidInputError

MIN_EXAMPLES = 10
#: The per-example limit of OpenAI's current fine-tunable models (gpt-4o-mini, gpt-4.1 family).
MAX_TOKENS = 65536
ROLES = ("system", "user", "assistant", "tool", "function")
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id"})
EXAMPLE_KEYS = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})
#: A model tiktoken maps to o200k_base, the encoding of the fine-tunable models.
_TOKEN_MODEL = "gpt-4o"

# The cookbook's accounting: 3 tokens of framing per message, 1 more for a name, 3 to prime the reply.
_PER_MESSAGE = 3
_PER_NAME = 1
_PER_REPLY = 3


@dataclass(frozen=True, slots=True)
class FormatProblem:
    """One broken rule: `line` is 1-based (None for a rule about the whole file)."""

    line: int | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.message} [{self.rule}]"

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "rule": self.rule, "message": self.message}


def count_example_tokens(example: Mapping[str, Any]) -> int:
    """Tokens of one example's messages under o200k_base, counted the way the cookbook counts them."""
    # Through honed's token module: it installs the shipped BPE files so tiktoken works offline.
    from honed.models.tokens import count_text

    total = _PER_REPLY
    for message in example.get("messages") or []:
        if not isinstance(message, Mapping):
            continue
        total += _PER_MESSAGE
        for key, value in message.items():
            if key == "weight":
                continue
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            total += count_text(_TOKEN_MODEL, text)
            if key == "name":
                total += _PER_NAME
    return total


def check_chat_examples(
    examples: Sequence[Any], *, max_tokens: int = MAX_TOKENS, min_examples: int = MIN_EXAMPLES
) -> list[FormatProblem]:
    """Every problem with `examples` (parsed JSON lines) as OpenAI's fine-tuning format; [] when valid."""
    problems: list[FormatProblem] = []
    for line, example in enumerate(examples, 1):
        problems.extend(_check_example(line, example, max_tokens))
    if len(examples) < min_examples:
        problems.append(
            FormatProblem(
                None,
                "too_few_examples",
                f"{len(examples)} example(s); OpenAI needs at least {min_examples} to fine-tune",
            )
        )
    return problems


def require_chat_examples(
    examples: Sequence[Any], *, max_tokens: int = MAX_TOKENS, min_examples: int = MIN_EXAMPLES
) -> None:
    """Raise InvalidInputError naming the problems (line and rule, the first five) when `examples` break
    a rule."""
    problems = check_chat_examples(examples, max_tokens=max_tokens, min_examples=min_examples)
    if problems:
        rest = [str(p) for p in problems[1:6]] + ([f"{len(problems) - 6} more"] if len(problems) > 6 else [])
        more = f"; also {'; '.join(rest)}" if rest else ""
        raise InvalidInputError(
            f"not valid OpenAI chat fine-tuning data: {problems[0]}{more}",
            hint=_HINTS.get(problems[0].rule, "see OpenAI's fine-tuning data format"),
        )


def check_chat_jsonl(
    path: Path, *, max_tokens: int = MAX_TOKENS, min_examples: int = MIN_EXAMPLES
) -> list[FormatProblem]:
    """`check_chat_examples` for a JSONL file; a line that is not JSON is a problem of its own."""
    examples: list[Any] = []
    problems: list[FormatProblem] = []
    with path.open(encoding="utf-8") as handle:
        for line, text in enumerate(handle, 1):
            try:
                examples.append(json.loads(text))
            except json.JSONDecodeError as exc:
                problems.append(FormatProblem(line, "invalid_json", f"not JSON ({exc.msg})"))
                examples.append(None)
    found = check_chat_examples(examples, max_tokens=max_tokens, min_examples=min_examples)
    bad_json = {p.line for p in problems}
    problems.extend(p for p in found if p.line not in bad_json)
    return sorted(problems, key=lambda p: (p.line or 0, p.rule))


def _check_example(line: int, example: Any, max_tokens: int) -> list[FormatProblem]:
    def problem(rule: str, message: str) -> FormatProblem:
        return FormatProblem(line, rule, message)

    if not isinstance(example, Mapping):
        return [problem("data_type", f"an example must be a JSON object, not {_type(example)}")]
    out: list[FormatProblem] = []
    unknown = sorted(set(example) - EXAMPLE_KEYS)
    if unknown:
        out.append(problem("unrecognized_key", f"unknown key(s) {', '.join(map(repr, unknown))}"))
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        out.append(problem("missing_messages_list", "no `messages` list (or it is empty)"))
        return out
    for n, message in enumerate(messages, 1):
        out.extend(problem(rule, f"message {n}: {text}") for rule, text in _check_message(message))
    if not any(isinstance(m, Mapping) and m.get("role") == "assistant" for m in messages):
        out.append(problem("example_missing_assistant_message", "no assistant message to learn from"))
    elif not any(
        isinstance(m, Mapping) and m.get("role") == "assistant" and m.get("weight", 1) == 1 for m in messages
    ):
        out.append(problem("no_trained_message", "every assistant message has weight 0: nothing to learn"))
    if not out:
        tokens = count_example_tokens(example)
        if tokens > max_tokens:
            out.append(problem("too_many_tokens", f"{tokens} tokens, over the {max_tokens}-token limit"))
    return out


def _check_message(message: Any) -> list[tuple[str, str]]:
    if not isinstance(message, Mapping):
        return [("data_type", f"a message must be a JSON object, not {_type(message)}")]
    out: list[tuple[str, str]] = []
    if "role" not in message:
        out.append(("message_missing_key", "no `role`"))
    role = message.get("role")
    if "role" in message and role not in ROLES:
        out.append(("unrecognized_role", f"role {role!r} (use {', '.join(ROLES[:4])})"))
    unknown = sorted(set(message) - MESSAGE_KEYS)
    if unknown:
        out.append(("message_unrecognized_key", f"unknown key(s) {', '.join(map(repr, unknown))}"))
    calls = message.get("tool_calls") is not None or message.get("function_call") is not None
    if calls and role != "assistant":
        out.append(("message_unrecognized_key", "only assistant messages carry tool_calls/function_call"))
    content = message.get("content")
    if content is None and not (calls and role == "assistant"):
        out.append(("message_missing_key", "no `content`"))
    elif content is not None and not isinstance(content, str):
        out.append(("missing_content", f"`content` must be a string, not {_type(content)}"))
    elif role == "assistant" and not calls and not str(content).strip():
        out.append(("missing_content", "assistant `content` is empty"))
    if "weight" in message:
        weight = message["weight"]
        if role != "assistant":
            out.append(("invalid_weight", "`weight` is only allowed on assistant messages"))
        elif isinstance(weight, bool) or weight not in (0, 1):
            out.append(("invalid_weight", f"`weight` must be 0 or 1, not {weight!r}"))
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        out.append(("message_missing_key", "a tool message needs `tool_call_id`"))
    return out


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


_HINTS = {
    "data_type": 'each line must be one JSON object like {"messages": [...]}',
    "unrecognized_key": "an example may only have messages, tools, functions and parallel_tool_calls",
    "missing_messages_list": "each example needs a non-empty `messages` list",
    "message_missing_key": "each message needs `role` and `content` (tool messages also `tool_call_id`)",
    "message_unrecognized_key": "messages may have role, content, name, weight, tool_calls, tool_call_id",
    "unrecognized_role": "roles are system, user, assistant and tool",
    "missing_content": "give every message its text as a string",
    "example_missing_assistant_message": "end each example with the assistant reply to train on",
    "no_trained_message": "give at least one assistant message weight 1 (or leave weight out)",
    "invalid_weight": "use weight 0 (skip) or 1 (train), on assistant messages only",
    "too_many_tokens": "shorten the example, or export with --mode input-output to drop the long prompt",
    "too_few_examples": "curate more logs into the dataset, or pass a lower minimum for local training",
    "invalid_json": "write one JSON object per line",
}
