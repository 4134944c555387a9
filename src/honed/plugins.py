"""Plugins: the one registry every extensible kind of thing uses (providers, evaluators, embedders, vector
stores, trainers), and the one place entry points are read.

A plugin is a function `register(registry)` named in an entry-point group (`honed.providers`,
`honed.evaluators`, `honed.embedders`, `honed.vector_stores`, `honed.trainers`); honed's built-ins are
such functions too, and each domain's `default_registry()` calls them first, then the installed plugins.
Discovery happens when a registry is first looked into, never at import time, and a plugin that fails to
load is kept as an error under its entry-point name: it fails when it is asked for, not before, and the
"unknown" error lists it beside the names that are known.

Each domain keeps a typed subclass (`ProviderRegistry(Registry[ProviderSpec])`, ...) whose `add_*` method
is the hook its plugins call and whose lookups add what is particular to it (endpoints, building an
evaluator from a spec); the bookkeeping lives here once.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from honed.errors import ConfigError, InvalidInputError

__all__ = ["Registry", "load_entry_points", "populated", "registries"]

T = TypeVar("T")
R = TypeVar("R", bound="Registry[Any]")
R_co = TypeVar("R_co", bound="Registry[Any]", covariant=True)


def load_entry_points(group: str, what: str, registry: object) -> dict[str, ConfigError]:
    """Call every `register(registry)` in `group`. A plugin that fails to load is returned as an error by
    entry-point name instead of raised: a broken plugin must not take the others down, it fails when used."""
    failed: dict[str, ConfigError] = {}
    for ep in importlib.metadata.entry_points(group=group):
        try:
            ep.load()(registry)
        except Exception as exc:
            failed[ep.name] = ConfigError(
                f"{what} plugin {ep.name!r} ({ep.value}) failed to load: {exc}",
                hint="reinstall or uninstall that plugin",
            )
    return failed


class Registry(Generic[T]):
    """Things of one kind by name: built-ins and plugins registered alike, plugins discovered on first use.

    `group` is the entry-point group read for plugins (None: built-ins only, e.g. a test's registry);
    `noun` names the kind in messages ("evaluator type", "provider")."""

    def __init__(self, noun: str, group: str | None) -> None:
        self.noun = noun
        self.group = group
        self._items: dict[str, T] = {}
        self._failed: dict[str, ConfigError] = {}
        self._loaded = group is None

    def register(self, name: str, item: T) -> None:
        """Add `item` under `name`; a later registration of the same name replaces the earlier one."""
        self._items[name] = item

    def load_plugins(self) -> None:
        """Read the entry-point group, once."""
        if self._loaded:
            return
        self._loaded = True
        assert self.group is not None
        self._failed.update(load_entry_points(self.group, self.noun, self))

    def get(self, name: str) -> T:
        """The item registered as `name`; a plugin of that name that failed to load raises its error, and
        an unknown name `unknown(name)`."""
        self.load_plugins()
        found = self._items.get(name)
        if found is not None:
            return found
        if name in self._failed:
            raise self._failed[name]
        raise self.unknown(name)

    def unknown(self, name: str) -> InvalidInputError:
        """The one error for a name nothing registered: the names that are, and the plugins that failed."""
        hint = f"known: {', '.join(self.names()) or 'none'}"
        if self._failed:
            hint += "; failed to load: " + ", ".join(f"{n} ({e.message})" for n, e in self._failed.items())
        return InvalidInputError(f"unknown {self.noun} {name!r}", hint=hint)

    def failure(self, name: str) -> ConfigError | None:
        """The load error of the plugin named `name`, if it failed."""
        self.load_plugins()
        return self._failed.get(name)

    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        self.load_plugins()
        return sorted(self._items.items(), key=lambda pair: pair[0])

    def __contains__(self, name: object) -> bool:
        self.load_plugins()
        return name in self._items


def populated(registry: R, register: Callable[[R], None]) -> R:
    """`registry` after the built-ins' `register` ran on it (plugins, if it reads any, come on first use)."""
    register(registry)
    return registry


class _Make(Protocol[R_co]):
    """A registry class: `plugins=False` makes one that reads no entry points."""

    def __call__(self, *, plugins: bool) -> R_co: ...


def registries(make: _Make[R], register: Callable[[R], None]) -> tuple[Callable[[], R], Callable[[], R]]:
    """A kind's `builtin_registry()` and `default_registry()`: a fresh registry with exactly the built-ins
    (no plugins), and the process-wide one, made on first use: the built-ins, then whatever plugins are
    installed. `register` adds the built-ins; it imports them when called, as they import their domain."""

    def builtin_registry() -> R:
        return populated(make(plugins=False), register)

    @functools.cache
    def default_registry() -> R:
        return populated(make(plugins=True), register)

    return builtin_registry, default_registry
