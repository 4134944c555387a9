"""Shared fixtures for the embedded local model: one loaded provider per test session.

The model is converted into the per-user model cache (or HONED_MODEL_CACHE) once per machine, and loaded
once per session here, so the local tests pay ~20 s only on a machine's very first run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from honed.config import EndpointConfig, LocalConfig, Settings
from honed.models.providers.local import LocalProvider


def local_settings(**local: Any) -> Settings:
    cache = os.environ.get("HONED_MODEL_CACHE")
    return Settings(local=LocalConfig(cache_dir=Path(cache) if cache else None, **local))


def make_local_provider(settings: Settings | None = None, **options: Any) -> LocalProvider:
    """A provider built through the plugin factory, as the model client builds it."""
    endpoint = EndpointConfig(provider="local", **options)
    return LocalProvider.from_config("local", endpoint, settings or local_settings())


@pytest.fixture(scope="session")
def local_provider() -> Iterator[LocalProvider]:
    """The session's loaded local provider (its engine thread serves every test's event loop)."""
    provider = make_local_provider()
    provider.model.load()
    yield provider
    asyncio.run(provider.aclose())
