"""Rerankers: a second, more careful look at the hits a first-stage retrieval returned.

A reranker scores each (query, passage) pair on its own and reorders the hits by that score. It returns new
`Hit` objects: `score` is the rerank score, `scores["rerank"]` keeps it beside the earlier stages' scores,
and ranks are renumbered from 1. Ties keep the order the hits came in.

- `CrossEncoderReranker`: a sentence-transformers CrossEncoder loaded from a local folder. honed packages
  none (no cross-encoder can be downloaded on the machines it is built for), and one is only as useful as
  its trained weights: an untrained classification head ranks at random.
- `LLMReranker`: asks a model, through the `ModelClient` (so calls are cached, costed and run concurrently
  up to the endpoint's limit), to rate each passage's relevance from 0 to 10. A reply that is not such a
  rating is never read as a 0: the passage keeps its place relative to the other unrated ones below every
  rated one, has no `rerank` score, and the failure is logged and kept in `arate`'s ratings.

`build_reranker(spec, client, root)` builds one from a knowledge base's or an experiment's settings.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honed.errors import ConfigError, HonedError, InvalidInputError
from honed.evals.evaluators.judging import extract_json_object
from honed.models.registry import ModelRef
from honed.models.types import ChatRequest, Completion, Params
from honed.rag.types import Hit

if TYPE_CHECKING:
    from honed.models.client import ModelClient

logger = logging.getLogger(__name__)

UNRATED = -1.0
"""The `score` of a hit the LLM reranker could not rate: below every rating (0-10)."""


class Reranker(ABC):
    """Reorders a retrieval's hits for a query."""

    @abstractmethod
    def rerank(self, query: str, hits: Sequence[Hit], *, top_k: int | None = None) -> list[Hit]:
        """New hits, best first, `score` = `scores["rerank"]` = the rerank score, ranks 1..n; at most
        `top_k` of them when given."""


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None and top_k < 1:
        raise InvalidInputError(
            f"top_k must be at least 1, not {top_k}", hint="leave it out to keep every hit"
        )


def reorder(hits: Sequence[Hit], scores: Sequence[float | None], top_k: int | None = None) -> list[Hit]:
    """`hits` as new hits sorted by `scores` (higher first; ties and unscored hits, which go last, keep
    their input order), re-ranked from 1, cut to `top_k`."""
    order = sorted(range(len(hits)), key=lambda i: (scores[i] is None, -(scores[i] or 0.0), i))
    out: list[Hit] = []
    for rank, i in enumerate(order[:top_k] if top_k is not None else order, 1):
        hit, score = hits[i], scores[i]
        if score is None:
            out.append(Hit(hit.chunk, UNRATED, rank, dict(hit.scores)))
        else:
            out.append(Hit(hit.chunk, score, rank, {**hit.scores, "rerank": score}))
    return out


# -- cross-encoder --------------------------------------------------------------------------------------


