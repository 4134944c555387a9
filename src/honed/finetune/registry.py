"""Where training backends are registered and looked up by name (`local`, `openai`, plugins).

Backends are plugins: a module exposes `register(registry)`, calls `registry.add(backend)`, and is named
in the `honed.trainers` entry-point group, discovered the first time the registry is used. The built-ins
register the same way and are also added directly, so they work without package metadata.
"""

from __future__ import annotations

from honed.finetune.backend import ENTRY_POINT_GROUP, TrainingBackend
from honed.plugins import Registry


class TrainerRegistry(Registry[TrainingBackend]):
    """Training backends by name. `add` is the hook plugins call."""

    def __init__(self, *, plugins: bool = True) -> None:
        super().__init__("training backend", ENTRY_POINT_GROUP if plugins else None)

    def add(self, backend: TrainingBackend) -> None:
        """Register `backend` under `backend.name`; a later registration replaces an earlier one.

        Constructing a backend must be cheap (no heavy imports): every `honed finetune` command builds
        the registry."""
        self.register(backend.name, backend)


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
