"""The one way honed calls a model: cache, concurrency limits, retries, parsing and cost, for every provider.

Every feature (experiments, judges, the flywheel, `honed models run`) goes through `ModelClient`, so the
guarantees hold everywhere: a response cache keyed by the request's content hash (with the sample index, so
repeats are independent calls), a concurrency limit per endpoint, retries with exponential backoff and full
jitter on retryable errors (honouring Retry-After, bounded in attempts and total time), and token counts,
latency and cost on every completion.

Latency is split in two: `latency_s`, the time in the model (the successful attempt, less what the provider
says the request waited inside it, e.g. for a batch), and `queue_s`, the time waiting around it (for the
endpoint's concurrency slot, a batch, retries). A thousand calls sent at once then read as the model's
speed, with the queueing they caused beside it, not folded into every figure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from honed.config import EndpointConfig, Settings
from honed.errors import (
    ConfigError,
    HonedError,
    InvalidInputError,
    OutputParseError,
    ProviderError,
    UnknownModelError,
)
from honed.hashing import content_hash
from honed.models.endpoints import backoff_delay as backoff_delay  # re-exported: it lived here
from honed.models.endpoints import concurrency_limit, merge_endpoints, retry_delay
from honed.models.prices import PriceTable
from honed.models.provider import Provider
from honed.models.registry import ModelRef, Registry, default_registry
from honed.models.types import ChatRequest, Completion, ProviderResult, Usage

if TYPE_CHECKING:
    from honed.store import Store

OnResult = Callable[[int, "Completion | HonedError"], None]
LogSink = Callable[[ChatRequest, "Completion | HonedError", float], str]
"""`sink(request, outcome, latency_s) -> log id` records one call that reached a model: its completion, or
the error it ended in. It runs on the caller's thread (so it sees the caller's log context) and must not
block: `honed.logs.calls.CallLogger` queues a row for the background writer."""

_FLUSH_EVERY = 64
_FLUSH_SECONDS = 0.5


T = TypeVar("T")
A = TypeVar("A")
P = ParamSpec("P")


class ModelClient:
    """Calls models by reference. One per process (or per workspace); safe to share across tasks."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        registry: Registry | None = None,
        use_cache: bool | None = None,
        log_sink: LogSink | None = None,
    ) -> None:
        self.settings = settings
        #: where each call that reached a model is logged (None: not logged); cache hits are not calls
        self.log_sink = log_sink
        self.store = store
        self.registry = registry or default_registry()
        self.use_cache = (settings.cache if use_cache is None else use_cache) and store is not None
        self.prices = PriceTable(settings.prices)
        self._providers: dict[str, Provider] = {}
        self._endpoints: dict[str, EndpointConfig] | None = None
        self._semaphores: dict[tuple[int, str], asyncio.Semaphore] = {}
        self._pending: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        self._pending_lock = threading.Lock()
        self._last_flush = time.monotonic()

    # -- resolution -----------------------------------------------------------------------------------

    def endpoints(self) -> dict[str, EndpointConfig]:
        """Endpoints the providers bring, overlaid by `[endpoints.*]` in honed.toml."""
        if self._endpoints is None:
            self._endpoints = merge_endpoints(self.registry.default_endpoints(), self.settings)
        return self._endpoints

    def resolve(self, ref: str) -> tuple[Provider, ModelRef, EndpointConfig]:
        """The provider, parsed reference and endpoint config for a model reference."""
        parsed = ModelRef.parse(ref)
        endpoints = self.endpoints()
        endpoint = endpoints.get(parsed.endpoint)
        if endpoint is None:
            raise UnknownModelError(
                f"unknown endpoint {parsed.endpoint!r} in model reference {ref!r}",
                hint=f"known endpoints: {', '.join(sorted(endpoints))}; "
                f"add [endpoints.{parsed.endpoint}] to honed.toml",
            )
        provider = self._providers.get(parsed.endpoint)
        if provider is None:
            spec = self.registry.spec(endpoint.provider)
            provider = spec.factory(parsed.endpoint, endpoint, self.settings)
            self._providers[parsed.endpoint] = provider
        return provider, parsed, endpoint

    def _semaphore(
        self, endpoint_name: str, provider: Provider, endpoint: EndpointConfig
    ) -> asyncio.Semaphore:
        # Semaphores belong to one event loop; a client may be used from several (asyncio.run per command).
        key = (id(asyncio.get_running_loop()), endpoint_name)
        sem = self._semaphores.get(key)
        if sem is None:
            sem = asyncio.Semaphore(concurrency_limit(endpoint, provider.default_max_concurrency))
            self._semaphores[key] = sem
        return sem

    def cache_key(
        self, request: ChatRequest, endpoint: EndpointConfig, provider: Provider, model: str
    ) -> str:
        # The endpoint's address and the provider's identity of the model are part of the key:
        # re-pointing `vllm` at another server, or retraining an adapter under the same name, must not
        # serve the old answers.
        identity = provider.model_identity(model)
        return content_hash([request.key(), endpoint.provider, endpoint.base_url, identity])

    # -- calls ----------------------------------------------------------------------------------------

    async def complete(
        self, request: ChatRequest, *, cached: dict[str, dict[str, Any]] | None = None
    ) -> Completion:
        """Run one request (or serve it from the cache). Raises a `HonedError` on failure."""
        provider, ref, endpoint = self.resolve(request.model)
        return await self._complete(
            request, provider, ref, endpoint, self.cache_key(request, endpoint, provider, ref.model), cached
        )

    async def _complete(
        self,
        request: ChatRequest,
        provider: Provider,
        ref: ModelRef,
        endpoint: EndpointConfig,
        key: str,
        cached: dict[str, dict[str, Any]] | None,
    ) -> Completion:
        hit = self._cached(request, key, cached)
        if hit is not None:
            return hit
        _check_tools(request, provider, endpoint)
        waiting = time.perf_counter()
        async with self._semaphore(ref.endpoint, provider, endpoint):
            started = time.perf_counter()
            try:
                result, latency, queued = await self._call_with_retries(provider, ref, request)
            except HonedError as exc:
                if self.log_sink is not None:
                    self.log_sink(request, exc, time.perf_counter() - started)
                raise
        return await self._record(request, key, result, latency, started - waiting + queued)

    async def stream(self, request: ChatRequest) -> AsyncIterator[str | Completion]:
        """Run one request, yielding its text in pieces as the model writes them, then the `Completion`.

        The same cache, limits, logging and cost as `complete` (a cached answer comes as one piece). A
        failure before the first piece is retried as any call is; after it, the error is raised, since
        the caller has already shown part of an answer that a retry would not continue."""
        provider, ref, endpoint = self.resolve(request.model)
        key = self.cache_key(request, endpoint, provider, ref.model)
        hit = self._cached(request, key, None)
        if hit is not None:
            if hit.text:
                yield hit.text
            yield hit
            return
        _check_tools(request, provider, endpoint)
        policy = self.settings.retry
        waiting = time.perf_counter()
        async with self._semaphore(ref.endpoint, provider, endpoint):
            started, began, attempt, sent = time.perf_counter(), time.monotonic(), 0, False
            result: ProviderResult | None = None
            try:
                while result is None:
                    t0 = time.perf_counter()
                    try:
                        async for item in provider.stream(ref.model, request):
                            if isinstance(item, str):
                                sent = True
                                yield item
                            else:
                                result = item
                        if result is None:
                            raise ProviderError(
                                f"{request.model}: the stream ended without a result", provider=ref.endpoint
                            )
                    except ProviderError as exc:
                        if sent:
                            raise
                        attempt += 1
                        await asyncio.sleep(retry_delay(policy, exc, attempt, began))
            except HonedError as exc:
                if self.log_sink is not None:
                    self.log_sink(request, exc, time.perf_counter() - started)
                raise
        took = time.perf_counter() - t0
        inside = min(took, max(0.0, result.queue_s or 0.0))
        yield await self._record(request, key, result, took - inside, t0 - waiting + inside)

    def _cached(
        self, request: ChatRequest, key: str, cached: dict[str, dict[str, Any]] | None
    ) -> Completion | None:
        """The cached completion of `request` (from `cached` when a batch looked them up), or None."""
        if not self.use_cache:
            return None
        hit = cached.get(key) if cached is not None else None
        if hit is None and cached is None:
            assert self.store is not None
            hit = self.store.cache.get(key)
        return None if hit is None else self._from_cache(request, key, hit)

    async def _record(
        self, request: ChatRequest, key: str, result: ProviderResult, latency: float, queued: float
    ) -> Completion:
        """The completion of a call that reached the model: logged, cached, parsed."""
        completion = self._completion(request, key, result, latency, queued)
        if self.log_sink is not None:
            completion = dataclasses.replace(completion, log_id=self.log_sink(request, completion, latency))
        if self.use_cache:
            self._remember(key, request, completion)
            if len(self._pending) >= _FLUSH_EVERY or time.monotonic() - self._last_flush > _FLUSH_SECONDS:
                await asyncio.to_thread(self.flush)
        return with_parsed(request, completion)

    async def complete_many(
        self,
        requests: Sequence[ChatRequest],
        *,
        on_result: OnResult | None = None,
    ) -> list[Completion | HonedError]:
        """Run many requests concurrently (each endpoint's limit applies). Failures are returned in place."""
        # Resolve each model reference once per batch and hash each request once, not once per step.
        resolved: dict[str, tuple[Provider, ModelRef, EndpointConfig]] = {}

        def resolve(model: str) -> tuple[Provider, ModelRef, EndpointConfig]:
            found = resolved.get(model)
            if found is None:
                found = resolved[model] = self.resolve(model)
            return found

        cached: dict[str, dict[str, Any]] | None = None
        keys: list[str] | None = None
        if self.use_cache and self.store is not None:
            keys = []
            for r in requests:
                provider, ref, endpoint = resolve(r.model)
                keys.append(self.cache_key(r, endpoint, provider, ref.model))
            cached = await asyncio.to_thread(self.store.cache.get_many, keys)

        async def one(i: int, request: ChatRequest) -> Completion | HonedError:
            try:
                provider, ref, endpoint = resolve(request.model)
                key = keys[i] if keys is not None else self.cache_key(request, endpoint, provider, ref.model)
                out: Completion | HonedError = await self._complete(
                    request, provider, ref, endpoint, key, cached
                )
            except HonedError as exc:
                out = exc
            if on_result is not None:
                on_result(i, out)
            return out

        try:
            return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(requests))))
        finally:
            await asyncio.to_thread(self.flush)

    def run(
        self, requests: Sequence[ChatRequest], *, on_result: OnResult | None = None
    ) -> list[Completion | HonedError]:
        """Synchronous `complete_many` for scripts and the CLI (not from inside a running event loop)."""
        return self.blocking(lambda: self.complete_many(requests, on_result=on_result))

    def blocking(self, make: Callable[[], Awaitable[T]], *, flush: bool = False) -> T:
        """Run `make()` to its end from synchronous code (not from inside a running event loop), then close
        the providers it opened (their HTTP sessions belong to this loop) and, with `flush`, write the
        buffered cache entries. Every synchronous wrapper of honed's async calls goes through here."""

        async def main() -> T:
            try:
                return await make()
            finally:
                if flush:
                    await asyncio.to_thread(self.flush)
                await self.aclose_providers()

        return asyncio.run(main())

    async def _call_with_retries(
        self, provider: Provider, ref: ModelRef, request: ChatRequest
    ) -> tuple[ProviderResult, float, float]:
        """The result, its time in the model, and the time waited besides: earlier attempts and their
        backoff, and what the provider says the request queued inside it."""
        policy = self.settings.retry
        started = time.monotonic()
        first = time.perf_counter()
        attempt = 0
        while True:
            t0 = time.perf_counter()
            try:
                result = await provider.complete(ref.model, request)
                took = time.perf_counter() - t0
                inside = min(took, max(0.0, result.queue_s or 0.0))
                return result, took - inside, t0 - first + inside
            except ProviderError as exc:
                attempt += 1
                await asyncio.sleep(retry_delay(policy, exc, attempt, started))

    # -- results --------------------------------------------------------------------------------------

    def _completion(
        self, request: ChatRequest, key: str, result: ProviderResult, latency: float, queued: float
    ) -> Completion:
        return Completion(
            text=result.text,
            usage=result.usage,
            latency_s=latency,
            queue_s=queued,
            cost_usd=self.prices.cost(request.model, result.usage),
            model=request.model,
            finish_reason=result.finish_reason,
            cached=False,
            request_key=key,
            tool_calls=result.tool_calls,
        )

    def _from_cache(self, request: ChatRequest, key: str, hit: dict[str, Any]) -> Completion:
        usage = Usage(int(hit["input_tokens"]), int(hit["output_tokens"]))
        completion = Completion(
            text=str(hit["text"]),
            usage=usage,
            latency_s=float(hit["latency_s"]),
            queue_s=None if hit.get("queue_s") is None else float(hit["queue_s"]),
            cost_usd=self.prices.cost(request.model, usage),
            model=request.model,
            finish_reason=hit.get("finish_reason"),
            cached=True,
            request_key=key,
            tool_calls=tuple(hit["tool_calls"]) if hit.get("tool_calls") else None,
        )
        return with_parsed(request, completion)

    def _remember(self, key: str, request: ChatRequest, c: Completion) -> None:
        response = {
            "text": c.text,
            "input_tokens": c.usage.input_tokens,
            "output_tokens": c.usage.output_tokens,
            "latency_s": c.latency_s,
            "queue_s": c.queue_s,
            "finish_reason": c.finish_reason,
        }
        if c.tool_calls:
            response["tool_calls"] = list(c.tool_calls)
        req = request.to_dict()
        with self._pending_lock:
            self._pending.append((key, request.model, req, response))

    def flush(self) -> None:
        """Write buffered cache entries to the store (periodically, at the end of a batch, on close)."""
        with self._pending_lock:
            rows, self._pending = self._pending, []
            self._last_flush = time.monotonic()
        if rows and self.store is not None:
            self.store.cache.put_many(rows)

    def warm(self, requests: Sequence[ChatRequest]) -> None:
        """Load now what the calls `requests` will make need (model weights), so that the first call's
        latency is the call's and not the load's. Requests the response cache will answer need nothing:
        a cached `honed models run` never loads the model."""
        pending = list(requests)
        if self.use_cache and self.store is not None and pending:
            keys = []
            for r in pending:
                provider, ref, endpoint = self.resolve(r.model)
                keys.append(self.cache_key(r, endpoint, provider, ref.model))
            hits = self.store.cache.get_many(keys)
            pending = [r for r, k in zip(pending, keys, strict=True) if k not in hits]
        for model in dict.fromkeys(r.model for r in pending):
            self.resolve(model)[0].warm()

    def count_tokens(self, request: ChatRequest) -> int:
        """Prompt tokens of `request`, offline, with the model's own tokenizer where it has one."""
        provider, ref, _ = self.resolve(request.model)
        return provider.count_tokens(ref.model, request.messages)

    async def aclose_providers(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()
        self._semaphores.clear()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.flush)
        await self.aclose_providers()


