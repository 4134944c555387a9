"""`honed.connect()`: the Python entry point. The CLI and the HTTP server use the same object."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honed.config import Settings, load_settings
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, Completion, Message, Params

if TYPE_CHECKING:
    from honed.store import Store


class Honed:
    """A workspace's settings, store and model client, opened lazily.

    Outside a workspace (no honed.toml, no HONED_DATABASE_URL) it still calls models, without a store and
    so without the response cache.
    """

    def __init__(self, settings: Settings, *, use_cache: bool | None = None) -> None:
        self.settings = settings
        self._use_cache = use_cache
        self._store: Store | None = None
        self._client: ModelClient | None = None

    @property
    def has_store(self) -> bool:
        return self.settings.root is not None or self.settings.database_url is not None

    @property
    def store(self) -> Store:
        if self._store is None:
            from honed.store import Store

            self._store = Store.open(self.settings.resolved_database_url())
        return self._store

    @property
    def client(self) -> ModelClient:
        if self._client is None:
            store = self.store if self.has_store else None
            self._client = ModelClient(self.settings, store=store, use_cache=self._use_cache)
        return self._client

    def complete(
        self,
        model: str | None,
        messages: Sequence[Message] | str,
        params: Params | Mapping[str, Any] | None = None,
        *,
        response_schema: dict[str, Any] | None = None,
        sample_index: int = 0,
    ) -> Completion:
        """Run one chat request synchronously; raises a `HonedError` on failure."""
        request = ChatRequest.of(
            model or self.settings.default_model,
            messages if isinstance(messages, str) else list(messages),
            params if isinstance(params, Params) or params is None else dict(params),
            response_schema=response_schema,
            sample_index=sample_index,
        )

        async def main() -> Completion:
            try:
                return await self.client.complete(request)
            finally:
                await self.client.aclose()

        return asyncio.run(main())

    def close(self) -> None:
        if self._client is not None:
            self._client.flush()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Honed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(path: str | Path | None = None, *, use_cache: bool | None = None, **overrides: Any) -> Honed:
    """Open the workspace around `path` (default: the current folder, or HONED_HOME).

    `overrides` take precedence over everything else, e.g. `connect(database_url="postgresql://...")`.
    """
    settings = load_settings(overrides, start=Path(path) if path else None)
    return Honed(settings, use_cache=use_cache)
