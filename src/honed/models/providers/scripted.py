"""A deterministic fake model shipped in the package, for tests and examples.

`scripted/NAME` replies from a script registered under NAME (a list of replies used in turn, or a function
of the request), from the endpoint option `replies = [...]` in honed.toml, or, for the built-in name
`echo`, with the last user message. A reply may be an exception instance, which is raised instead, so
tests can script failures (a 429 with Retry-After, a 500) and watch the client retry.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from honed.errors import UnknownModelError
from honed.models.provider import Provider
from honed.models.tokens import count_text
from honed.models.types import ChatRequest, ProviderResult, Usage

if TYPE_CHECKING:
    from honed.config import EndpointConfig, Settings
    from honed.models.registry import Registry


@dataclass(frozen=True)
class Paced:
    """A reply written a word at a time, `delay_s` apart: a slow model, for tests of streaming."""

    text: str
    delay_s: float


Reply = str | BaseException | ProviderResult | Paced
Script = Sequence[Reply] | Callable[[ChatRequest], Reply]

_scripts: dict[str, Script] = {}
_positions: dict[str, int] = {}
_lock = threading.Lock()

OPTIONS = ("replies", "delay_s")
_COUNT_INLINE_CHARS = 32_768


def register(registry: Registry) -> None:
    registry.add_provider(
        "scripted",
        ScriptedProvider.from_config,
        default_endpoints={"scripted": {}},
        description="a deterministic fake model (replies from a list or a function), for tests and examples",
    )


def set_script(name: str, script: Script) -> None:
    """Make `scripted/NAME` answer from `script` (replacing any earlier one, restarting its list)."""
    with _lock:
        _scripts[name] = script
        _positions[name] = 0


def clear_script(name: str) -> None:
    with _lock:
        _scripts.pop(name, None)
        _positions.pop(name, None)


def _next(name: str, script: Script, request: ChatRequest) -> Reply:
    if callable(script):
        return script(request)
    with _lock:
        i = _positions.get(name, 0)
        _positions[name] = i + 1
    if not script:
        raise UnknownModelError(f"scripted model {name!r} has an empty script")
    return script[i % len(script)]


class ScriptedProvider(Provider):
    default_max_concurrency = 64
    supports_tools = True  # a reply may be a ProviderResult carrying tool calls

    def __init__(self, endpoint: str, *, replies: Sequence[str] | None = None, delay_s: float = 0.0) -> None:
        self.endpoint = endpoint
        self.replies = list(replies) if replies is not None else None
        self.delay_s = delay_s

    @classmethod
    def from_config(cls, name: str, endpoint: EndpointConfig, settings: Settings) -> ScriptedProvider:
        from honed.models.client import check_endpoint_options

        check_endpoint_options(name, endpoint, OPTIONS)
        opts = endpoint.options
        replies = opts.get("replies")
        return cls(
            name,
            replies=[str(r) for r in replies] if replies is not None else None,
            delay_s=float(opts.get("delay_s", 0.0)),
        )

    async def complete(self, model: str, request: ChatRequest) -> ProviderResult:
        reply = await self._reply(model, request)
        if isinstance(reply, Paced):
            await asyncio.sleep(reply.delay_s * len(reply.text.split(" ")))
        return await self._result(model, request, reply)

    async def stream(self, model: str, request: ChatRequest) -> AsyncIterator[str | ProviderResult]:
        """A `Paced` reply word by word; any other reply whole."""
        reply = await self._reply(model, request)
        result = await self._result(model, request, reply)
        if isinstance(reply, Paced):
            words = result.text.split(" ")
            for i, word in enumerate(words):
                await asyncio.sleep(reply.delay_s)
                yield word if i == 0 else f" {word}"
        elif result.text:
            yield result.text
        yield result

    async def _reply(self, model: str, request: ChatRequest) -> Reply:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        key = f"{self.endpoint}/{model}"
        script = _scripts.get(model) or _scripts.get(key)
        if script is not None:
            return _next(model, script, request)
        if self.replies is not None:
            return _next(key, self.replies, request)
        if model == "echo":
            users = [m["content"] for m in request.messages if m["role"] == "user"]
            return users[-1] if users else ""
        raise UnknownModelError(
            f"scripted model {model!r} has no script",
            hint="register one with honed.testing.scripted(...) or set replies under "
            f"[endpoints.{self.endpoint}] in honed.toml; `scripted/echo` echoes the last user message",
        )

    async def _result(self, model: str, request: ChatRequest, reply: Reply) -> ProviderResult:
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, ProviderResult):
            return reply
        text = reply.text if isinstance(reply, Paced) else reply
        finish = "stop"
        if request.params.max_tokens is not None:
            words = text.split(" ")
            if len(words) > request.params.max_tokens:
                text, finish = " ".join(words[: request.params.max_tokens]), "length"
        for stop in request.params.stop:
            if stop in text:
                text, finish = text[: text.index(stop)], "stop"
        prompt = "\n".join(m["content"] for m in request.messages)
        # Counting megabytes takes seconds: in a thread then, so the event loop (a server's) keeps serving.
        if len(prompt) + len(text) > _COUNT_INLINE_CHARS:
            usage = await asyncio.to_thread(_usage, prompt, text)
        else:
            usage = _usage(prompt, text)
        return ProviderResult(text=text, usage=usage, finish_reason=finish, model=model)

    async def list_models(self) -> list[str]:
        return sorted({"echo", *_scripts})


def _usage(prompt: str, text: str) -> Usage:
    return Usage(count_text("gpt-4o", prompt), count_text("gpt-4o", text))
