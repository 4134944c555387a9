"""Vector stores: a registry of store types (Chroma and Qdrant built in, more as plugins) and
`open_vector_store`, which turns a knowledge base's store settings into an open `VectorStore`."""

from honed.rag.index.stores.registry import (
    VectorStoreFactory,
    VectorStoreRegistry,
    builtin_registry,
    default_registry,
    open_vector_store,
)

__all__ = [
    "VectorStoreFactory",
    "VectorStoreRegistry",
    "builtin_registry",
    "default_registry",
    "open_vector_store",
]
