"""The vector stores honed ships, registered like any plugin (`honed.vector_stores` entry point).

The factories import their client libraries only when a store of their type is opened."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from honed.rag.index.stores.registry import VectorStoreRegistry
from honed.rag.types import VectorStore

CHROMA_OPTIONS = ("path", "url", "ef_search", "ef_construction", "max_neighbors")
QDRANT_OPTIONS = ("path", "url", "api_key_env", "hnsw_ef", "exact")


def _chroma(config: Mapping[str, Any], *, collection: str, dimension: int, root: Path | None) -> VectorStore:
    from honed.rag.index.stores.chroma import open_chroma

    return open_chroma(config, collection=collection, dimension=dimension, root=root)


def _qdrant(config: Mapping[str, Any], *, collection: str, dimension: int, root: Path | None) -> VectorStore:
    from honed.rag.index.stores.qdrant import open_qdrant

    return open_qdrant(config, collection=collection, dimension=dimension, root=root)


def register(registry: VectorStoreRegistry) -> None:
    registry.add_vector_store(
        "chroma",
        _chroma,
        description="Chroma, embedded in a folder (path) or a server (url); HNSW, cosine",
        options=CHROMA_OPTIONS,
    )
    registry.add_vector_store(
        "qdrant",
        _qdrant,
        description="Qdrant, local mode in a folder (path; exact, for small collections) or a server (url)",
        options=QDRANT_OPTIONS,
    )
