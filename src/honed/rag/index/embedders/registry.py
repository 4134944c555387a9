"""Where embedder kinds are registered and embedder references are resolved.

A reference is `ENDPOINT/MODEL`, like a chat model's: `local/all-MiniLM-L6-v2`, `local/my-finetune`,
`openai/text-embedding-3-small`, or `vllm/bge-m3` for an endpoint configured in honed.toml. A reference
without a slash is a local model (`all-MiniLM-L6-v2`). The endpoint's `provider` picks the embedder kind;
kinds bring default endpoints (`local`, `openai`) that `[endpoints.NAME]` in honed.toml overlays, as
for chat models.

Kinds are plugins: a module exposes `register(registry)` and is named in the `honed.embedders`
entry-point group, discovered the first time a registry is used. The built-ins register the same way
(`honed.rag.index.embedders.builtins:register`) and are also added directly, so they work without package
metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from honed.config import EndpointConfig
from honed.errors import InvalidInputError, UnknownModelError
from honed.plugins import Registry, registries

if TYPE_CHECKING:
    from honed.config import Settings
    from honed.rag.types import Embedder

ENTRY_POINT_GROUP = "honed.embedders"
DEFAULT_EMBEDDER = "local/all-MiniLM-L6-v2"


@dataclass(frozen=True, slots=True)
class EmbedderRef:
    """A resolved reference: the endpoint's name and settings, the model, and the caller's options."""

    endpoint: str
    model: str
    config: EndpointConfig
    options: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.endpoint}/{self.model}"

    def check_options(self, allowed: tuple[str, ...]) -> None:
        """For factories: reject option keys they don't know, naming them."""
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            raise InvalidInputError(
                f"embedder {str(self)!r}: unknown option(s) {', '.join(map(repr, unknown))}",
                hint=f"{self.config.provider!r} embedders accept: {', '.join(allowed) or 'no options'}",
            )


EmbedderFactory = Callable[[EmbedderRef, "Settings"], "Embedder"]
"""`factory(ref, settings)` builds an embedder for one reference."""

ModelLister = Callable[["Settings"], list[str]]
"""`lister(settings)` names the models of a kind that are available without a network call."""


@dataclass(frozen=True, slots=True)
class EmbedderSpec:
    kind: str
    factory: EmbedderFactory
    default_endpoints: dict[str, dict[str, Any]]
    description: str = ""
    available: ModelLister | None = None


class EmbedderRegistry(Registry[EmbedderSpec]):
    """Embedder kinds by provider name. `add_embedder` is the hook plugins call."""

    def __init__(self, *, plugins: bool = True) -> None:
        super().__init__("embedder", ENTRY_POINT_GROUP if plugins else None)

    def add_embedder(
        self,
        kind: str,
        factory: EmbedderFactory,
        *,
        default_endpoints: dict[str, dict[str, Any]] | None = None,
        description: str = "",
        available: ModelLister | None = None,
    ) -> None:
        """Register an embedder kind (an endpoint `provider`); a later registration replaces an earlier one.
        `default_endpoints` are endpoints it brings without configuration; `available` lists references
        for error messages."""
        self.register(
            kind, EmbedderSpec(kind, factory, dict(default_endpoints or {}), description, available)
        )

    def kinds(self) -> list[str]:
        return self.names()

    def endpoints(self, settings: Settings) -> dict[str, EndpointConfig]:
        """Endpoints whose provider has an embedder: the kinds' defaults overlaid by honed.toml."""
        from honed.models.endpoints import merge_endpoints  # the one merge chat endpoints use too

        defaults = {
            name: {"provider": spec.kind, **raw}
            for _, spec in self.items()
            for name, raw in spec.default_endpoints.items()
        }
        merged = merge_endpoints(defaults, settings)
        return {name: cfg for name, cfg in merged.items() if cfg.provider in self}

    def available(self, settings: Settings) -> list[str]:
        """References that can be built here (local models), then a pattern for each remote endpoint."""
        names: list[str] = []
        for _, spec in self.items():
            if spec.available is not None:
                names.extend(spec.available(settings))
        for name, cfg in sorted(self.endpoints(settings).items()):
            if self.get(cfg.provider).available is None:
                names.append(f"{name}/MODEL")
        return names

    def resolve(self, ref: str, settings: Settings, options: Mapping[str, Any] | None = None) -> EmbedderRef:
        if not isinstance(ref, str) or not ref.strip():
            available = ", ".join(self.available(settings))
            raise UnknownModelError(f"embedder reference {ref!r} is empty", hint=f"available: {available}")
        endpoint, sep, model = ref.partition("/")
        if not sep:
            endpoint, model = "local", ref
        endpoints = self.endpoints(settings)
        config = endpoints.get(endpoint)
        if config is None or not model:
            other = settings.endpoints.get(endpoint)
            why = (
                f"endpoint {endpoint!r} uses provider {other.provider!r}, which has no embeddings"
                if other is not None
                else f"unknown embedder {ref!r}"
            )
            failed = self.failure(other.provider if other is not None else endpoint)
            if failed is not None:
                raise failed
            raise UnknownModelError(why, hint=f"available: {', '.join(self.available(settings))}")
        return EmbedderRef(endpoint, model, config, dict(options or {}))

    def build(self, ref: str, settings: Settings, options: Mapping[str, Any] | None = None) -> Embedder:
        resolved = self.resolve(ref, settings, options)
        return self.get(resolved.config.provider).factory(resolved, settings)


def _builtins(registry: EmbedderRegistry) -> None:
    from honed.rag.index.embedders import builtins

    builtins.register(registry)


builtin_registry, default_registry = registries(EmbedderRegistry, _builtins)


def build_embedder(
    ref: str,
    settings: Settings,
    *,
    options: Mapping[str, Any] | None = None,
    registry: EmbedderRegistry | None = None,
) -> Embedder:
    """The embedder `ref` names (`local/all-MiniLM-L6-v2`, `local/NAME`, `openai/MODEL`, `ENDPOINT/MODEL`).

    `options` are the kind's own settings (`batch_size`; `dimensions` for OpenAI-compatible endpoints).
    An unknown reference is an `UnknownModelError` listing what is available."""
    return (registry or default_registry()).build(ref, settings, options)