def _check_tools(request: ChatRequest, provider: Provider, endpoint: EndpointConfig) -> None:
    if request.tools and not provider.supports_tools:
        raise InvalidInputError(
            f"{request.model} cannot call tools (its provider {endpoint.provider!r} does not support them)",
            hint="drop `tools` from the prompt or use a model behind an OpenAI-compatible endpoint",
        )


def with_parsed(request: ChatRequest, completion: Completion) -> Completion:
    """Add the parsed JSON when the request asked for structured output. A reply that does not parse
    raises `OutputParseError` carrying the raw text and the completion (its tokens and cost were spent)."""
    if request.response_schema is None:
        return completion
    try:
        return dataclasses.replace(completion, parsed=parse_json_output(completion.text))
    except OutputParseError as exc:
        exc.completion = completion
        raise


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json_output(text: str) -> Any:
    """Parse a model's JSON answer (tolerating a ```json fence); `OutputParseError` keeps the raw text."""
    m = _FENCE.match(text)
    body = m.group(1) if m else text
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise OutputParseError(
            f"model output is not valid JSON ({exc.msg} at char {exc.pos})",
            raw=text,
            hint="see the raw text; give few-shot examples or a stricter instruction",
        ) from None


def check_endpoint_options(endpoint_name: str, endpoint: EndpointConfig, allowed: Iterable[str]) -> None:
    """For providers: reject option keys they don't know, naming them and the endpoint."""
    unknown = sorted(set(endpoint.options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"honed.toml: unknown key(s) {', '.join(map(repr, unknown))} in [endpoints.{endpoint_name}]",
            hint=f"provider {endpoint.provider!r} accepts: "
            + (", ".join(sorted(allowed)) or "no extra keys"),
        )


def synchronous(
    fn: Callable[Concatenate[A, P], Awaitable[T]],
    client_of: Callable[[A], ModelClient],
    *,
    name: str,
    flush: bool = False,
) -> Callable[Concatenate[A, P], T]:
    """The synchronous twin of the async `fn`, named `name`, whose first argument leads to its model
    client (a workspace, or the client itself). Written once, as the async original, a twin cannot drift
    from it in parameters or defaults; it runs through `ModelClient.blocking` (`flush` as there)."""

    @functools.wraps(fn)
    def twin(first: A, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return client_of(first).blocking(lambda: fn(first, *args, **kwargs), flush=flush)

    twin.__name__ = twin.__qualname__ = name
    twin.__doc__ = f"`{fn.__name__}`, synchronously (not from inside a running event loop)."
    return twin
