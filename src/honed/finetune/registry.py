"""Where training backends are registered and looked up by name (`local`, `openai`, plugins).

Backends are plugins: a module exposes `register(registry)`, calls `registry.add(backend)`, and is named
in the `honed.trainers` entry-point group, discovered the first time the registry is used. The built-ins
register the same way and are also added directly, so they work without package metadata.
"""

from __future__ import annotations

from honed.finetune.backend import ENTRY_POINT_GROUP, TrainingBackend
from honed.plugins import Registry, registries


class TrainerRegistry(Registry[TrainingBackend]):
    """Training backends by name. `add` is the hook plugins call."""

    def __init__(self, *, plugins: bool = True) -> None:
        super().__init__("training backend", ENTRY_POINT_GROUP if plugins else None)

    def add(self, backend: TrainingBackend) -> None:
        """Register `backend` under `backend.name`; a later registration replaces an earlier one.

        Constructing a backend must be cheap (no heavy imports): every `honed finetune` command builds
        the registry."""
        self.register(backend.name, backend)


def _builtins(registry: TrainerRegistry) -> None:
    from honed.finetune import builtins

    builtins.register(registry)


builtin_registry, default_registry = registries(TrainerRegistry, _builtins)


def get_backend(name: str, *, registry: TrainerRegistry | None = None) -> TrainingBackend:
    """The training backend `name` (`local`, `openai`, or a plugin's)."""
    return (registry or default_registry()).get(name)
