"""What a span says, in the attribute conventions instrumented apps use.

- OpenTelemetry GenAI (`gen_ai.*`): the current `gen_ai.input.messages` / `gen_ai.output.messages` /
  `gen_ai.system_instructions` span attributes (messages of typed parts: text, tool_call,
  tool_call_response), the older `gen_ai.prompt.N.*` / `gen_ai.completion.N.*` attributes (OpenLLMetry) and
  the older span events (`gen_ai.user.message`, `gen_ai.choice`, ...); the model, usage (current and older
  names), finish reasons, request parameters, tool definitions.
- OpenInference (Phoenix, Arize): `openinference.span.kind`, `llm.input_messages.N.message.*`,
  `llm.output_messages.*`, `llm.token_count.*`, `llm.invocation_parameters`, `llm.tools.N.tool.json_schema`,
  `input.value` / `output.value`.
- Langfuse's SDK: `langfuse.observation.type|input|output|model.name|model.parameters|usage_details|
  metadata.*`, `langfuse.session.id`, `langfuse.user.id`, `langfuse.trace.*`.

`read_span` returns the span's kind (generation, tool, retrieval, agent, embedding, chain or span), and for
a generation the fields of its log. The attributes it did not read are returned too, so the caller keeps
them as metadata: nothing is dropped without a trace.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from honed.logs.otlp.decode import OtlpSpan

__all__ = ["Generation", "Reading", "read_span"]

GENERATION_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
KINDS = {
    # gen_ai.operation.name
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "embeddings": "embedding",
    # openinference.span.kind and langfuse.observation.type (lowercased)
    "llm": "generation",
    "generation": "generation",
    "tool": "tool",
    "retriever": "retrieval",
    "agent": "agent",
    "embedding": "embedding",
    "chain": "chain",
    "reranker": "retrieval",
    "guardrail": "span",
    "evaluator": "span",
    "event": "span",
    "span": "span",
}
#: Attributes that name the session and the end user, in each convention.
SESSION_KEYS = ("gen_ai.conversation.id", "session.id", "langfuse.session.id")
USER_KEYS = ("user.id", "enduser.id", "langfuse.user.id")
PARAMS = {
    "gen_ai.request.temperature": "temperature",
    "gen_ai.request.top_p": "top_p",
    "gen_ai.request.max_tokens": "max_tokens",
    "gen_ai.request.seed": "seed",
    "gen_ai.request.stop_sequences": "stop",
    "gen_ai.request.frequency_penalty": "frequency_penalty",
    "gen_ai.request.presence_penalty": "presence_penalty",
}


@dataclass
class Generation:
    """The fields of a generation's log that the span gave."""

    model: str
    #: the model the request named, when the reply names another (e.g. a dated snapshot)
    requested: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    output: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tools: list[Any] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None


@dataclass
class Reading:
    kind: str
    generation: Generation | None
    session_id: str | None
    user_id: str | None
    #: metadata the convention defines for the span (Langfuse's `metadata.*`, the trace name)
    metadata: dict[str, Any]
    #: the attributes no convention read: kept as they came
    rest: dict[str, Any]


