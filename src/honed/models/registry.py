"""Where providers are registered and model references are resolved to (endpoint, model).

Plugins are discovered from the `honed.providers` entry point group the first time a registry is used,
never at import time. Tests and applications can also call `registry.add_provider(...)` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from honed.errors import ConfigError, UnknownModelError
from honed.models.provider import ProviderFactory, ProviderSpec
from honed.plugins import load_entry_points

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


class Registry:
    """Provider kinds by name. `add_provider` is the hook plugins call."""

    def __init__(self) -> None:
        self._specs: dict[str, ProviderSpec] = {}
        self._loaded = False
        self._failed: dict[str, ConfigError] = {}

    def add_provider(
        self,
        kind: str,
        factory: ProviderFactory,
        *,
        default_endpoints: dict[str, dict[str, Any]] | None = None,
        description: str = "",
    ) -> None:
        """Register a provider kind; `default_endpoints` are endpoints it brings without configuration."""
        self._specs[kind] = ProviderSpec(kind, factory, dict(default_endpoints or {}), description)

    def load_plugins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        self._failed.update(load_entry_points(ENTRY_POINT_GROUP, "provider", self))

    def spec(self, kind: str) -> ProviderSpec:
        self.load_plugins()
        try:
            return self._specs[kind]
        except KeyError:
            if kind in self._failed:
                raise self._failed[kind] from None
            known = ", ".join(sorted(self._specs)) or "none"
            raise ConfigError(
                f"no provider plugin named {kind!r} is installed",
                hint=f"installed providers: {known}",
            ) from None

    def kinds(self) -> list[str]:
        self.load_plugins()
        return sorted(self._specs)

    def default_endpoints(self) -> dict[str, dict[str, Any]]:
        """Endpoints the installed providers bring, before `honed.toml` adds or overrides any."""
        self.load_plugins()
        out: dict[str, dict[str, Any]] = {}
        for spec in self._specs.values():
            for name, cfg in spec.default_endpoints.items():
                out[name] = {"provider": spec.kind, **cfg}
        return out


_default_registry: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry the CLI and `honed.connect()` use."""
    global _default_registry
    if _default_registry is None:
        _default_registry = Registry()
    return _default_registry
