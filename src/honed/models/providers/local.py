"""The `local` provider: SmolLM2-135M-Instruct embedded in the process, plus LoRA adapters on it.

A thin plugin over `honed.models.local`: it validates the endpoint's options and model names, turns a
`ChatRequest` into a `Job` for the batching engine, and the engine's `Generation` into a `ProviderResult`.
Models: `smollm2-135m-instruct` and `smollm2-135m-instruct+ADAPTER` (see `honed.models.local.adapters`).

Loading is lazy (first request or token count) and happens once per provider instance; importing this
module imports neither torch nor transformers.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from honed.models import served
from honed.models.local import BASE_MODEL, AdapterResolver, Job, LocalModel, split_model_name
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
        job = self.job(model, request)
        out = await self.model.generate(job)
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
