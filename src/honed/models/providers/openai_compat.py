"""Any OpenAI-compatible endpoint: OpenAI, Azure, vLLM, Ollama, llama.cpp server, LM Studio, `honed serve`.

Two transports speak the same wire format with the same errors and retries (openai_wire.py):
- `aiohttp` (default): posts the JSON body with one `aiohttp.ClientSession` per event loop and reads the
  JSON reply. The official SDK spends ~2 ms of CPU per call building and validating typed objects, and
  httpx's connection pool (httpcore) rescans every pooled connection on each request, ~9 ms of CPU per
  call at 64 concurrent calls; on a small machine that CPU, not the network, becomes the limit.
  aiohttp's pool takes and returns a connection in O(1) (measured in bench/call_overhead.py).
- `sdk`: the official `openai.AsyncOpenAI` client, for endpoints that need its extras.
Set `transport = "sdk"` on an endpoint in honed.toml to choose it. Model listing always uses the SDK.

The API key is read from the environment variable the endpoint names (`api_key_env`), at call time
(honed.models.endpoints, as for embeddings), and is never logged or put in an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from honed.errors import ProviderError
from honed.models import endpoints
from honed.models.provider import Provider
from honed.models.providers.openai_wire import (
    ChunkAssembler,
    Failures,
    error_text,
    parse_chat_response,
    request_body,
    retry_after_seconds,
)
from honed.models.types import ChatRequest, ProviderResult, Usage

if TYPE_CHECKING:
    import aiohttp
    import openai

    from honed.config import EndpointConfig, Settings
    from honed.models.registry import Registry

__all__ = [
    "OpenAICompatProvider",
    "parse_chat_response",
    "register",
    "request_body",
    "retry_after_seconds",
]

OPTIONS = ("transport", "azure_api_version", "headers")
TRANSPORTS = ("aiohttp", "sdk")
OPENAI_BASE_URL = "https://api.openai.com/v1"
# Idle pooled connections are dropped after this long: just under the 5 s idle timeout of uvicorn (vLLM,
# `honed serve`) and Node, so a connection is rarely reused at the moment the server closes it.
KEEPALIVE_S = 4.0


def register(registry: Registry) -> None:
    registry.add_provider(
        "openai",
        OpenAICompatProvider.from_config,
        default_endpoints={"openai": {"base_url": OPENAI_BASE_URL, "api_key_env": "OPENAI_API_KEY"}},
        description="any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp, LM Studio)",
    )


class OpenAICompatProvider(Provider):
    supports_tools = True
    default_max_concurrency = 16

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        api_key_env: str | None,
        timeout_s: float,
        transport: str = "aiohttp",
        azure_api_version: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            valid = " or ".join(repr(t) for t in TRANSPORTS)
            raise ProviderError(
                f"endpoint {name!r}: transport must be {valid}, not {transport!r}",
                provider=name,
                hint=f"fix transport under [endpoints.{name}] in honed.toml, or remove it for the default",
            )
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.transport = transport
        self.azure_api_version = azure_api_version
        self.extra_headers = dict(headers or {})
        self.failures = Failures(name, self.base_url, api_key_env, timeout_s)
        # Checked here because aiohttp's error for another scheme differs by release and names only the URL.
        self._http_url = _scheme(self.base_url) in ("http", "https")
        # Connection pools belong to an event loop: one session (and SDK client) per loop that uses this
        # provider. Each entry holds its loop, so the loop's id cannot be reused while the entry lives.
        self._sessions: dict[int, _Sessions] = {}
        self._sdk: dict[int, tuple[asyncio.AbstractEventLoop, openai.AsyncOpenAI]] = {}

    @classmethod
    def from_config(cls, name: str, endpoint: EndpointConfig, settings: Settings) -> OpenAICompatProvider:
        from honed.models.client import check_endpoint_options

        check_endpoint_options(name, endpoint, OPTIONS)
        if not endpoint.base_url:
            raise ProviderError(
                f"endpoint {name!r} has no base_url",
                provider=name,
                hint=f'add base_url = "http://host:port/v1" under [endpoints.{name}] in honed.toml',
            )
        opts = endpoint.options
        return cls(
            name,
            endpoint.base_url,
            api_key_env=endpoint.api_key_env,
            timeout_s=endpoint.timeout_s,
            transport=str(opts.get("transport", "aiohttp")),
            azure_api_version=opts.get("azure_api_version"),
            headers=opts.get("headers"),
        )

    # -- credentials and clients ----------------------------------------------------------------------

    def api_key(self) -> str:
        # Self-hosted servers (vLLM, Ollama, llama.cpp) usually take no key; the SDK wants one anyway.
        return endpoints.api_key(self.name, self.api_key_env) or "not-needed"

    def preflight(self) -> None:
        self.api_key()

    def _headers(self) -> dict[str, str]:
        key = self.api_key()
        auth = {"api-key": key} if self.azure_api_version else {"Authorization": f"Bearer {key}"}
        return {"Content-Type": "application/json", **auth, **self.extra_headers}

    def _sessions_here(self) -> _Sessions:
        loop = asyncio.get_running_loop()
        entry = self._sessions.get(id(loop))
        if entry is None:
            entry = self._sessions[id(loop)] = _Sessions(loop, self.timeout_s, _env_proxy(self.base_url))
        return entry

    def _post(self, model: str, body: dict[str, Any]) -> _Exchange:
        """`async with self._post(model, body) as response:` POSTs `body` and yields the response once
        its status and headers are in; aiohttp's errors, there or while the body is read, leave the block
        as the endpoint's error."""
        return _Exchange(self, model, body)

    def _sdk_client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        entry = self._sdk.get(id(loop))
        if entry is None:
            client = endpoints.async_sdk_client(
                self.base_url, timeout_s=self.timeout_s, api_key=self.api_key(), headers=self.extra_headers
            )
            entry = self._sdk[id(loop)] = (loop, client)
        return entry[1]

    def _url(self, model: str) -> str:
        if self.azure_api_version:
            deployment = f"{self.base_url}/openai/deployments/{model}"
            return f"{deployment}/chat/completions?api-version={self.azure_api_version}"
        return f"{self.base_url}/chat/completions"

    # -- the call -------------------------------------------------------------------------------------

    async def complete(self, model: str, request: ChatRequest) -> ProviderResult:
        body = request_body(model, request)
        if self.transport == "sdk":
            return await self._complete_sdk(body)
        if not self._http_url:
            raise self.failures.bad_url()
        async with self._post(model, body) as response:
            status, reply_headers = response.status, response.headers
            raw = await response.read()  # gzip/deflate bodies arrive decoded
        return self._reply(status, reply_headers, raw, model)

    def _reply(self, status: int, headers: Any, raw: bytes, model: str) -> ProviderResult:
        """A whole (not streamed) reply: an error status, a body that is not JSON, or the result."""
        if status >= 400:
            detail = error_text(status, raw.decode("utf-8", "replace"))
            raise self.failures.status(status, headers, detail, model)
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise self.failures.not_json(status) from exc
        return parse_chat_response(self.name, data)

    async def stream(self, model: str, request: ChatRequest) -> AsyncIterator[str | ProviderResult]:
        """`stream: true` with `stream_options.include_usage`: the content deltas of the server-sent
        events as they arrive, then the result they add up to. The `sdk` transport, and a server that
        answers with one JSON reply instead, give the whole text as one piece."""
        if self.transport == "sdk":
            async for item in super().stream(model, request):
                yield item
            return
        if not self._http_url:
            raise self.failures.bad_url()
        body = {**request_body(model, request), "stream": True, "stream_options": {"include_usage": True}}
        assembler = ChunkAssembler()
        async with self._post(model, body) as response:
            if response.status >= 400 or response.content_type != "text/event-stream":
                # An error, or a server that answered with one JSON reply: read as `complete` reads it.
                result = self._reply(response.status, response.headers, await response.read(), model)
                if result.text:
                    yield result.text
                yield result
                return
            async for line in response.content:
                if not line.startswith(b"data:"):
                    continue  # blank separators, comments (keep-alives), `event:` lines
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    break
                piece = self._chunk(assembler, payload, response.status)
                if piece:
                    yield piece
        result = parse_chat_response(self.name, assembler.completion())
        if result.usage == Usage(0, 0):
            # A server that ignores include_usage: count offline, as for a prompt's budget estimate.
            result = dataclasses.replace(
                result,
                usage=Usage(
                    self.count_tokens(model, request.messages), self.count_text_tokens(model, result.text)
                ),
            )
        yield result

    def _chunk(self, assembler: ChunkAssembler, payload: bytes, status: int) -> str:
        try:
            chunk = json.loads(payload)
        except ValueError as exc:
            raise self.failures.not_json(status) from exc
        if isinstance(chunk, dict) and isinstance(chunk.get("error"), dict):
            # An error after the stream began (OpenAI and vLLM send it as an event): not retried here.
            message = str(chunk["error"].get("message") or chunk["error"])[:300]
            raise ProviderError(f"endpoint {self.name!r} failed mid-stream: {message}", provider=self.name)
        try:
            return assembler.add(chunk)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderError(
                f"endpoint {self.name!r} sent a chunk that is not a chat completion chunk: "
                f"{str(chunk)[:200]}",
                provider=self.name,
            ) from exc

    async def _complete_sdk(self, body: dict[str, Any]) -> ProviderResult:
        import openai

        try:
            raw = await self._sdk_client().chat.completions.with_raw_response.create(**body)
        except openai.APIError as exc:
            raise self.failures.from_sdk(exc, str(body["model"])) from exc
        try:
            data = json.loads(raw.http_response.content)
        except ValueError as exc:
            raise self.failures.not_json(raw.http_response.status_code) from exc
        return parse_chat_response(self.name, data)

    async def list_models(self) -> list[str]:
        import openai

        try:
            page = await self._sdk_client().models.list()
        except openai.APIConnectionError as exc:
            raise self.failures.unreachable(exc) from exc
        except openai.APIStatusError as exc:
            detail = error_text(exc.status_code, exc.response.text)
            raise self.failures.status(exc.status_code, exc.response.headers, detail, "") from exc
        return sorted(m.id for m in page.data)

    async def aclose(self) -> None:
        """Close this loop's session and SDK client, and those of loops that have closed since.

        Another loop's, still open, can only be closed on that loop: it stays for an `aclose` there.
        """
        running = asyncio.get_running_loop()
        for key, sessions in list(self._sessions.items()):
            if sessions.loop is running or sessions.loop.is_closed():  # nothing to wait for on a closed loop
                del self._sessions[key]
                with contextlib.suppress(RuntimeError):
                    await sessions.close()
        for key, (loop, sdk) in list(self._sdk.items()):
            if loop is running or loop.is_closed():
                del self._sdk[key]
                with contextlib.suppress(RuntimeError):  # httpx raises it for a closed loop's client
                    await sdk.close()


