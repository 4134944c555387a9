"""Where training backends are registered and looked up by name (`local`, `openai`, plugins).

Backends are plugins: a module exposes `register(registry)`, calls `registry.add(backend)`, and is named
in the `honed.trainers` entry-point group, discovered the first time the registry is used. The built-ins
register the same way and are also added directly, so they work without package metadata.
"""

from __future__ import annotations

from honed.errors import ConfigError, InvalidInputError
from honed.finetune.backend import ENTRY_POINT_GROUP, TrainingBackend
from honed.plugins import load_entry_points


class TrainerRegistry:
    """Training backends by name. `add` is the hook plugins call."""

    def __init__(self, *, plugins: bool = True) -> None:
        self._backends: dict[str, TrainingBackend] = {}
        self._loaded = not plugins
        self._failed: dict[str, ConfigError] = {}

    def add(self, backend: TrainingBackend) -> None:
        """Register `backend` under `backend.name`; a later registration replaces an earlier one.

        Constructing a backend must be cheap (no heavy imports): every `honed finetune` command builds
        the registry."""
        self._backends[backend.name] = backend

    def load_plugins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        self._failed.update(load_entry_points(ENTRY_POINT_GROUP, "training backend", self))

    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._backends)

    def get(self, name: str) -> TrainingBackend:
        """The backend called `name`; InvalidInputError naming the available ones if there is none."""
        self.load_plugins()
        backend = self._backends.get(name)
        if backend is None:
            if name in self._failed:
                raise self._failed[name]
            raise InvalidInputError(
                f"no training backend {name!r}", hint=f"available: {', '.join(self.names()) or 'none'}"
            )
        return backend


_default: TrainerRegistry | None = None


def default_registry() -> TrainerRegistry:
    """The process-wide registry: the built-ins, then whatever plugins are installed."""
    global _default
    if _default is None:
        from honed.finetune import builtins

        _default = TrainerRegistry()
        builtins.register(_default)
    return _default


def get_backend(name: str, *, registry: TrainerRegistry | None = None) -> TrainingBackend:
    """The training backend `name` (`local`, `openai`, or a plugin's)."""
    return (registry or default_registry()).get(name)
