"""`Closing`: the one way honed's resources (the store, a workspace, a log writer, a renderer, a SQL
source) work as context managers: a `with` block gives the object itself and closes it on the way out,
as `contextlib.closing` does, without each class writing its own `__enter__` and `__exit__`."""

from __future__ import annotations

from typing import Self

__all__ = ["Closing"]


class Closing:
    """A base for a class with a `close()` that may be called more than once: `with obj:` closes it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
