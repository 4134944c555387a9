"""The call contract every provider speaks: a `ChatRequest` in, a `Completion` out.

These are small frozen value types; `request_key()` is the content hash the response cache uses. The sample
index is part of that key so that N repeated samples are N independent calls, never one cached answer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

from honed.errors import InvalidInputError
from honed.hashing import content_hash

Role = Literal["system", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})


class Message(TypedDict):
    role: Role
    content: str
    #: on an assistant message: the tool calls it made, as `Completion.tool_calls` gives them
    tool_calls: NotRequired[list[dict[str, Any]]]
    #: on a tool message: the id of the call it answers
    tool_call_id: NotRequired[str]


@dataclass(frozen=True, slots=True)
class Params:
    """Decoding parameters every provider understands. `None` means "the provider's default"."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Params:
        """Build from a mapping; unknown keys are an error that names them."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(
                f"unknown model parameter(s): {', '.join(unknown)}",
                hint=f"use only {', '.join(sorted(known))}",
            )
        stop = data.pop("stop", ())
        if isinstance(stop, str):
            stop = (stop,)
        params = cls(stop=tuple(stop), **data)
        params.validate()
        return params

    def validate(self) -> None:
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise InvalidInputError(f"temperature {self.temperature} is out of range", hint="use 0..2")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise InvalidInputError(f"top_p {self.top_p} is out of range", hint="use a value in (0, 1]")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InvalidInputError(f"max_tokens {self.max_tokens} must be positive", hint="use 1 or more")

    def to_dict(self) -> dict[str, Any]:
        """Only the parameters that were set, JSON-ready."""
        out: dict[str, Any] = {}
        for name in _PARAM_NAMES:  # not dataclasses.fields(): this runs for every call, twice
            value = getattr(self, name)
            if value is None or value == ():
                continue
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


_PARAM_NAMES = tuple(f.name for f in dataclasses.fields(Params))


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat call. `model` is a reference such as `openai/gpt-4o-mini` or `local/smollm2-135m-instruct`.

    `response_schema`, when given, asks for JSON conforming to it; the completion's `parsed` holds it.
    `sample_index` distinguishes repeated samples of the same request (see module docstring).
    """

    model: str
    messages: tuple[Message, ...]
    params: Params = field(default_factory=Params)
    response_schema: dict[str, Any] | None = None
    sample_index: int = 0
    tools: tuple[dict[str, Any], ...] | None = None

    @classmethod
    def of(
        cls,
        model: str,
        messages: list[Message] | tuple[Message, ...] | str,
        params: Params | dict[str, Any] | None = None,
        *,
        response_schema: dict[str, Any] | None = None,
        sample_index: int = 0,
        tools: list[dict[str, Any]] | tuple[dict[str, Any], ...] | None = None,
    ) -> ChatRequest:
        """Convenience constructor: a bare string becomes one user message."""
        if isinstance(messages, str):
            messages = ({"role": "user", "content": messages},)
        msgs = tuple(messages)
        for i, m in enumerate(msgs):
            if m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise InvalidInputError(
                    f"message {i} is malformed: {m!r}",
                    hint="each message needs a role (system/user/assistant/tool) and string content",
                )
            calls = m.get("tool_calls")
            if ("tool_call_id" in m and not isinstance(m["tool_call_id"], str)) or (
                calls is not None
                and not (
                    isinstance(calls, list)
                    and all(isinstance(c, dict) and {"id", "name", "arguments"} <= set(c) for c in calls)
                )
            ):
                raise InvalidInputError(
                    f"message {i} has malformed tool fields: {m!r}",
                    hint='tool_calls is a list of {"id", "name", "arguments"}; tool_call_id is a string',
                )
        if not msgs:
            raise InvalidInputError("a chat request needs at least one message")
        p = params if isinstance(params, Params) else Params.from_dict(params)
        return cls(model, msgs, p, response_schema, sample_index, tuple(tools) if tools else None)

    def key(self) -> str:
        """The content hash that identifies this request in the response cache."""
        return content_hash(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON (what the cache key hashes); `tools` appears only when given."""
        out: dict[str, Any] = {
            "model": self.model,
            "messages": list(self.messages),
            "params": self.params.to_dict(),
            "response_schema": self.response_schema,
            "sample_index": self.sample_index,
        }
        if self.tools:
            out["tools"] = list(self.tools)
        return out


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """What a provider returns for one request, before honed adds cost, latency and cache status."""

    text: str
    usage: Usage
    finish_reason: str | None = None
    model: str | None = None  # the model the endpoint says it ran, when it says
    #: tool calls the model asked for: [{"id", "name", "arguments"}] (arguments: the JSON text it wrote)
    tool_calls: tuple[dict[str, Any], ...] | None = None
    #: seconds of the call the request spent waiting inside the provider rather than being computed (a
    #: batching engine's queue, and a finished row waiting for the rest of its batch); None: not known.
    #: A timing, not part of what the result is: results compare equal without it.
    queue_s: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished call: the text, parsed JSON when a schema was asked for, and what it cost.

    `latency_s` is the time in the model: the call's own service time, without the time it waited for
    the endpoint's concurrency slot or for a batch (that is `queue_s`), so it does not grow with the
    number of calls waiting. A cached completion keeps both figures of the call that produced it.
    """

    text: str
    usage: Usage
    latency_s: float
    cost_usd: float | None
    model: str
    finish_reason: str | None = None
    parsed: Any = None
    cached: bool = False
    request_key: str = ""
    tool_calls: tuple[dict[str, Any], ...] | None = None
    #: the id this call was logged under (`Honed.feedback(log_id, ...)`); None when it was not logged
    log_id: str | None = None
    #: seconds the call waited before and around its time in the model: for the endpoint's concurrency
    #: slot, for a batch (the local model), and for retries (their backoff and failed attempts); None when
    #: not known (a cache entry from an older honed)
    queue_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "latency_s": self.latency_s,
            "queue_s": self.queue_s,
            "cost_usd": self.cost_usd,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "parsed": self.parsed,
            "cached": self.cached,
            "request_key": self.request_key,
            "tool_calls": list(self.tool_calls) if self.tool_calls else None,
            "log_id": self.log_id,
        }
