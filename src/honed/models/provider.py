"""The provider plugin contract.

A provider turns a `ChatRequest` into a `ProviderResult` for one endpoint. It does not cache, retry, limit
concurrency or price: the `ModelClient` does that for every provider alike. It raises `ProviderError`
(with `retryable` set for 429, 5xx, timeouts and dropped connections) and nothing foreign.

Providers are plugins: a module exposes `register(registry)` and is named in the `honed.providers` entry
point group. The built-in `openai`, `local` and `scripted` providers register exactly that way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from honed.models.types import ChatRequest, Message, ProviderResult

if TYPE_CHECKING:
    from honed.config import EndpointConfig, Settings


class Provider(ABC):
    """One endpoint's way of running chat requests."""

    #: concurrent requests this endpoint accepts when the endpoint config does not say
    default_max_concurrency: int = 16
    #: whether requests with `tools` can run here (the client refuses them before calling otherwise)
    supports_tools: bool = False
    #: whether concurrent calls run together in batches, so a call's time in the model during a run is its
    #: batch's rather than its own (the run then times a few calls one at a time: honed.experiments.latency)
    batches: bool = False

    @abstractmethod
    async def complete(self, model: str, request: ChatRequest) -> ProviderResult:
        """Run `request` with `model` (the part of the reference after `endpoint/`)."""

    async def stream(self, model: str, request: ChatRequest) -> AsyncIterator[str | ProviderResult]:
        """Run `request`, yielding the text as it is generated, then the whole `ProviderResult` last.

        The pieces joined are the result's text. Default: the whole text as one piece, once `complete`
        returns (a provider that cannot stream still serves a streaming caller)."""
        result = await self.complete(model, request)
        if result.text:
            yield result.text
        yield result

    def count_tokens(self, model: str, messages: tuple[Message, ...] | list[Message]) -> int:
        """Prompt tokens for `messages`, offline. Default: tiktoken's o200k/cl100k encodings."""
        from honed.models.tokens import count_messages

        return count_messages(model, messages)

    def count_text_tokens(self, model: str, text: str) -> int:
        from honed.models.tokens import count_text

        return count_text(model, text)

    def model_identity(self, model: str) -> str | None:
        """What identifies `model`'s weights beyond its name, for the response cache key (e.g. a hash of a
        LoRA adapter's files, so a retrained adapter under the same name is not served old answers).
        None (the default) when the name is the identity, as for hosted APIs."""
        return None

    def warm(self) -> None:  # noqa: B027 - optional hook
        """Load whatever the first call would (e.g. model weights), so that call is not slow."""

    def preflight(self) -> None:  # noqa: B027 - optional hook
        """Fail fast, before any work, on what can be checked without a call (e.g. a missing API key)."""

    async def list_models(self) -> list[str]:
        """Models this endpoint serves, where it can say without a call; default: none known."""
        return []

    async def aclose(self) -> None:  # noqa: B027 - optional hook; most providers hold nothing to release
        """Release connections, threads or model memory."""


ProviderFactory = Callable[["str", "EndpointConfig", "Settings"], Provider]
"""`factory(endpoint_name, endpoint_config, settings)` builds a provider for one endpoint."""


@dataclass
class ProviderSpec:
    kind: str
    factory: ProviderFactory
    #: endpoints this provider brings with it (e.g. `openai` -> api.openai.com), as raw config mappings
    default_endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""