class _Attrs:
    """A span's attributes, remembering which were read."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.read: set[str] = set()

    def get(self, *keys: str) -> Any:
        for key in keys:
            if key in self.values:
                self.read.add(key)
                value = self.values[key]
                if value not in (None, ""):
                    return value
        return None

    def prefixed(self, prefix: str) -> dict[str, Any]:
        """Attributes under `prefix` (read), by the rest of their key."""
        out = {}
        for key, value in self.values.items():
            if key.startswith(prefix):
                self.read.add(key)
                out[key[len(prefix) :]] = value
        return out

    def rest(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k not in self.read}


def read_span(span: OtlpSpan) -> Reading:
    attrs = _Attrs(span.attributes)
    kind = _kind(attrs)
    generation = _generation(attrs, span) if kind == "generation" else None
    metadata = {
        k.replace(".", "_"): _json_or_text(v)
        for k, v in attrs.prefixed("langfuse.observation.metadata.").items()
    }
    for key in ("langfuse.trace.name", "langfuse.observation.level", "langfuse.observation.status_message"):
        value = attrs.get(key)
        if value is not None:
            metadata[key.removeprefix("langfuse.").replace(".", "_")] = value
    if kind != "generation":
        # What went in and out of a tool call, a retrieval or an agent step, in whichever convention.
        for name, keys in (
            ("input", ("langfuse.observation.input", "input.value", "gen_ai.tool.call.arguments")),
            ("output", ("langfuse.observation.output", "output.value", "gen_ai.tool.call.result")),
        ):
            value = attrs.get(*keys)
            if value is not None:
                metadata[name] = _json_or_text(value)
        tool = attrs.get("gen_ai.tool.name", "tool.name")
        if tool is not None:
            metadata["tool"] = tool
    session = attrs.get(*SESSION_KEYS)
    user = attrs.get(*USER_KEYS)
    return Reading(
        kind=kind,
        generation=generation,
        session_id=None if session is None else str(session),
        user_id=None if user is None else str(user),
        metadata=metadata,
        rest=attrs.rest(),
    )


def _kind(attrs: _Attrs) -> str:
    for key in ("langfuse.observation.type", "openinference.span.kind", "gen_ai.operation.name"):
        value = attrs.get(key)
        if isinstance(value, str):
            lowered = value.lower()
            if lowered in GENERATION_OPERATIONS:
                return "generation"
            if lowered in KINDS:
                return KINDS[lowered]
    # Older instrumentations set no operation: a model and prompts make a generation.
    if any(k.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for k in attrs.values) or (
        "gen_ai.request.model" in attrs.values or "gen_ai.response.model" in attrs.values
    ):
        return "generation"
    return "span"


# -- a generation -----------------------------------------------------------------------------------------


def _generation(attrs: _Attrs, span: OtlpSpan) -> Generation:
    model = attrs.get(
        "gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "langfuse.observation.model.name"
    )
    requested = attrs.get("gen_ai.request.model")
    provider = attrs.get("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")

    def ref(model: Any) -> str:
        name = str(model)
        if provider and "/" not in name:
            # honed's model references are ENDPOINT/MODEL: priced as the endpoint's models are.
            name = f"{str(provider).split('.')[0].lower()}/{name}"
        return name

    name = ref(model) if model is not None else span.name or "unknown"
    gen = Generation(model=name, requested=ref(requested) if requested and requested != model else None)
    _gen_ai(attrs, span, gen)
    if not gen.messages and gen.output is None:
        _openinference(attrs, gen)
    if not gen.messages and gen.output is None:
        _langfuse(attrs, gen)
    gen.input_tokens = _first_int(
        gen.input_tokens,
        attrs.get("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
    )
    gen.output_tokens = _first_int(
        gen.output_tokens,
        attrs.get(
            "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"
        ),
    )
    attrs.get("llm.token_count.total", "gen_ai.usage.total_tokens")  # derived: read, not kept twice
    for key, param in PARAMS.items():
        value = attrs.get(key)
        if value is not None:
            gen.params[param] = value
    invocation = _json_or_text(
        attrs.get("llm.invocation_parameters", "langfuse.observation.model.parameters")
    )
    if isinstance(invocation, dict):
        gen.params.update({k: v for k, v in invocation.items() if k not in ("model", "messages")})
        asked = invocation.get("model")
        if gen.requested is None and asked and asked != model:
            gen.requested = ref(asked)
    reasons = attrs.get("gen_ai.response.finish_reasons", "llm.finish_reason")
    if gen.finish_reason is None and reasons is not None:
        gen.finish_reason = str(reasons[0] if isinstance(reasons, list) and reasons else reasons)
    tools = _json_or_text(attrs.get("gen_ai.tool.definitions"))
    if isinstance(tools, list):
        gen.tools = tools
    for schema in _indexed(attrs.prefixed("llm.tools."), "tool.json_schema").values():
        gen.tools.append(_json_or_text(schema))
    return gen


def _gen_ai(attrs: _Attrs, span: OtlpSpan, gen: Generation) -> None:
    instructions = _json_or_text(attrs.get("gen_ai.system_instructions"))
    if instructions:
        gen.messages.append({"role": "system", "content": _parts_text(instructions)})
    inputs = _json_or_text(attrs.get("gen_ai.input.messages"))
    if isinstance(inputs, list):
        gen.messages += [m for item in inputs for m in _part_messages(item)]
    outputs = _json_or_text(attrs.get("gen_ai.output.messages"))
    if isinstance(outputs, list) and outputs:
        _output_from(gen, _part_messages(outputs[0]), outputs[0])
    if not gen.messages:
        gen.messages = _numbered(attrs.prefixed("gen_ai.prompt."))
    if gen.output is None:
        completions = _numbered(attrs.prefixed("gen_ai.completion."))
        if completions:
            _output_from(gen, completions[:1], completions[0])
    if not gen.messages and gen.output is None:
        _events(span, gen)


def _output_from(gen: Generation, messages: list[dict[str, Any]], raw: Any) -> None:
    first = messages[0] if messages else {}
    gen.output = str(first.get("content") or "")
    gen.tool_calls = list(first.get("tool_calls") or [])
    if isinstance(raw, dict) and raw.get("finish_reason"):
        gen.finish_reason = str(raw["finish_reason"])


def _part_messages(item: Any) -> list[dict[str, Any]]:
    """honed's messages for one GenAI message of typed parts: text joined, tool calls beside it, and a
    tool result as a `tool` message."""
    if not isinstance(item, dict):
        return [{"role": "user", "content": str(item)}]
    role = str(item.get("role") or "user")
    parts = item.get("parts")
    if parts is None:  # the older shape: {"role", "content", "tool_calls"}
        return [_plain_message(item)]
    text, calls, results = [], [], []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            text.append(str(part.get("content") or ""))
        elif kind == "tool_call":
            calls.append(_tool_call(part.get("id"), part.get("name"), part.get("arguments")))
        elif kind == "tool_call_response":
            results.append(
                {"role": "tool", "tool_call_id": part.get("id"), "content": _text(part.get("response"))}
            )
        else:
            text.append(_text(part.get("content", part)))
    if results and not text and not calls:
        return results
    message: dict[str, Any] = {"role": role, "content": "".join(text)}
    if calls:
        message["tool_calls"] = calls
    return [message, *results]


def _plain_message(item: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": str(item.get("role") or "user"), "content": _text(item.get("content"))}
    calls = item.get("tool_calls")
    if isinstance(calls, list) and calls:
        message["tool_calls"] = [
            _tool_call(
                c.get("id"), (c.get("function") or c).get("name"), (c.get("function") or c).get("arguments")
            )
            for c in calls
            if isinstance(c, dict)
        ]
    if item.get("tool_call_id") is not None:
        message["tool_call_id"] = item["tool_call_id"]
    return message


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return {"id": None if call_id is None else str(call_id), "name": str(name or ""), "arguments": args or ""}


def _numbered(flat: dict[str, Any]) -> list[dict[str, Any]]:
    """`{"0.role": ..., "0.content": ..., "0.tool_calls.0.name": ...}` as messages in index order."""
    out = []
    for _, fields in sorted(_indexed(flat).items()):
        message: dict[str, Any] = {
            "role": str(fields.get("role") or "user"),
            "content": _text(fields.get("content")),
        }
        calls = _indexed(
            {k.removeprefix("tool_calls."): v for k, v in fields.items() if k.startswith("tool_calls.")}
        )
        if calls:
            message["tool_calls"] = [
                _tool_call(c.get("id"), c.get("name"), c.get("arguments")) for _, c in sorted(calls.items())
            ]
        if fields.get("finish_reason"):
            message["finish_reason"] = fields["finish_reason"]
        out.append(message)
    return out


_INDEX = re.compile(r"^(\d+)\.(.+)$")


def _indexed(flat: dict[str, Any], suffix: str | None = None) -> dict[int, Any]:
    """Group `N.rest` keys by N: `{N: {rest: value}}`, or `{N: value}` of the key `N.suffix`."""
    out: dict[int, Any] = {}
    for key, value in flat.items():
        m = _INDEX.match(key)
        if m is None:
            continue
        index, rest = int(m.group(1)), m.group(2)
        if suffix is not None:
            if rest == suffix:
                out[index] = value
        else:
            out.setdefault(index, {})[rest] = value
    return out


def _events(span: OtlpSpan, gen: Generation) -> None:
    """The older GenAI span events: one per message, `gen_ai.choice` for the output."""
    for event in span.events:
        if not event.name.startswith("gen_ai."):
            continue
        body = dict(event.attributes)
        content = _json_or_text(body.pop("gen_ai.event.content", None))
        if isinstance(content, dict):
            body = {**body, **content}
        if event.name == "gen_ai.choice":
            message = body.get("message")
            message = _json_or_text(message) if message is not None else body
            if isinstance(message, dict):
                _output_from(gen, [_plain_message({"role": "assistant", **message})], body)
        elif event.name.endswith(".message"):
            role = event.name.removeprefix("gen_ai.").removesuffix(".message")
            gen.messages.append(_plain_message({"role": body.get("role") or role, **body}))


def _openinference(attrs: _Attrs, gen: Generation) -> None:
    gen.messages = [
        _oi_message(f) for _, f in sorted(_indexed(attrs.prefixed("llm.input_messages.")).items())
    ]
    outputs = [_oi_message(f) for _, f in sorted(_indexed(attrs.prefixed("llm.output_messages.")).items())]
    if outputs:
        _output_from(gen, outputs[:1], None)
    value_in, value_out = attrs.get("input.value"), attrs.get("output.value")
    attrs.get("input.mime_type", "output.mime_type")
    if not gen.messages and value_in is not None:
        found = _json_or_text(value_in)
        listed = found.get("messages") if isinstance(found, dict) else None
        gen.messages = (
            [_plain_message(m) for m in listed if isinstance(m, dict)]
            if isinstance(listed, list)
            else [{"role": "user", "content": _text(found)}]
        )
    if gen.output is None and value_out is not None:
        found = _json_or_text(value_out)
        choices = found.get("choices") if isinstance(found, dict) else None
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            _output_from(gen, [_plain_message(choices[0].get("message") or {})], choices[0])
        else:
            gen.output = _text(found)


def _oi_message(fields: dict[str, Any]) -> dict[str, Any]:
    """One `llm.input_messages.N.*` group (keys without the index) as a message."""
    role = str(fields.get("message.role") or "user")
    content = fields.get("message.content")
    if content is None:  # multimodal: message.contents.N.message_content.text
        parts = _indexed(
            {
                k.removeprefix("message.contents."): v
                for k, v in fields.items()
                if k.startswith("message.contents.")
            }
        )
        content = "".join(str(p.get("message_content.text") or "") for _, p in sorted(parts.items()))
    message: dict[str, Any] = {"role": role, "content": _text(content)}
    calls = _indexed(
        {
            k.removeprefix("message.tool_calls."): v
            for k, v in fields.items()
            if k.startswith("message.tool_calls.")
        }
    )
    if calls:
        message["tool_calls"] = [
            _tool_call(
                c.get("tool_call.id"), c.get("tool_call.function.name"), c.get("tool_call.function.arguments")
            )
            for _, c in sorted(calls.items())
        ]
    if fields.get("message.tool_call_id") is not None:
        message["tool_call_id"] = fields["message.tool_call_id"]
    return message


def _langfuse(attrs: _Attrs, gen: Generation) -> None:
    value_in = _json_or_text(attrs.get("langfuse.observation.input"))
    value_out = _json_or_text(attrs.get("langfuse.observation.output"))
    if isinstance(value_in, list):
        gen.messages = [
            _plain_message(m) if isinstance(m, dict) else {"role": "user", "content": _text(m)}
            for m in value_in
        ]
    elif isinstance(value_in, dict) and isinstance(value_in.get("messages"), list):
        gen.messages = [_plain_message(m) for m in value_in["messages"] if isinstance(m, dict)]
    elif value_in is not None:
        gen.messages = [{"role": "user", "content": _text(value_in)}]
    if isinstance(value_out, dict) and ("content" in value_out or "tool_calls" in value_out):
        _output_from(gen, [_plain_message({"role": "assistant", **value_out})], None)
    elif value_out is not None:
        gen.output = _text(value_out)
    usage = _json_or_text(attrs.get("langfuse.observation.usage_details"))
    if isinstance(usage, dict):
        gen.input_tokens = _first_int(
            usage.get("input"), usage.get("prompt_tokens"), usage.get("input_tokens")
        )
        gen.output_tokens = _first_int(
            usage.get("output"), usage.get("completion_tokens"), usage.get("output_tokens")
        )
    attrs.get("langfuse.observation.cost_details")  # honed prices the tokens itself


# -- values -----------------------------------------------------------------------------------------------


def _json_or_text(value: Any) -> Any:
    """A JSON document sent as a string attribute, parsed; anything else as it is."""
    if isinstance(value, str) and value[:1] in ("{", "[", '"'):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # parts or content blocks
        return _parts_text(value)
    return json.dumps(value, ensure_ascii=False)


def _parts_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            str(p.get("content", p.get("text", ""))) if isinstance(p, dict) else str(p) for p in value
        )
    return _text(value)


def _first_int(*values: Any) -> int | None:
    for value in values:
        if value is None or isinstance(value, bool):
            continue
        try:
            return max(0, int(value))
        except (TypeError, ValueError):
            continue
    return None
