"""The built-in embedder kinds: `local` (sentence-transformers on the CPU) and `openai` (any
OpenAI-compatible endpoint). Factories import their heavy modules only when an embedder is built."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from honed.config import Settings
    from honed.rag.index.embedders.registry import EmbedderRef, EmbedderRegistry
    from honed.rag.types import Embedder


def _local(ref: EmbedderRef, settings: Settings) -> Embedder:
    from honed.rag.index.embedders import local

    return local.create(ref, settings)


def _local_available(settings: Settings) -> list[str]:
    from honed.rag.index.embedders import local

    return local.available(settings)


def _openai(ref: EmbedderRef, settings: Settings) -> Embedder:
    from honed.rag.index.embedders import openai

    return openai.create(ref, settings)


def register(registry: EmbedderRegistry) -> None:
    registry.add_embedder(
        "local",
        _local,
        default_endpoints={"local": {}},
        description="sentence-transformers models on the CPU: the packaged all-MiniLM-L6-v2, "
        "fine-tuned ones saved in the workspace, or a model folder",
        available=_local_available,
    )
    registry.add_embedder(
        "openai",
        _openai,
        default_endpoints={
            "openai": {"base_url": "https://api.openai.com/v1", "api_key_env": "OPENAI_API_KEY"}
        },
        description="any OpenAI-compatible /embeddings endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp)",
    )
