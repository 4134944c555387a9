"""Lexical retrieval: a BM25 index over chunk texts, built with `bm25s`.

Texts are lower-cased, split into words of two or more characters, stripped of English stopwords
(Lucene's classic list of 33) and, by default, Snowball-stemmed; queries go through exactly the same
steps, which is why the settings are saved with the index. bm25s precomputes every (term, document) score
at build time, so a search is a sum of sparse rows: fast enough to score the whole collection per query
and select the top k here.

A restriction to some chunks (`allowed`, e.g. those a metadata filter matches) multiplies the scores by
a 0/1 mask before the top k are chosen, so a restrictive filter still returns k results when k exist; a
filter applied after the top k would return fewer, or none. Only documents sharing a term with the
query (score > 0) are returned.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from honed.errors import ConfigError, InvalidInputError, RetrievalError

__all__ = ["BM25Index"]

METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")
_SETTINGS_FILE = "honed_bm25.json"
_FORMAT = 1


class BM25Index:
    """An immutable BM25 index over (id, text) pairs. Build it with `BM25Index.build`, or `load` a saved
    one; to change the corpus, build a new one (Cranfield's 1,400 abstracts take ~0.3-0.5 s here)."""

    def __init__(self, ids: Sequence[str], retriever: Any, settings: dict[str, Any]) -> None:
        self._ids = list(ids)
        self._position = {chunk_id: i for i, chunk_id in enumerate(self._ids)}
        self._retriever = retriever  # None for an empty index: bm25s cannot index nothing
        self._settings = settings
        self._stemmer = _stemmer() if settings["stemmer"] else None

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        texts: Sequence[str],
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        stemmer: bool = True,
    ) -> BM25Index:
        """Index `texts[i]` under `ids[i]`. `method` is the BM25 variant (bm25s's names; "lucene" is
        Lucene's, whose idf is never negative); `stemmer` applies the English Snowball stemmer."""
        if len(ids) != len(texts):
            raise InvalidInputError(f"{len(ids)} ids but {len(texts)} texts")
        if len(set(ids)) != len(ids):
            raise InvalidInputError("BM25 ids must be unique", hint="index each chunk once")
        if method not in METHODS:
            raise InvalidInputError(f"unknown BM25 method {method!r}", hint=f"known: {', '.join(METHODS)}")
        if not k1 >= 0 or not 0 <= b <= 1:
            raise InvalidInputError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        settings = {
            "k1": float(k1),
            "b": float(b),
            "method": method,
            "stemmer": bool(stemmer),
            "stopwords": "en",
        }
        index = cls(ids, None, settings)
        tokens = index._tokenize(texts) if ids else []
        if any(tokens):  # bm25s divides by the mean document length: a corpus without words is empty
            import bm25s  # type: ignore[import-untyped]

            retriever = bm25s.BM25(k1=k1, b=b, method=method)
            retriever.index(tokens, show_progress=False)
            index._retriever = retriever
        return index

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    @property
    def settings(self) -> dict[str, Any]:
        """k1, b, method, stemmer and stopwords, as built."""
        return dict(self._settings)

    def search(
        self, query: str, k: int, *, allowed: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        """The `k` best-scoring ids for `query` with their BM25 scores, best first (ties by id, descending);
        only ids in `allowed` when given. Documents without any query term are never returned."""
        return self.search_many([query], k, allowed=allowed)[0]

    def search_many(
        self, queries: Sequence[str], k: int, *, allowed: Collection[str] | None = None
    ) -> list[list[tuple[str, float]]]:
        """`search` for each query, with the same `allowed` set."""
        if isinstance(queries, str):
            raise InvalidInputError("search_many takes a list of queries", hint="use search() for one query")
        if self._retriever is None or k <= 0:
            return [[] for _ in queries]
        mask = self._mask(allowed)
        if mask is not None and not mask.any():
            return [[] for _ in queries]
        return [self._top(tokens, k, mask) for tokens in self._tokenize(queries)]

    def save(self, folder: str | Path) -> None:
        """Write the index and its settings to `folder` (created if needed; an index there is replaced)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self._retriever is not None:
            self._retriever.save(str(folder), show_progress=False)
        meta = {"format": _FORMAT, "settings": self._settings, "ids": self._ids}
        # Written last: a folder whose settings file is there holds a complete index.
        (folder / _SETTINGS_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> BM25Index:
        """The index `save` wrote to `folder`; a missing or damaged one is a `RetrievalError`."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / _SETTINGS_FILE).read_text(encoding="utf-8"))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {_FORMAT}")
            ids, settings = list(meta["ids"]), dict(meta["settings"])
            retriever = None
            if (folder / "params.index.json").exists():
                import bm25s

                retriever = bm25s.BM25.load(str(folder), show_progress=False)
                if retriever.scores["num_docs"] != len(ids):
                    raise ValueError(f"{retriever.scores['num_docs']} documents but {len(ids)} ids")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RetrievalError(
                f"BM25 index at {folder} is missing or damaged: {' '.join(str(exc).split())}",
                hint="rebuild the index",
            ) from None
        return cls(ids, retriever, settings)

    # --- internals ---------------------------------------------------------------------------------

    def _tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        import bm25s

        tokens: list[list[str]] = bm25s.tokenize(
            list(texts),
            stopwords=self._settings["stopwords"],
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        return tokens

    def _mask(self, allowed: Collection[str] | None) -> npt.NDArray[np.float32] | None:
        if allowed is None:
            return None
        mask = np.zeros(len(self._ids), dtype=np.float32)
        positions = [self._position[i] for i in allowed if i in self._position]
        mask[positions] = 1.0
        return mask

    def _top(
        self, tokens: list[str], k: int, mask: npt.NDArray[np.float32] | None
    ) -> list[tuple[str, float]]:
        known = [t for t in tokens if t in self._retriever.vocab_dict]
        if not known:
            return []
        scores = np.asarray(self._retriever.get_scores(known, weight_mask=mask), dtype=np.float64)
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            # Keep every document tied with the k-th score, then order and cut: ties go by id, descending
            # (trec_eval's order, see honed.rag.retrieve.rank), so the cut keeps the ids it would rank first.
            kth = np.partition(scores[hits], len(hits) - k)[len(hits) - k]
            hits = hits[scores[hits] >= kth]
        by_id = sorted(((self._ids[i], float(scores[i])) for i in hits), key=lambda h: h[0], reverse=True)
        return sorted(by_id, key=lambda h: -h[1])[:k]


def _stemmer() -> Any:
    try:
        import Stemmer  # type: ignore[import-not-found]
    except ImportError:
        raise ConfigError(
            "BM25 stemming needs the PyStemmer package, which is not installed",
            hint="pip install PyStemmer, or build the index with stemmer=False",
        ) from None
    return Stemmer.Stemmer("english")
