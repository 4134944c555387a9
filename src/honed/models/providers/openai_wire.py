"""The OpenAI wire format and its failures, shared by both transports of the `openai` provider and by
OpenAI-compatible embeddings (honed.models.embeddings).

Request bodies, reading a chat.completion reply, Retry-After, and the translation of every way a call can
fail (an aiohttp or SDK exception, an HTTP status) into honed's exception tree, so `aiohttp` and `sdk`
endpoints, chat and embeddings, raise the same errors with the same `retryable` flags.
"""

from __future__ import annotations

import email.utils
import errno
import http
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from honed.errors import (
    EndpointUnreachableError,
    ModelError,
    ProviderError,
    RateLimitError,
    UnknownModelError,
)
from honed.models.types import ChatRequest, Message, ProviderResult, Usage

if TYPE_CHECKING:
    import openai


def wire_message(message: Message) -> dict[str, Any]:
    """A message in OpenAI's shape: honed's flat tool calls ({"id", "name", "arguments"}) become
    `{"id", "type": "function", "function": {...}}`, and an assistant turn that only calls tools has no
    content."""
    out: dict[str, Any] = dict(message)
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls
        ]
        if not message["content"]:
            out["content"] = None
    return out


def request_body(model: str, request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [wire_message(m) for m in request.messages]}
    p = request.params
    if p.temperature is not None:
        body["temperature"] = p.temperature
    if p.top_p is not None:
        body["top_p"] = p.top_p
    if p.max_tokens is not None:
        body["max_tokens"] = p.max_tokens
    if p.stop:
        body["stop"] = list(p.stop)
    if p.seed is not None:
        body["seed"] = p.seed
    if request.tools:
        body["tools"] = list(request.tools)
    if request.response_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": request.response_schema},
        }
    return body


def parse_chat_response(endpoint: str, data: Any) -> ProviderResult:
    """Read a chat.completion JSON object; a reply of the wrong shape is an error, not an empty answer."""
    try:
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        usage = data.get("usage") or {}
        calls = choice["message"].get("tool_calls") or None
        return ProviderResult(
            text=text,
            usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
            finish_reason=choice.get("finish_reason"),
            model=data.get("model"),
            tool_calls=tuple(
                {
                    "id": c.get("id"),
                    "name": c["function"]["name"],
                    "arguments": c["function"].get("arguments", ""),
                }
                for c in calls
            )
            if calls
            else None,
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        # Not retried, unlike a non-JSON reply: well-formed JSON of another shape is a server that speaks
        # another API (or billed a call and said something else), and asking again repeats that.
        raise ProviderError(
            f"endpoint {endpoint!r} returned a reply that is not a chat completion: {str(data)[:200]}",
            provider=endpoint,
        ) from exc


class ChunkAssembler:
    """Folds a stream of `chat.completion.chunk` objects (the first choice's) into the `chat.completion`
    they stand for: the content pieces joined, tool calls put together from their fragments by index,
    the finish reason, and the usage chunk that `stream_options.include_usage` asks for."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._model: str | None = None

    def add(self, chunk: Any) -> str:
        """Take one chunk; return the text it adds (may be empty). A chunk of another shape raises
        TypeError, KeyError or ValueError, as `parse_chat_response` would."""
        if not isinstance(chunk, dict):
            raise TypeError(f"a chunk is a JSON object, not {type(chunk).__name__}")
        self._model = chunk.get("model") or self._model
        if chunk.get("usage"):
            self._usage = dict(chunk["usage"])
        piece = ""
        for choice in chunk.get("choices") or ():
            if int(choice.get("index") or 0) != 0:
                continue
            delta = choice.get("delta") or {}
            piece += delta.get("content") or ""
            for call in delta.get("tool_calls") or ():
                slot = self._calls.setdefault(
                    int(call.get("index") or 0), {"id": None, "function": {"name": "", "arguments": ""}}
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            self._finish = choice.get("finish_reason") or self._finish
        self._text.append(piece)
        return piece

    def completion(self) -> dict[str, Any]:
        calls = [self._calls[i] for i in sorted(self._calls)]
        message = {"content": "".join(self._text), "tool_calls": calls or None}
        return {
            "model": self._model,
            "choices": [{"message": message, "finish_reason": self._finish}],
            "usage": self._usage or {},
        }


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds (it may be a number or an HTTP date); `retry-after-ms` where given."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def error_text(status: int, text: str) -> str:
    """The error message of an error reply's body (OpenAI's `{"error": {"message": ...}}` or plain text),
    short and on one line; the status's reason phrase when the body says nothing."""
    try:
        data = json.loads(text)
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message") if isinstance(err, dict) else err
        return " ".join(str(msg).split())[:300]
    except ValueError:
        pass
    short = " ".join(text.split())[:300]
    if short:
        return short
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def reason(exc: BaseException) -> str:
    """Why a connection could not be made, in a few words."""
    seen: BaseException | None = exc
    while seen is not None:  # the OS error that says why is usually a few causes down
        if (
            isinstance(seen, ConnectionRefusedError)
            or (isinstance(seen, OSError) and seen.errno == errno.ECONNREFUSED)
            or "Connection refused" in str(seen)
        ):
            return "connection refused"
        seen = seen.__cause__ or seen.__context__
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]


