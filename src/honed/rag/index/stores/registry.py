"""Where vector store types are registered and store configs are turned into open stores.

Stores are plugins, like evaluators: a module exposes `register(registry)` and is named in the
`honed.vector_stores` entry-point group; plugins are discovered the first time a registry is used, never
at import time. The built-ins (chroma, qdrant) register the same way, and import their client libraries
only when a store of their type is opened.

The helpers below the registry are what every store needs and must do alike (collection names, metadata a
store can hold, vector shapes), so that switching store types never changes what a filter matches.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from honed.errors import InvalidInputError, RetrievalError
from honed.plugins import Registry, registries
from honed.rag.types import Chunk, Vectors, VectorStore

ENTRY_POINT_GROUP = "honed.vector_stores"
DEFAULT_TYPE = "chroma"


class VectorStoreFactory(Protocol):
    """`factory(config, collection=..., dimension=..., root=...)` opens (creating if needed) one collection.

    `config` is the store's settings without `type`; `root` is the workspace's data folder, where
    embedded stores keep their files unless `config` names a path (None: there is no workspace)."""

    def __call__(
        self, config: Mapping[str, Any], *, collection: str, dimension: int, root: Path | None
    ) -> VectorStore: ...


@dataclass(frozen=True, slots=True)
class VectorStoreSpec:
    kind: str
    factory: VectorStoreFactory
    description: str = ""
    options: frozenset[str] | None = None  # None: the factory checks its own keys


class VectorStoreRegistry(Registry[VectorStoreSpec]):
    """Vector store types by name. `add_vector_store` is the hook plugins call."""

    def __init__(self, *, plugins: bool = True) -> None:
        super().__init__("vector store type", ENTRY_POINT_GROUP if plugins else None)

    def add_vector_store(
        self,
        kind: str,
        factory: VectorStoreFactory,
        *,
        description: str = "",
        options: Collection[str] | None = None,
    ) -> None:
        """Register a store type; `options` are the config keys it accepts (besides `type`), so unknown
        keys are rejected before the factory runs. A later registration of the same name replaces it."""
        self.register(
            kind, VectorStoreSpec(kind, factory, description, None if options is None else frozenset(options))
        )

    def spec(self, kind: str) -> VectorStoreSpec:
        return self.get(kind)

    def kinds(self) -> list[str]:
        return self.names()

    def open(
        self, config: Mapping[str, Any], *, collection: str, dimension: int, root: Path | None
    ) -> VectorStore:
        """The store `config` describes (e.g. `{"type": "chroma", "path": "..."}`), holding `collection`."""
        if not isinstance(config, Mapping):
            raise InvalidInputError(
                f"a vector store config must be a mapping, not {config!r}", hint='e.g. {"type": "chroma"}'
            )
        kind = config.get("type", DEFAULT_TYPE)
        if not isinstance(kind, str):
            raise InvalidInputError(
                f"vector store type must be a string, not {kind!r}",
                hint=f"known types: {', '.join(self.kinds())}",
            )
        spec = self.spec(kind)
        options = {k: v for k, v in config.items() if k != "type"}
        if spec.options is not None:
            unknown = sorted(set(options) - spec.options)
            if unknown:
                raise InvalidInputError(
                    f"unknown {kind} vector store setting {unknown[0]!r}",
                    hint=f"accepted: type, {', '.join(sorted(spec.options))}",
                )
        if not isinstance(dimension, int) or dimension <= 0:
            raise InvalidInputError(f"vector dimension must be a positive integer, not {dimension!r}")
        return spec.factory(options, collection=collection, dimension=dimension, root=root)


def _builtins(registry: VectorStoreRegistry) -> None:
    from honed.rag.index.stores import builtins

    builtins.register(registry)


builtin_registry, default_registry = registries(VectorStoreRegistry, _builtins)


def open_vector_store(
    config: Mapping[str, Any],
    *,
    collection: str,
    dimension: int,
    root: Path | None,
    registry: VectorStoreRegistry | None = None,
) -> VectorStore:
    """Open (creating if needed) `collection` in the store `config` describes; `type` defaults to chroma.
    Unknown types and keys are `InvalidInputError`s naming them; an unreachable server or a collection
    built with another dimension is a `RetrievalError`."""
    return (registry or default_registry()).open(
        config, collection=collection, dimension=dimension, root=root
    )


# --- helpers shared by store implementations ---------------------------------------------------------

_NAME_OK = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9._-]{1,198})[a-zA-Z0-9]")


def collection_name(name: str) -> str:
    """A name every store accepts (Chroma's rule is the strictest: 3-512 characters of [a-zA-Z0-9._-],
    alphanumeric at both ends, no `..`; Qdrant allows at most 255). Names that already qualify (up to 200
    characters) are kept; others are cleaned and suffixed with a hash of the original, so two different
    names never clean to the same collection."""
    if _NAME_OK.fullmatch(name) and ".." not in name:
        return name
    clean = re.sub(r"[^a-zA-Z0-9._-]+", "_", name)
    clean = re.sub(r"\.{2,}", ".", clean)[:180].strip("._-")
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{clean}-{digest}" if clean else f"honed-{digest}"


def store_metadata(metadata: Mapping[str, Any], *, reserved: Collection[str] = ()) -> dict[str, Any]:
    """Chunk metadata as a store can hold it: scalar values as they are; lists and dicts as JSON text
    (Chroma rejects them, and Qdrant would match a list element-wise, which `filters.matches` does not);
    None dropped (a missing field and a None one satisfy exactly the same filters). Keys in `reserved`
    (the store's own bookkeeping fields) are dropped."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if value is None or key in reserved:
            continue
        if isinstance(value, str | int | float | bool):
            out[key] = value
        else:
            out[key] = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return out


def check_vectors(vectors: Vectors, rows: int | None, dimension: int, *, store: str) -> Vectors:
    """`vectors` as a 2-D float32 array of `rows` x `dimension` (a 1-D vector counts as one row), or a
    `RetrievalError` saying the collection was built for another dimension."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InvalidInputError(f"vectors must be a 1-D or 2-D array, not {array.ndim}-D")
    if rows is not None and array.shape[0] != rows:
        raise InvalidInputError(f"{rows} chunks but {array.shape[0]} vectors")
    if array.shape[1] != dimension:
        raise RetrievalError(
            f"{store} collection holds {dimension}-dimensional vectors, got {array.shape[1]}",
            hint="the embedder changed: rebuild the index with the new embedder",
        )
    return array


def last_wins(chunks: Sequence[Chunk], vectors: Vectors) -> tuple[list[Chunk], Vectors]:
    """Drop all but the last of repeated chunk ids (stores reject duplicates within one upsert)."""
    last = {chunk.id: i for i, chunk in enumerate(chunks)}
    if len(last) == len(chunks):
        return list(chunks), vectors
    keep = sorted(last.values())
    return [chunks[i] for i in keep], vectors[keep]
