"""Embedders: text -> unit-length float32 vectors, as plugins (`honed.embedders` entry points).

    embedder = CachedEmbedder(build_embedder("local/all-MiniLM-L6-v2", settings), store)
    vectors = embedder.embed(texts)

`build_embedder` resolves `local/all-MiniLM-L6-v2` (the default), `local/NAME` (fine-tuned in the
workspace with `finetune_embedder`, or a model folder), `openai/MODEL` and `ENDPOINT/MODEL`;
`CachedEmbedder` keeps vectors in the database so unchanged texts are never embedded twice.
Nothing heavy (torch, sentence-transformers) is imported until a model is built or trained.
"""

from __future__ import annotations

from honed.rag.index.embedders.cache import CachedEmbedder
from honed.rag.index.embedders.finetune import FinetunedEmbedder, finetune_embedder
from honed.rag.index.embedders.registry import (
    DEFAULT_EMBEDDER,
    EmbedderRef,
    EmbedderRegistry,
    build_embedder,
    default_registry,
)

__all__ = [
    "DEFAULT_EMBEDDER",
    "CachedEmbedder",
    "EmbedderRef",
    "EmbedderRegistry",
    "FinetunedEmbedder",
    "build_embedder",
    "default_registry",
    "finetune_embedder",
]