class _Exchange:
    """One POST and its reply (a class, not an `asynccontextmanager`: this is every call's path, and an
    async generator costs each call a hook and a weak reference).

    A pooled connection the server closed while it sat idle (a keep-alive timeout, with no header saying
    so) fails the POST before any reply, and can race the next call out of the pool whatever the
    keep-alive setting. That one case is resent at once on a new connection, as browsers and urllib3
    resend on a stale reused connection; any other failure, and a second one, goes to the client's retry
    loop (with backoff) as the endpoint's error.
    """

    def __init__(self, provider: OpenAICompatProvider, model: str, body: dict[str, Any]) -> None:
        self.provider, self.model, self.body = provider, model, body
        self.response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        import aiohttp

        provider = self.provider
        sessions = provider._sessions_here()
        data, headers, url = json.dumps(self.body).encode(), provider._headers(), provider._url(self.model)
        try:
            try:
                response = await sessions.pooled().post(url, data=data, headers=headers, proxy=sessions.proxy)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if isinstance(exc, aiohttp.ClientConnectorError):
                    raise  # no connection was made at all: the server is down, not a stale connection
                response = await sessions.fresh().post(url, data=data, headers=headers, proxy=sessions.proxy)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise provider.failures.from_aiohttp(exc) from exc
        self.response = response
        return response

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        import aiohttp

        assert self.response is not None
        try:
            await self.response.__aexit__(kind, exc, tb)  # releases the connection, as `async with` would
        except (aiohttp.ClientError, TimeoutError) as error:
            exc = exc or error
        if isinstance(exc, (aiohttp.ClientError, TimeoutError)):
            raise self.provider.failures.from_aiohttp(exc) from exc


