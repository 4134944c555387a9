"""A BM25 run made by bm25s directly, outside honed: the reference `kb eval`'s BM25 is checked against.

The same settings honed documents for its BM25 (`honed.rag.index.lexical`): Lucene's BM25 with k1 1.5 and b
0.75, bm25s's English stopwords, the Snowball English stemmer; each query scored against every document,
the top `k` with a score above 0 kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import bm25s  # type: ignore[import-untyped]
import numpy as np
import Stemmer  # type: ignore[import-not-found]

from honed.rag.types import Document


def bm25s_run(
    documents: Sequence[Document], queries: Mapping[str, str], k: int
) -> dict[str, dict[str, float]]:
    """query id -> {doc id: BM25 score} of the `k` best documents (empty texts are not indexed)."""
    stemmer = Stemmer.Stemmer("english")
    texts = [d for d in documents if d.text.strip()]

    def tokenize(strings: list[str]) -> list[list[str]]:
        out: list[list[str]] = bm25s.tokenize(
            strings, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
        )
        return out

    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    retriever.index(tokenize([d.text for d in texts]), show_progress=False)
    ranking: dict[str, dict[str, float]] = {}
    for qid, text in queries.items():
        known = [t for t in tokenize([text])[0] if t in retriever.vocab_dict]
        scores = np.asarray(retriever.get_scores(known), dtype=np.float64) if known else np.zeros(len(texts))
        top = [i for i in np.argsort(-scores, kind="stable")[:k] if scores[i] > 0]
        ranking[qid] = {texts[i].id: float(scores[i]) for i in top}
    return ranking
