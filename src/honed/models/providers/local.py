"""The `local` provider: SmolLM2-135M-Instruct embedded in the process, plus LoRA adapters on it.

A thin plugin over `honed.models.local`: it validates the endpoint's options and model names, turns a
`ChatRequest` into a `Job` for the batching engine, and the engine's `Generation` into a `ProviderResult`.
Models: `smollm2-135m-instruct` and `smollm2-135m-instruct+ADAPTER` (see `honed.models.local.adapters`).

Loading is lazy (first request or token count) and happens once per provider instance; importing this
module imports neither torch nor transformers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from honed.models import served
from honed.models.local import BASE_MODEL, AdapterResolver, Job, LocalModel, split_model_name
from honed.models.local.jobs import Generation
from honed.models.provider import Provider
from honed.models.types import ChatRequest, Message, ProviderResult, Usage

if TYPE_CHECKING:
    from honed.config import EndpointConfig, Settings
    from honed.models.registry import Registry

OPTIONS = ("adapters",)


def register(registry: Registry) -> None:
    registry.add_provider(
        "local",
        LocalProvider.from_config,
        default_endpoints={"local": {}},
        description="SmolLM2-135M-Instruct on CPU in this process (offline), batched, with LoRA adapters",
    )


class LocalProvider(Provider):
    """Runs chat requests on the embedded model; concurrent requests are batched by its engine."""

    batches = True

    def __init__(self, endpoint: str, settings: Settings, adapters: AdapterResolver) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.adapters = adapters
        self.model = LocalModel(settings.local, name=endpoint)
        # Keep a second batch queued while one runs, so the engine never waits for callers to refill it.
        self.default_max_concurrency = 2 * settings.local.max_batch
        self._server: served.ServedModels | None = None
        self._probed = False
        self._probe_lock = threading.Lock()  # concurrent first calls probe once and share one client

    @classmethod
    def from_config(cls, name: str, endpoint: EndpointConfig, settings: Settings) -> LocalProvider:
        """The plugin factory: validates the endpoint's options (only `adapters`)."""
        from honed.models.client import check_endpoint_options

        check_endpoint_options(name, endpoint, OPTIONS)
        resolver = AdapterResolver.from_option(
            name, endpoint.options.get("adapters"), root=settings.root, data_folder=settings.data_folder
        )
        return cls(name, settings, resolver)

    def job(self, model: str, request: ChatRequest) -> Job:
        """The engine job for `request` on `model`; unknown models and adapters raise UnknownModelError."""
        adapter = self._split(model)
        return Job.of(request.messages, request.params, self.adapters.resolve(adapter) if adapter else None)

    def model_identity(self, model: str) -> str | None:
        """The adapter's fingerprint (its files' size and mtime) for `BASE+ADAPTER`; None for the base,
        whose weights are fixed by the installed package."""
        adapter = self._split(model)
        return self.adapters.resolve(adapter).key if adapter else None

    def warm(self) -> None:
        """Convert (first time on this machine) and load the model now, e.g. before a server accepts calls;
        nothing when a running `honed serve` of the workspace will answer (see `honed.models.served`)."""
        if self._served() is None:
            self.model.load()

    def _served(self) -> served.ServedModels | None:
        with self._probe_lock:
            if not self._probed:
                found = served.find(self.settings)
                if found is not None and self.endpoint in found.endpoints:
                    self._server = served.ServedModels(found)
                self._probed = True
            return self._server

    async def complete(self, model: str, request: ChatRequest) -> ProviderResult:
        server = self._served() if self._probed else await asyncio.to_thread(self._served)
        if server is not None:
            identity = self.model_identity(model)  # an unknown model fails here, as it would below
            try:
                return await server.generate(self.endpoint, model, request, identity)
            except served.ServerGone:
                # Stopped, restarted, or another adapter under this name: this process does the work.
                self._server = None
                served.forget(self.settings)
                await server.aclose()
        return self._result(model, await self.model.generate(self.job(model, request)))

    async def stream(self, model: str, request: ChatRequest) -> AsyncIterator[str | ProviderResult]:
        """The text as the engine decodes it (in this process; through a running `honed serve` of the
        workspace it comes whole), then the result. A piece is only sent once no later token can change
        it: text that could still become a stop string, a trailing space or a half-decoded character
        waits, so the pieces always add up to the result's text."""
        server = self._served() if self._probed else await asyncio.to_thread(self._served)
        if server is not None:
            async for item in super().stream(model, request):
                yield item
            return
        loop = asyncio.get_running_loop()
        seen: asyncio.Queue[str | None] = asyncio.Queue()
        job = self.job(model, request)

        def on_text(text: str) -> None:  # the engine thread: never raise there, it would fail the batch
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                loop.call_soon_threadsafe(seen.put_nowait, text)

        task = asyncio.ensure_future(self.model.generate(dataclasses.replace(job, on_text=on_text)))
        task.add_done_callback(lambda _: seen.put_nowait(None))
        sent = ""
        try:
            while (text := await seen.get()) is not None:
                settled = _settled(text, job.stop)
                if len(settled) > len(sent) and settled.startswith(sent):
                    yield settled[len(sent) :]
                    sent = settled
            out = task.result()
        finally:
            task.cancel()  # a caller that stops reading drops the job if it has not started
        if out.text.startswith(sent) and len(out.text) > len(sent):
            yield out.text[len(sent) :]
        yield self._result(model, out)

    def _result(self, model: str, out: Generation) -> ProviderResult:
        return ProviderResult(
            text=out.text,
            usage=Usage(input_tokens=out.input_tokens, output_tokens=out.output_tokens),
            finish_reason=out.finish_reason,
            model=model,
            queue_s=out.queue_s,  # the engine's batch queue: the client counts it apart from the model's time
        )

    def count_tokens(self, model: str, messages: tuple[Message, ...] | list[Message]) -> int:
        """Prompt tokens with the model's own tokenizer and chat template (loads the tokenizer once)."""
        self._split(model)
        return self.model.count_messages(messages)

    def count_text_tokens(self, model: str, text: str) -> int:
        self._split(model)
        return self.model.count_text(text)

    async def list_models(self) -> list[str]:
        return self._available()

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.aclose()
        await asyncio.to_thread(self.model.close)

    def _available(self) -> list[str]:
        return [BASE_MODEL, *(f"{BASE_MODEL}+{name}" for name in self.adapters.known())]

    def _split(self, model: str) -> str | None:
        return split_model_name(self.endpoint, model, self._available)


def _settled(text: str, stop: tuple[str, ...]) -> str:
    """The part of a row's text so far that the finished text will begin with: cut at a stop string,
    short of any tail that could grow into one, and without a trailing space or replacement character
    (the tokenizer may still join them with the next token)."""
    for s in stop:
        at = text.find(s)
        if at >= 0:
            text = text[:at]
    hold = max((len(s) - 1 for s in stop), default=0)
    if hold:
        text = text[: max(0, len(text) - hold)]
    return text.rstrip().rstrip("\ufffd").rstrip()