class _Sessions:
    """One event loop's aiohttp sessions: the pooled one every call uses, and one that opens a new
    connection per call (made on first need) for resending a call whose pooled connection had gone stale.

    No connection cap: the client's per-endpoint semaphore bounds concurrent calls. Timeouts are per
    phase, as httpx and the SDK apply them: connecting, and waiting for the reply's bytes.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float, proxy: str | None) -> None:
        self.loop, self.timeout_s, self.proxy = loop, timeout_s, proxy
        self._pooled: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None

    def _new(self, **connector: Any) -> aiohttp.ClientSession:
        import aiohttp  # here, not at the top: every command loads this plugin, few call an endpoint

        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s)
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, **connector), timeout=timeout)

    def pooled(self) -> aiohttp.ClientSession:
        if self._pooled is None:
            self._pooled = self._new(keepalive_timeout=KEEPALIVE_S)
        return self._pooled

    def fresh(self) -> aiohttp.ClientSession:
        if self._fresh is None:
            self._fresh = self._new(force_close=True)
        return self._fresh

    async def close(self) -> None:
        for session in (self._pooled, self._fresh):
            if session is not None:
                await session.close()


def _env_proxy(url: str) -> str | None:
    """The proxy that HTTP_PROXY / HTTPS_PROXY name for `url`, unless NO_PROXY exempts its host.

    The same rule as aiohttp's `trust_env=True` (and httpx's), read once per session: aiohttp would read
    it, and ~/.netrc, in a worker thread on every request, and netrc credentials there would clash with
    our Authorization header.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None  # a malformed base_url: aiohttp's InvalidURL on the call says so
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _scheme(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).scheme.lower()
    except ValueError:
        return ""
