"""Fakes for tests of code that uses honed, shipped in the package (never used by honed itself)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from honed.models.providers.scripted import Paced, Script, clear_script, set_script

__all__ = ["Paced", "scripted"]


@contextmanager
def scripted(name: str, script: Script) -> Iterator[str]:
    """Within the block, `scripted/NAME` answers from `script` (a list of replies, in turn, or a function
    of the request; an exception instance in the list is raised; a `Paced` reply streams a word at a
    time). Yields the model reference."""
    set_script(name, script)
    try:
        yield f"scripted/{name}"
    finally:
        clear_script(name)
