"""What every call to a model endpoint shares, whatever it asks for (a chat completion, embeddings).

One place decides how an endpoint's settings are found (the providers' defaults overlaid by
`[endpoints.NAME]` of honed.toml), where its API key comes from (the variable `api_key_env` names, read at
call time and never stored), how a failed call is retried (the workspace's `[retry]` policy: exponential
backoff with full jitter, honouring Retry-After, bounded in attempts and total time), how many calls may
be in flight at once (`max_concurrency`), and how the official `openai` SDK client for an
OpenAI-compatible endpoint is built (its `timeout_s`, `base_url` and headers, its own retries off).
`ModelClient` and the chat provider use it for chat; `honed.models.embeddings` for embeddings.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from honed.config import EndpointConfig, RetryConfig, Settings
from honed.errors import MissingAPIKeyError, ProviderError

if TYPE_CHECKING:
    import openai

T = TypeVar("T")

#: concurrent calls to an endpoint whose config sets no max_concurrency (the provider may say otherwise)
DEFAULT_MAX_CONCURRENCY = 16


def merge_endpoints(
    defaults: Mapping[str, Mapping[str, Any]], settings: Settings
) -> dict[str, EndpointConfig]:
    """Endpoints by name: `defaults` (raw configs with their `provider`, as plugins bring them) overlaid by
    `[endpoints.*]` in honed.toml. A table for a default endpoint with the same provider changes only the
    keys it sets; one with another provider replaces it."""
    merged = {name: EndpointConfig.model_validate(raw) for name, raw in defaults.items()}
    for name, cfg in settings.endpoints.items():
        base = merged.get(name)
        if base is not None and base.provider == cfg.provider:
            fields = cfg.model_dump(exclude_unset=True)
            cfg = EndpointConfig.model_validate({**base.model_dump(exclude_unset=True), **fields})
        merged[name] = cfg
    return merged


def api_key(endpoint: str, api_key_env: str | None) -> str | None:
    """The endpoint's API key from the environment, now; None when it names no variable (self-hosted
    servers usually take no key). Raises `MissingAPIKeyError`, naming the variable, when it is unset."""
    if not api_key_env:
        return None
    key = os.environ.get(api_key_env)
    if not key:
        raise MissingAPIKeyError(
            f"endpoint {endpoint!r} needs an API key and {api_key_env} is not set",
            hint=f"export {api_key_env}=..., or name another variable in api_key_env "
            f"under [endpoints.{endpoint}]",
        )
    return key


# -- retries ------------------------------------------------------------------------------------------


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Seconds to wait before attempt `attempt + 1`: the server's Retry-After if it gave one, else
    exponential backoff with full jitter (uniform in [0, min(cap, base * 2**(attempt-1))])."""
    if retry_after is not None and retry_after >= 0:
        return retry_after
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def retry_delay(policy: RetryConfig, exc: ProviderError, attempt: int, started: float) -> float:
    """How long to wait before retrying after `exc` ended attempt number `attempt` of a call that began
    at `started` (time.monotonic()). Re-raises `exc`, saying why it gave up, when the error is not
    retryable or the policy's attempts or total time are spent. The one retry rule of every caller, sync
    or async: they differ only in how they sleep."""
    if not exc.retryable or attempt >= policy.max_attempts:
        if exc.retryable:
            exc.message = f"{exc.message} (gave up after {attempt} attempts)"
        raise exc
    delay = backoff_delay(attempt, policy.base_delay_s, policy.max_delay_s, exc.retry_after)
    if time.monotonic() - started + delay > policy.max_total_s:
        exc.message = f"{exc.message} (gave up after {attempt} attempts: retry budget spent)"
        raise exc
    return delay


def call_with_retries(call: Callable[[], T], policy: RetryConfig) -> T:
    """`call()`, retried on retryable `ProviderError`s by `policy`, from a thread (it sleeps)."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return call()
        except ProviderError as exc:
            attempt += 1
            time.sleep(retry_delay(policy, exc, attempt, started))


# -- limits -------------------------------------------------------------------------------------------


def concurrency_limit(endpoint: EndpointConfig, default: int = DEFAULT_MAX_CONCURRENCY) -> int:
    """Calls the endpoint may have in flight at once: its `max_concurrency`, else the caller's default."""
    return endpoint.max_concurrency or default


class ThreadLimit:
    """An endpoint's concurrency limit for calls made from threads (`with limit: call()`); the async
    `ModelClient` keeps an asyncio semaphore of the same size per event loop."""

    def __init__(self, endpoint: EndpointConfig, default: int = DEFAULT_MAX_CONCURRENCY) -> None:
        self.size = concurrency_limit(endpoint, default)
        self._semaphore = threading.BoundedSemaphore(self.size)

    def __enter__(self) -> None:
        self._semaphore.acquire()

    def __exit__(self, *exc: object) -> None:
        self._semaphore.release()


# -- the openai SDK -----------------------------------------------------------------------------------


def sdk_client(
    base_url: str,
    *,
    timeout_s: float,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> openai.OpenAI:
    """A synchronous `openai.OpenAI` client for an OpenAI-compatible endpoint: honed retries (one policy
    for every call), so the SDK's own retries are off. Without `api_key` the caller sends the key (or
    none) per request with `auth_headers`, so a key is never kept in a long-lived client."""
    import openai  # here, not at the top: most commands never call an endpoint

    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key or "sent-per-request",
        max_retries=0,
        timeout=timeout_s,
        default_headers=dict(headers) if headers else None,
        default_query=dict(query) if query else None,
    )


def async_sdk_client(
    base_url: str, *, timeout_s: float, api_key: str, headers: Mapping[str, str] | None = None
) -> openai.AsyncOpenAI:
    """The `openai.AsyncOpenAI` twin of `sdk_client`, for one event loop."""
    import openai

    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=0,  # honed retries, with one policy for every provider
        timeout=timeout_s,
        default_headers=dict(headers) if headers else None,
    )


def auth_headers(key: str | None, *, azure: bool = False) -> dict[str, Any]:
    """Per-request headers carrying `key` (Azure's `api-key`, else a bearer token); with no key, none at
    all: the SDK's placeholder Authorization is dropped, not sent."""
    import openai

    if key is None:
        return {"Authorization": openai.Omit()}
    if azure:
        return {"api-key": key, "Authorization": openai.Omit()}
    return {"Authorization": f"Bearer {key}"}
