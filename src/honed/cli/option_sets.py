"""Option sets: a group of options that several commands share (the log filters, a knowledge base's
config), declared once and handed to each command as one value.

Typer builds a command's options from its function's signature, so a set cannot simply be a parameter.
`OptionSet.into(name)` rewrites the signature instead: the set's options stand where the parameter `name`
stood (so `--help` lists them in that place), and the command receives them gathered into that one
parameter, as the set's `build` makes them. The command's own code never sees the single options.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import typer

__all__ = ["OptionSet", "unset"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class OptionSet(Generic[T]):
    """`options` maps a parameter name to its type and its `typer.Option(...)`, in `--help` order;
    `build` takes them all as keywords and makes the value a command receives."""

    options: Mapping[str, tuple[object, Any]]
    build: Callable[..., T]

    def without(self, *names: str) -> OptionSet[T]:
        """The set less `names` (`build` gets its defaults for them)."""
        missing = set(names) - set(self.options)
        assert not missing, f"no such options: {missing}"  # a typo would silently keep the option
        return OptionSet({k: v for k, v in self.options.items() if k not in names}, self.build)

    def into(self, name: str) -> Callable[[Callable[..., R]], Callable[..., R]]:
        """A decorator: the command's parameter `name` becomes this set's options."""

        def decorate(command: Callable[..., R]) -> Callable[..., R]:
            signature = inspect.signature(command)
            params = list(signature.parameters.values())
            at = [p.name for p in params].index(name)
            kind = params[at].kind
            added = [
                inspect.Parameter(option, kind, default=default, annotation=annotation)
                for option, (annotation, default) in self.options.items()
            ]

            @functools.wraps(command)
            def wrapper(**given: Any) -> R:
                values = {option: given.pop(option) for option in self.options}
                return command(**given, **{name: self.build(**values)})

            # Typer reads the signature for the options and resolves their types from `__annotations__`
            # (the command's own stay strings, resolved in its module).
            wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
                parameters=[*params[:at], *added, *params[at + 1 :]]
            )
            annotations = {k: v for k, v in command.__annotations__.items() if k != name}
            wrapper.__annotations__ = {**annotations, **{o: t for o, (t, _) in self.options.items()}}
            return wrapper

        return decorate


def unset(flag: str, help: str, kind: object = str | None, **more: Any) -> tuple[object, Any]:
    """An `OptionSet` entry for an option that is `None` unless given, the common kind."""
    return kind, typer.Option(None, flag, help=help, **more)
