"""Any OpenAI-compatible endpoint: OpenAI, Azure, vLLM, Ollama, llama.cpp server, LM Studio, `honed serve`.

Two transports speak the same wire format with the same errors and retries:
- `httpx` (default): a lean path that posts the JSON body with one shared `httpx.AsyncClient` and reads the
  JSON reply. The official SDK spends ~2 ms of CPU per call building and validating typed objects, which
  at high concurrency on a small machine, not the network, becomes the limit (see bench/call_overhead.py).
- `sdk`: the official `openai.AsyncOpenAI` client, for endpoints that need its extras.
Set `transport = "sdk"` on an endpoint in honed.toml to choose it. Model listing always uses the SDK.

The API key is read from the environment variable the endpoint names (`api_key_env`), at call time, and is
never stored, logged or put in an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from honed.errors import (
    EndpointUnreachableError,
    MissingAPIKeyError,
    ModelError,
    ProviderError,
    RateLimitError,
    UnknownModelError,
)
from honed.models.provider import Provider
from honed.models.types import ChatRequest, ProviderResult, Usage

if TYPE_CHECKING:
    import openai

    from honed.config import EndpointConfig, Settings
    from honed.models.registry import Registry

OPTIONS = ("transport", "azure_api_version", "headers")
OPENAI_BASE_URL = "https://api.openai.com/v1"


def register(registry: Registry) -> None:
    registry.add_provider(
        "openai",
        OpenAICompatProvider.from_config,
        default_endpoints={"openai": {"base_url": OPENAI_BASE_URL, "api_key_env": "OPENAI_API_KEY"}},
        description="any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp, LM Studio)",
    )


class OpenAICompatProvider(Provider):
    default_max_concurrency = 16

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        api_key_env: str | None,
        timeout_s: float,
        transport: str = "httpx",
        azure_api_version: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if transport not in ("httpx", "sdk"):
            raise ProviderError(
                f"endpoint {name!r}: transport must be 'httpx' or 'sdk', not {transport!r}", provider=name
            )
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.transport = transport
        self.azure_api_version = azure_api_version
        self.extra_headers = dict(headers or {})
        # Connection pools belong to an event loop; one client per loop that uses this provider.
        self._http: dict[int, httpx.AsyncClient] = {}
        self._sdk: dict[int, openai.AsyncOpenAI] = {}

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
            transport=str(opts.get("transport", "httpx")),
            azure_api_version=opts.get("azure_api_version"),
            headers=opts.get("headers"),
        )

    # -- credentials and clients ----------------------------------------------------------------------

    def api_key(self) -> str:
        if not self.api_key_env:
            return "not-needed"  # self-hosted servers (vLLM, Ollama, llama.cpp) usually take no key
        key = os.environ.get(self.api_key_env)
        if not key:
            raise MissingAPIKeyError(
                f"endpoint {self.name!r} needs an API key and {self.api_key_env} is not set",
                hint=f"export {self.api_key_env}=..., or name another variable in api_key_env under [endpoints.{self.name}]",
            )
        return key

    def preflight(self) -> None:
        self.api_key()

    def _headers(self) -> dict[str, str]:
        key = self.api_key()
        auth = {"api-key": key} if self.azure_api_version else {"Authorization": f"Bearer {key}"}
        return {"Content-Type": "application/json", **auth, **self.extra_headers}

    def _http_client(self) -> httpx.AsyncClient:
        loop_id = id(asyncio.get_running_loop())
        client = self._http.get(loop_id)
        if client is None:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
            client = httpx.AsyncClient(timeout=self.timeout_s, limits=limits)
            self._http[loop_id] = client
        return client

    def _sdk_client(self) -> openai.AsyncOpenAI:
        import openai

        loop_id = id(asyncio.get_running_loop())
        client = self._sdk.get(loop_id)
        if client is None:
            client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self.api_key(),
                max_retries=0,  # honed retries, with one policy for every provider
                timeout=self.timeout_s,
                default_headers=self.extra_headers or None,
            )
            self._sdk[loop_id] = client
        return client

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
        try:
            response = await self._http_client().post(
                self._url(model), content=json.dumps(body), headers=self._headers()
            )
        except httpx.TimeoutException as exc:
            raise ProviderError(
                f"endpoint {self.name!r} timed out after {self.timeout_s:g} s",
                provider=self.name,
                retryable=True,
                hint=f"raise timeout_s under [endpoints.{self.name}] or check the server's load",
            ) from exc
        except (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise self._unreachable(exc) from exc
        except httpx.TransportError as exc:  # connection dropped mid-request: worth another try
            raise ProviderError(
                f"endpoint {self.name!r}: connection failed ({type(exc).__name__})",
                provider=self.name,
                retryable=True,
            ) from exc
        if response.status_code >= 400:
            raise self._status_error(response.status_code, response.headers, _error_text(response), model)
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderError(
                f"endpoint {self.name!r} returned a non-JSON reply (HTTP {response.status_code})",
                provider=self.name,
                hint="is base_url an OpenAI-compatible API (it usually ends in /v1)?",
            ) from exc
        return parse_chat_response(self.name, data)

    async def _complete_sdk(self, body: dict[str, Any]) -> ProviderResult:
        import openai

        try:
            raw = await self._sdk_client().chat.completions.with_raw_response.create(**body)
        except openai.APITimeoutError as exc:
            raise ProviderError(
                f"endpoint {self.name!r} timed out after {self.timeout_s:g} s",
                provider=self.name,
                retryable=True,
            ) from exc
        except openai.APIConnectionError as exc:
            cause = exc.__cause__
            # The SDK has its own HTTP stack (httpx2); match its connect errors by name.
            if cause is not None and type(cause).__name__ in ("ConnectError", "UnsupportedProtocol"):
                raise self._unreachable(cause) from exc
            raise ProviderError(
                f"endpoint {self.name!r}: connection failed", provider=self.name, retryable=True
            ) from exc
        except openai.APIStatusError as exc:
            raise self._status_error(
                exc.status_code, exc.response.headers, _error_text(exc.response), str(body["model"])
            ) from exc
        return parse_chat_response(self.name, json.loads(raw.http_response.content))

    async def list_models(self) -> list[str]:
        import openai

        try:
            page = await self._sdk_client().models.list()
        except openai.APIConnectionError as exc:
            raise self._unreachable(exc) from exc
        except openai.APIStatusError as exc:
            raise self._status_error(
                exc.status_code, exc.response.headers, _error_text(exc.response), ""
            ) from exc
        return sorted(m.id for m in page.data)

    async def aclose(self) -> None:
        # A client whose event loop is gone raises RuntimeError on close: nothing is left to release.
        for http in self._http.values():
            with contextlib.suppress(RuntimeError):
                await http.aclose()
        for sdk in self._sdk.values():
            with contextlib.suppress(RuntimeError):
                await sdk.close()
        self._http.clear()
        self._sdk.clear()

    # -- errors ---------------------------------------------------------------------------------------

    def _unreachable(self, exc: BaseException) -> EndpointUnreachableError:
        return EndpointUnreachableError(
            f"cannot reach endpoint {self.name!r} at {self.base_url}: {_reason(exc)}",
            provider=self.name,
            hint=f"start the server or fix base_url under [endpoints.{self.name}] in honed.toml",
        )

    def _status_error(self, status: int, headers: Mapping[str, str], detail: str, model: str) -> ModelError:
        where = f"endpoint {self.name!r}"
        if status == 429:
            return RateLimitError(
                f"{where} is rate limiting (HTTP 429): {detail}",
                provider=self.name,
                status=status,
                retry_after=retry_after_seconds(headers),
                retryable=True,
            )
        if status >= 500 or status == 408:
            return ProviderError(
                f"{where} failed with HTTP {status}: {detail}",
                provider=self.name,
                status=status,
                retry_after=retry_after_seconds(headers),
                retryable=True,
            )
        if status in (401, 403):
            return ProviderError(
                f"{where} rejected the API key (HTTP {status}): {detail}",
                provider=self.name,
                status=status,
                hint=f"check the key in {self.api_key_env}" if self.api_key_env else "set api_key_env",
            )
        if status == 404:
            return UnknownModelError(
                f"{where} has no model {model!r} or no chat API at {self.base_url} (HTTP 404): {detail}",
                hint=f"list its models with `honed models list --endpoint {self.name}`",
            )
        return ProviderError(
            f"{where} refused the request (HTTP {status}): {detail}", provider=self.name, status=status
        )


def request_body(model: str, request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": list(request.messages)}
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
        return ProviderResult(
            text=text,
            usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
            finish_reason=choice.get("finish_reason"),
            model=data.get("model"),
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise ProviderError(
            f"endpoint {endpoint!r} returned a reply that is not a chat completion: {str(data)[:200]}",
            provider=endpoint,
        ) from exc


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


def _error_text(response: Any) -> str:
    """The error message of an httpx (or the SDK's httpx2) response, short and on one line."""
    try:
        data = response.json()
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message") if isinstance(err, dict) else err
        return " ".join(str(msg).split())[:300]
    except Exception:
        return " ".join(response.text.split())[:300] or response.reason_phrase


def _reason(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:  # the OS error that says why is usually a few causes down
        if isinstance(seen, ConnectionRefusedError) or "Connection refused" in str(seen):
            return "connection refused"
        seen = seen.__cause__ or seen.__context__
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]