def _is_embedding_model(folder: Path) -> bool:
    """Whether `folder` holds a sentence-embedding (bi-encoder) model: CrossEncoder would load it with a
    fresh, untrained scoring head and rank at random without saying so."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(modules, list) and any(
        "Pooling" in str(m.get("type", "")) for m in modules if isinstance(m, dict)
    )


class CrossEncoderReranker(Reranker):
    """A sentence-transformers CrossEncoder from a local folder (`path`), scoring `batch_size` pairs at a
    time on CPU or whatever device torch picks. The model loads on first use.

    The ranking is only as good as the folder's trained weights; honed ships none, so bring your own
    (e.g. a `cross-encoder/ms-marco-*` model saved where this machine can read it)."""

    def __init__(self, path: str | Path, *, batch_size: int = 32) -> None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ConfigError(
                f"cross-encoder folder {folder} does not exist",
                hint="point `path` at a local CrossEncoder folder (honed ships none and cannot download one)",
            )
        if _is_embedding_model(folder):
            raise ConfigError(
                f"{folder} holds a sentence-embedding model, not a cross-encoder",
                hint="a reranker needs a CrossEncoder trained to score (query, passage) pairs",
            )
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, not {batch_size}", hint="e.g. 32")
        self.path = folder
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                try:
                    self._model = CrossEncoder(str(self.path), local_files_only=True)
                except (OSError, ValueError) as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise ConfigError(
                        f"cannot load a cross-encoder from {self.path}: {first}",
                        hint="the folder must be a saved sentence-transformers CrossEncoder "
                        "(config.json, tokenizer and weights)",
                    ) from None
            return self._model

    def predict(self, query: str, texts: Sequence[str]) -> list[float]:
        """The model's score for each (query, text) pair."""
        if not texts:
            return []
        scores = self._load().predict(
            [(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False
        )
        return [float(s) for s in scores]

    def rerank(self, query: str, hits: Sequence[Hit], *, top_k: int | None = None) -> list[Hit]:
        _check_top_k(top_k)
        scores: list[float | None] = list(self.predict(query, [h.chunk.text for h in hits]))
        return reorder(hits, scores, top_k)


# -- LLM ------------------------------------------------------------------------------------------------

SYSTEM = "You rate how relevant a passage is to a search query. Reply with one JSON object and nothing else."


def rating_prompt(query: str, passage: str) -> str:
    return (
        f"[Query]\n{query}\n\n[Passage]\n{passage}\n\n"
        "How relevant is the passage to the query, from 0 (unrelated) to 10 (it answers the query fully)?\n"
        'Reply with JSON only: {"score": <0-10>}'
    )


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def parse_rating(text: str) -> float:
    """A 0-10 rating from a reply; ValueError says why there is none (a stray digit in prose is none)."""
    obj = extract_json_object(text)
    if obj is None:
        raise ValueError("the reply contains no JSON object")
    raw = obj.get("score")
    if isinstance(raw, str) and _NUMBER.fullmatch(raw.strip()):
        raw = float(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ValueError(f"'score' is {obj.get('score')!r}, not a number")
    if not 0 <= raw <= 10:
        raise ValueError(f"score {raw} is outside 0-10")
    return float(raw)


@dataclass(frozen=True, slots=True)
class Rating:
    """One passage's rating: `score` (0-10), or `error` (and `raw`, the reply) when there is none."""

    chunk_id: str
    score: float | None
    error: str | None = None
    raw: str | None = None


class LLMReranker(Reranker):
    """Rates each passage 0-10 with `model` (one call per passage, all at once through `client`).
    `temperature` 0 and a small `max_tokens` keep ratings cheap and repeatable."""

    def __init__(
        self, client: ModelClient, model: str, *, max_tokens: int = 32, temperature: float = 0.0
    ) -> None:
        ModelRef.parse(model)
        self.params = Params(temperature=temperature, max_tokens=max_tokens)
        self.params.validate()
        self.client = client
        self.model = model

    def requests(self, query: str, hits: Sequence[Hit]) -> list[ChatRequest]:
        return [
            ChatRequest(
                self.model,
                (
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": rating_prompt(query, h.chunk.text)},
                ),
                self.params,
            )
            for h in hits
        ]

    @staticmethod
    def ratings(hits: Sequence[Hit], results: Sequence[Completion | HonedError]) -> list[Rating]:
        out: list[Rating] = []
        for hit, result in zip(hits, results, strict=True):
            if isinstance(result, HonedError):
                out.append(Rating(hit.chunk.id, None, result.one_line()))
                continue
            try:
                out.append(Rating(hit.chunk.id, parse_rating(result.text)))
            except ValueError as exc:
                out.append(Rating(hit.chunk.id, None, str(exc), result.text))
        return out

    async def arate(self, query: str, hits: Sequence[Hit]) -> list[Rating]:
        """Each hit's rating, in the order of `hits`."""
        results = await self.client.complete_many(self.requests(query, hits)) if hits else []
        return self.ratings(hits, results)

    def _ranked(self, hits: Sequence[Hit], ratings: Sequence[Rating], top_k: int | None) -> list[Hit]:
        failed = [r for r in ratings if r.score is None]
        if failed:
            logger.warning(
                "LLM reranker %s could not rate %d of %d passages (first: %s: %s); "
                "they keep their order below the rated ones",
                self.model,
                len(failed),
                len(ratings),
                failed[0].chunk_id,
                failed[0].error,
            )
        return reorder(hits, [r.score for r in ratings], top_k)

    async def arerank(self, query: str, hits: Sequence[Hit], *, top_k: int | None = None) -> list[Hit]:
        """`rerank` from inside an event loop."""
        _check_top_k(top_k)
        return self._ranked(hits, await self.arate(query, hits), top_k)

    def rerank(self, query: str, hits: Sequence[Hit], *, top_k: int | None = None) -> list[Hit]:
        _check_top_k(top_k)
        results = self.client.run(self.requests(query, hits)) if hits else []
        return self._ranked(hits, self.ratings(hits, results), top_k)


# -- building from settings -----------------------------------------------------------------------------

_KEYS = {"cross_encoder": ({"path"}, {"batch_size"}), "llm": ({"model"}, {"max_tokens", "temperature"})}


def _parse_spec(spec: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(spec, str):
        kind, sep, value = spec.partition(":")
        if not sep or kind.strip() not in _KEYS or not value.strip():
            raise InvalidInputError(
                f"reranker {spec!r} is not TYPE:VALUE",
                hint="e.g. 'cross_encoder:models/ms-marco-minilm' or 'llm:openai/gpt-4o-mini'",
            )
        kind = kind.strip()
        return {"type": kind, next(iter(_KEYS[kind][0])): value.strip()}
    if not isinstance(spec, Mapping):
        raise InvalidInputError(
            f"a reranker spec must be a mapping, not {spec!r}", hint='e.g. {"type": "llm"}'
        )
    return dict(spec)


def build_reranker(
    spec: Mapping[str, Any] | str | None, client: ModelClient | None = None, root: Path | None = None
) -> Reranker | None:
    """A reranker from `{"type": "cross_encoder", "path": ...}` (relative paths from `root`, default the
    current folder) or `{"type": "llm", "model": ...}` (calls go through `client`), or the shorthand
    `"cross_encoder:PATH"` / `"llm:MODEL"`; None for none. Bad specs are `InvalidInputError`s."""
    if spec is None:
        return None
    config = _parse_spec(spec)
    kind = config.pop("type", None)
    if kind not in _KEYS:
        raise InvalidInputError(f"unknown reranker type {kind!r}", hint=f"known types: {', '.join(_KEYS)}")
    required, optional = _KEYS[kind]
    unknown = sorted(set(config) - required - optional)
    missing = sorted(required - set(config))
    if unknown or missing:
        what = f"unknown key(s) {unknown}" if unknown else f"missing key(s) {missing}"
        accepted = ", ".join(sorted(required | optional))
        raise InvalidInputError(f"reranker {kind!r}: {what}", hint=f"{kind} accepts: {accepted}")
    if kind == "cross_encoder":
        path = config["path"]
        if not isinstance(path, str | Path):
            raise InvalidInputError(
                f"reranker 'cross_encoder': path must be a string, not {path!r}", hint="name a local folder"
            )
        folder = Path(path).expanduser()
        if not folder.is_absolute():
            folder = (root or Path.cwd()) / folder
        return CrossEncoderReranker(folder, batch_size=_int(config, "batch_size", 32))
    if client is None:
        raise InvalidInputError(
            "the llm reranker needs a model client", hint="pass the workspace's ModelClient to build_reranker"
        )
    model = config["model"]
    if not isinstance(model, str):
        raise InvalidInputError(f"reranker 'llm': model must be a string, not {model!r}", hint="e.g. local/x")
    temperature = config.get("temperature", 0.0)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise InvalidInputError(
            f"reranker 'llm': temperature must be a number, not {temperature!r}", hint="e.g. 0"
        )
    return LLMReranker(
        client, model, max_tokens=_int(config, "max_tokens", 32), temperature=float(temperature)
    )


def _int(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"reranker: {key} must be an integer, not {value!r}", hint=f"e.g. {default}")
    return value
