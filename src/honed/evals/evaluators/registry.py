"""Where evaluator types are registered and specs are turned into evaluators.

Evaluators are plugins, like providers: a module exposes `register(registry)` and is named in the
`honed.evaluators` entry-point group; plugins are discovered the first time a registry is used, never at
import time. The built-ins register the same way (`honed.evals.evaluators.builtins:register`), and
`builtin_registry()` adds them directly too, so they work whether or not the package metadata is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from honed.errors import InvalidInputError
from honed.evals.evaluators.base import BuildContext, Evaluator
from honed.plugins import Registry, registries

ENTRY_POINT_GROUP = "honed.evaluators"

EvaluatorFactory = Callable[[Mapping[str, Any], BuildContext], Evaluator]
"""`factory(config, context)` builds an evaluator from a spec's keys (without `type`)."""


@dataclass(frozen=True, slots=True)
class EvaluatorSpec:
    kind: str
    factory: EvaluatorFactory
    description: str = ""


class EvaluatorRegistry(Registry[EvaluatorSpec]):
    """Evaluator types by name. `add_evaluator` is the hook plugins call."""

    def __init__(self, *, plugins: bool = True) -> None:
        super().__init__("evaluator type", ENTRY_POINT_GROUP if plugins else None)

    def add_evaluator(self, kind: str, factory: EvaluatorFactory, *, description: str = "") -> None:
        """Register an evaluator type; a later registration of the same name replaces the earlier one."""
        self.register(kind, EvaluatorSpec(kind, factory, description))

    def spec(self, kind: str) -> EvaluatorSpec:
        return self.get(kind)

    def kinds(self) -> list[str]:
        return self.names()

    def build(self, spec: Mapping[str, Any], context: BuildContext | None = None) -> Evaluator:
        """An evaluator from a spec such as `{"type": "regex", "pattern": "^yes"}`."""
        if not isinstance(spec, Mapping):
            raise InvalidInputError(
                f"an evaluator spec must be a mapping, not {spec!r}", hint='e.g. {"type": "exact"}'
            )
        kind = spec.get("type")
        if not isinstance(kind, str):
            raise InvalidInputError(
                f"evaluator spec {dict(spec)!r} has no 'type'", hint=f"known types: {', '.join(self.kinds())}"
            )
        config = {k: v for k, v in spec.items() if k != "type"}
        return self.spec(kind).factory(config, context or BuildContext())


def _builtins(registry: EvaluatorRegistry) -> None:
    from honed.evals.evaluators import builtins

    builtins.register(registry)


builtin_registry, default_registry = registries(EvaluatorRegistry, _builtins)


def build_evaluator(
    spec: Mapping[str, Any], *, context: BuildContext | None = None, registry: EvaluatorRegistry | None = None
) -> Evaluator:
    """An evaluator from its spec; unknown types and keys are `InvalidInputError`s naming them."""
    return (registry or default_registry()).build(spec, context)
