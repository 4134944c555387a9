"""Embeddings from any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp, `honed serve`).

`openai/MODEL` uses OpenAI itself (key in OPENAI_API_KEY); `NAME/MODEL` uses `[endpoints.NAME]` of
honed.toml when its provider is `openai`. The calls are honed.models.embeddings': the same endpoint
settings (base_url, api_key_env, timeout_s, max_concurrency, headers), API key lookup, retry policy, error
messages and price table as chat calls. This module adds what makes it an `Embedder`: texts go in batches
(256 inputs per request by default, one request at a time: ingestion is a batch job), vectors are
normalised to unit length, and the dimension is the `dimensions` option or learned from the first reply
and must then stay the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from honed.errors import InvalidInputError, ProviderError
from honed.models.embeddings import OpenAIEmbeddings, Spend
from honed.rag.types import Embedder, Vectors

if TYPE_CHECKING:
    from honed.config import Settings
    from honed.rag.index.embedders.registry import EmbedderRef

OPTIONS = ("dimensions", "batch_size")
BATCH_SIZE = 256
MAX_BATCH = 2048  # OpenAI's limit on inputs per request


class OpenAIEmbedder(Embedder):
    """One model on one OpenAI-compatible endpoint. Safe to share between threads."""

    def __init__(
        self, calls: OpenAIEmbeddings, *, dimensions: int | None = None, batch_size: int = BATCH_SIZE
    ) -> None:
        self.calls = calls
        self.endpoint = calls.endpoint
        self.model = calls.model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self._dimension = dimensions

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed(["dimension"])  # one tiny call, once: the reply says how long the vectors are
        assert self._dimension is not None
        return self._dimension

    @property
    def spend(self) -> Spend:
        """Requests made so far, their input tokens and cost (None when the model's price is unknown)."""
        return self.calls.spend

    def identity(self) -> str:
        suffix = f"@{self.dimensions}" if self.dimensions is not None else ""
        return f"openai:{self.endpoint}/{self.model}{suffix}"

    def embed(self, texts: Sequence[str], *, query: bool = False) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        parts = [
            self._embed_batch(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def close(self) -> None:
        self.calls.close()

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self.identity()!r}, base_url={self.calls.base_url!r})"

    def _embed_batch(self, texts: Sequence[str]) -> Vectors:
        vectors = self.calls.embed(texts, dimensions=self.dimensions).vectors
        if self._dimension is None:
            self._dimension = vectors.shape[1]
        elif vectors.shape[1] != self._dimension:
            raise ProviderError(
                f"endpoint {self.endpoint!r} returned {vectors.shape[1]}-dimensional vectors for "
                f"{self.model!r}, expected {self._dimension}",
                provider=self.endpoint,
                hint="set the `dimensions` option to the size the model produces",
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: Vectors = (vectors / np.maximum(norms, np.finfo(np.float32).tiny)).astype(
            np.float32, copy=False
        )
        return unit


def create(ref: EmbedderRef, settings: Settings) -> OpenAIEmbedder:
    """The `openai` kind's factory."""
    ref.check_options(OPTIONS)
    dimensions = _positive_int(ref, "dimensions", None, None)
    batch_size = _positive_int(ref, "batch_size", BATCH_SIZE, MAX_BATCH)
    calls = OpenAIEmbeddings(ref.endpoint, ref.model, ref.config, settings)
    return OpenAIEmbedder(calls, dimensions=dimensions, batch_size=batch_size or BATCH_SIZE)


def _positive_int(ref: EmbedderRef, name: str, default: int | None, most: int | None) -> int | None:
    value = ref.options.get(name, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (most and value > most):
        limit = f" up to {most}" if most else ""
        raise InvalidInputError(
            f"embedder {str(ref)!r}: {name} must be a positive integer{limit}, not {value!r}"
        )
    return value