@dataclass(frozen=True)
class Failures:
    """Builds the errors of one endpoint: each says which endpoint failed, how, and what to do about it."""

    endpoint: str
    base_url: str
    api_key_env: str | None
    timeout_s: float

    def unreachable(self, exc: BaseException | None, why: str | None = None) -> EndpointUnreachableError:
        why = why or (reason(exc) if exc is not None else "unknown reason")
        return EndpointUnreachableError(
            f"cannot reach endpoint {self.endpoint!r} at {self.base_url}: {why}",
            provider=self.endpoint,
            hint=f"start the server or fix base_url under [endpoints.{self.endpoint}] in honed.toml",
        )

    def bad_url(self) -> EndpointUnreachableError:
        return self.unreachable(None, "not a valid http:// or https:// URL")

    def timed_out(self) -> ProviderError:
        return ProviderError(
            f"endpoint {self.endpoint!r} timed out after {self.timeout_s:g} s",
            provider=self.endpoint,
            retryable=True,
            hint=f"raise timeout_s under [endpoints.{self.endpoint}] or check the server's load",
        )

    def dropped(self, exc: BaseException | None = None) -> ProviderError:
        """The connection failed mid-call (reset, closed early, a truncated body): worth another try."""
        why = f" ({type(exc).__name__})" if exc is not None else ""
        return ProviderError(
            f"endpoint {self.endpoint!r}: connection failed{why}", provider=self.endpoint, retryable=True
        )

    def not_json(self, status: int) -> ProviderError:
        # Retryable, a bounded number of times like a 5xx: a proxy or an overloaded server returns a
        # garbled or truncated 200 now and then. A base_url that is no API at all fails every attempt.
        return ProviderError(
            f"endpoint {self.endpoint!r} returned a non-JSON reply (HTTP {status})",
            provider=self.endpoint,
            status=status,
            retryable=True,
            hint="is base_url an OpenAI-compatible API (it usually ends in /v1)?",
        )

    def from_aiohttp(self, exc: Exception) -> ModelError:
        """An exception of an aiohttp call, as honed's error.

        A connection the server closed while idle in the pool (it had not said so yet) fails the POST with
        ServerDisconnectedError before any reply; aiohttp resends only idempotent methods, so that case is
        a retryable error here and the client's retry loop sends it again on a fresh connection.
        """
        if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError is one too
            return self.timed_out()
        import aiohttp

        if isinstance(exc, aiohttp.ClientConnectorError):
            return self.unreachable(exc)
        if isinstance(exc, aiohttp.InvalidURL):
            return self.bad_url()
        return self.dropped(exc)  # ServerDisconnectedError, ClientOSError, ClientPayloadError, ...

    def from_sdk(
        self, exc: openai.APIError, model: str, *, api: str = "chat", key: str | None = None
    ) -> ModelError:
        """An `openai` SDK call's exception, as honed's error. `key` is masked where the server echoes it
        back in an error reply (some do, in "Incorrect API key provided: ...")."""
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return self.timed_out()
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            # The SDK has its own HTTP stack (httpx2); match its connect errors by name.
            if cause is not None and type(cause).__name__ in ("ConnectError", "UnsupportedProtocol"):
                return self.unreachable(cause)
            return self.dropped(cause)
        if isinstance(exc, openai.APIStatusError):
            detail = error_text(exc.status_code, exc.response.text)
            if key:
                detail = detail.replace(key, "***")
            return self.status(exc.status_code, exc.response.headers, detail, model, api=api)
        return ProviderError(f"endpoint {self.endpoint!r}: {exc.message}", provider=self.endpoint)

    def status(
        self, status: int, headers: Mapping[str, str], detail: str, model: str, *, api: str = "chat"
    ) -> ModelError:
        """An HTTP error reply: 429, 408 and 5xx are retryable (honouring Retry-After), the rest are not.
        `api` (chat, embeddings) names what a 404 says the endpoint lacks."""
        where = f"endpoint {self.endpoint!r}"
        if status == 429 or status >= 500 or status == 408:
            kind, message = (
                (RateLimitError, f"{where} is rate limiting (HTTP 429): {detail}")
                if status == 429
                else (ProviderError, f"{where} failed with HTTP {status}: {detail}")
            )
            return kind(
                message,
                provider=self.endpoint,
                status=status,
                retry_after=retry_after_seconds(headers),
                retryable=True,
            )
        if status in (401, 403):
            return ProviderError(
                f"{where} rejected the API key (HTTP {status}): {detail}",
                provider=self.endpoint,
                status=status,
                hint=f"check the key in {self.api_key_env}" if self.api_key_env else "set api_key_env",
            )
        if status == 404:
            what = "embedding model" if api == "embeddings" else "model"
            return UnknownModelError(
                f"{where} has no {what} {model!r} or no {api} API at {self.base_url} (HTTP 404): {detail}",
                hint=f"list its models with `honed models list --endpoint {self.endpoint}`",
            )
        return ProviderError(
            f"{where} refused the request (HTTP {status}): {detail}", provider=self.endpoint, status=status
        )
