"""The root command group, whose nouns are imported only when one of them is called.

Each noun's module imports the domain code it uses (SQLAlchemy, numpy, pydantic models, ...), ~100 modules
in all: importing every one to answer `honed --help` or to run `honed kb search` cost most of a second
before any work began. So the root group knows each noun by name, its module and its one-line help, and
imports a module the first time its command is resolved. `honed --help` lists the nouns from that table
without importing any of them (tests check that the table's help matches each command's own).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Entry:
    """A top-level command: `module:attribute` is a `typer.Typer` (a noun group) or a function (a verb);
    `help` is what `honed --help` lists for it; `extend` adds commands defined in other modules."""

    name: str
    target: str
    help: str
    extend: Callable[[typer.Typer], None] | None = None


class LazyGroup(TyperGroup):
    """A `TyperGroup` whose commands are `Entry`s, loaded on first use (`entries` is set on the class built
    by `lazy_group`). `prepare`, when set, is applied to each command once it is loaded."""

    entries: tuple[Entry, ...] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.prepare: Callable[[Any], None] | None = None
        self._listing = False
        # Placeholders carry the names (for listings and "Did you mean ...?") and the help lines.
        for entry in self.entries:
            self.commands[entry.name] = TyperCommand(entry.name, help=entry.help)
        self._loaded: set[str] = set()

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if self._listing or cmd_name in self._loaded:
            return self.commands.get(cmd_name)
        entry = next((e for e in self.entries if e.name == cmd_name), None)
        if entry is None:
            return self.commands.get(cmd_name)
        command = load(entry)
        if self.prepare is not None:
            self.prepare(command)
        self.commands[cmd_name] = command
        self._loaded.add(cmd_name)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def load(entry: Entry) -> Any:
    """The click command of `entry`, importing its module."""
    module_name, _, attribute = entry.target.partition(":")
    target = getattr(importlib.import_module(module_name), attribute)
    if isinstance(target, typer.Typer):
        if entry.extend is not None:
            entry.extend(target)
        # A noun is always a group: `get_command` would turn a Typer with one command into that command
        # (`honed config show` refused) and add shell-completion options to every noun.
        command: Any = typer.main.get_group(target)
    else:
        app = typer.Typer(add_completion=False)
        app.command(entry.name)(target)
        command = typer.main.get_command(app)
    command.name = entry.name
    return command


def lazy_group(entries: tuple[Entry, ...]) -> type[LazyGroup]:
    """A `LazyGroup` class over `entries`, for `typer.Typer(cls=...)`."""
    return type("HonedGroup", (LazyGroup,), {"entries": entries})
