"""Where providers are registered and model references are resolved to (endpoint, model).

Providers are plugins (`honed.plugins`): a module's `register(registry)` calls `add_provider`, named in
the `honed.providers` entry-point group; the built-ins (openai-compatible, local, scripted) register the
same way. Tests and applications can also call `registry.add_provider(...)` directly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from honed.errors import UnknownModelError
from honed.models.provider import ProviderFactory, ProviderSpec
from honed.plugins import Registry as PluginRegistry
from honed.plugins import populated

ENTRY_POINT_GROUP = "honed.providers"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model reference: `endpoint/model`, e.g. `vllm/llama-3.1-8b`."""

    endpoint: str
    model: str

    @classmethod
    def parse(cls, ref: str) -> ModelRef:
        endpoint, sep, model = ref.partition("/")
        if not sep or not endpoint or not model:
            raise UnknownModelError(
                f"model reference {ref!r} is not of the form ENDPOINT/MODEL",
                hint="e.g. local/smollm2-135m-instruct, openai/gpt-4o-mini or vllm/llama-3.1-8b",
            )
        return cls(endpoint, model)

    def __str__(self) -> str:
        return f"{self.endpoint}/{self.model}"


class ProviderRegistry(PluginRegistry[ProviderSpec]):
    """Provider kinds by name. `add_provider` is the hook plugins call."""

    def __init__(self, *, plugins: bool = True) -> None:
        super().__init__("provider", ENTRY_POINT_GROUP if plugins else None)

    def add_provider(
        self,
        kind: str,
        factory: ProviderFactory,
        *,
        default_endpoints: dict[str, dict[str, Any]] | None = None,
        description: str = "",
    ) -> None:
        """Register a provider kind; `default_endpoints` are endpoints it brings without configuration."""
        self.register(kind, ProviderSpec(kind, factory, dict(default_endpoints or {}), description))

    def spec(self, kind: str) -> ProviderSpec:
        return self.get(kind)

    def kinds(self) -> list[str]:
        return self.names()

    def default_endpoints(self) -> dict[str, dict[str, Any]]:
        """Endpoints the installed providers bring, before `honed.toml` adds or overrides any."""
        out: dict[str, dict[str, Any]] = {}
        for _, spec in self.items():
            for name, cfg in spec.default_endpoints.items():
                out[name] = {"provider": spec.kind, **cfg}
        return out


#: The name the providers' `register(registry)` functions are typed against.
Registry = ProviderRegistry


def builtin_registry() -> ProviderRegistry:
    """A registry with exactly the built-in providers (no plugins)."""
    from honed.models.providers import builtins

    return populated(ProviderRegistry(plugins=False), builtins.register)


@functools.cache
def default_registry() -> ProviderRegistry:
    """The process-wide registry: the built-in providers, then whatever plugins are installed."""
    from honed.models.providers import builtins

    return populated(ProviderRegistry(), builtins.register)
