"""What the domain code (experiments, RAG, fine-tuning, optimisation, online evaluation) needs of a workspace.

The domain takes a `Workspace`, not the `honed.api.Honed` facade, so it does not depend on the facade's
logging and convenience methods, and a test or another front end can pass any object with these members.
`Honed` satisfies it structurally; mypy checks that at every call site.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from honed.config import Settings
    from honed.models.client import ModelClient
    from honed.store import Store

__all__ = ["Workspace"]


class Workspace(Protocol):
    """A workspace's configuration, storage and model access.

    The members are read-only properties so an implementation may open the store and client lazily, as
    `Honed` does.
    """

    @property
    def settings(self) -> Settings:
        """Resolved configuration: the workspace root (relative paths in specs), model aliases and
        endpoints, prices, embedder and vector-store settings, budgets."""
        ...

    @property
    def store(self) -> Store:
        """The database: prompt and dataset versions, runs and results, logs, jobs, knowledge bases."""
        ...

    @property
    def client(self) -> ModelClient:
        """The model client every chat call goes through (cache, limits, retries, call logging)."""
        ...

    def flush_logs(self) -> None:
        """Wait until the generations this process has logged are in the store (online evaluation scores
        what was logged a moment ago)."""
        ...
