"""The one retrieval function: what `kb search`, the search API, prompts that retrieve and `kb eval` rank.

Everything that ranks calls `rank`, so the list a retrieval experiment scores is the list an application
is served for the same query and settings (a test holds them equal for every method). Its settings:

- `candidates`: how many chunks each retriever (dense, BM25) hands on to fusion and reranking. It is part
  of the retrieval config, not derived from `k`: a hybrid's top 10 is then the same whether 10 or 100 are
  asked for. Default `DEFAULT_CANDIDATES`; a `k` above it widens the pool to `k` (recorded as such).
- `level`: "chunk" ranks chunks; "doc" ranks documents by their best chunk (a document's score is its
  best chunk's), which is how relevance judgments usually name what was found.

Order. A ranking is sorted by score, highest first, and equal scores by id *descending*: trec_eval's own
order. The scores are handed to trec_eval as they are, so a run written to a file and evaluated by the
trec_eval binary, or compared with another system's run file of the same scores, gives the same numbers.
The cut of a retriever's pool at a tie keeps the ids that order puts first (see `honed.rag.index.lexical`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, TypedDict, Unpack

from honed.errors import InvalidInputError
from honed.rag.index import filters
from honed.rag.types import Chunk, Hit, Where

if TYPE_CHECKING:
    from honed.rag.index.kb import Index, Method
    from honed.rag.retrieve.rerank import Reranker

__all__ = ["DEFAULT_CANDIDATES", "Level", "SearchOptions", "pool_size", "rank", "trec_order"]

#: Chunks each retriever hands to fusion and reranking unless the retrieval config says otherwise.
DEFAULT_CANDIDATES = 100
Level = Literal["chunk", "doc"]


def pool_size(k: int, candidates: int | None) -> int:
    """The candidate pool a retrieval of depth `k` uses: `candidates` (default `DEFAULT_CANDIDATES`), or
    `k` when more are asked for."""
    return max(k, candidates or DEFAULT_CANDIDATES)


class SearchOptions(TypedDict, total=False):
    """How to search, as `rank` takes it (`KnowledgeBase.search`, `Index.search_many` pass it on): every
    key may be left out, for `rank`'s default."""

    k: int  # default 5
    method: Method  # default "hybrid"
    alpha: float  # default 0.5
    where: Where | None
    candidates: int | None
    reranker: Reranker | None
    level: Level  # default "chunk"
    cache_queries: bool  # default True


def rank(index: Index, queries: Sequence[str], **options: Unpack[SearchOptions]) -> list[list[Hit]]:
    """The `k` best chunks (or documents, at `level="doc"`: each as its best chunk) for each query, in
    trec_eval's order. Hybrid fuses the dense and BM25 rankings by reciprocal rank with weight `alpha` on
    dense (1 = dense only, 0 = BM25 only); a reranker reorders the whole pool before the cut to `k`.
    `cache_queries=False` embeds the queries afresh (the same vectors, the real cost: for timing)."""
    k, method, alpha = options.get("k", 5), options.get("method", "hybrid"), options.get("alpha", 0.5)
    where, candidates, reranker = options.get("where"), options.get("candidates"), options.get("reranker")
    level, cache_queries = options.get("level", "chunk"), options.get("cache_queries", True)
    if k < 1:
        raise InvalidInputError(f"k must be at least 1, not {k}")
    if method not in ("dense", "bm25", "hybrid"):
        raise InvalidInputError(f"unknown retrieval method {method!r}", hint="dense, bm25 or hybrid")
    if level not in ("chunk", "doc"):
        raise InvalidInputError(f"unknown retrieval level {level!r}", hint="chunk or doc")
    if candidates is not None and candidates < 1:
        raise InvalidInputError(f"candidates must be at least 1, not {candidates}")
    norm = filters.check(where)
    pool = pool_size(k, candidates)
    chunks = index.chunks()
    if not chunks:
        return [[] for _ in queries]
    unknown = index.unknown_fields(norm) if norm else []
    if unknown:
        message = filters.unknown_fields_message(
            unknown, index.metadata_keys(), f"knowledge base {index.kb.name!r}"
        )
        warnings.warn(message, filters.UnknownFieldWarning, stacklevel=3)
    dense: list[list[tuple[str, float]]] = [[] for _ in queries]
    lexical: list[list[tuple[str, float]]] = [[] for _ in queries]
    if method in ("dense", "hybrid"):
        from honed.rag.index.embedders.cache import CachedEmbedder  # the dense path only: BM25 stays light

        embedder = index.embedder
        if not cache_queries and isinstance(embedder, CachedEmbedder):
            embedder = embedder.inner
        vectors = embedder.embed(list(queries), query=True)
        dense = index.vectors.query_many(vectors, pool, norm or None)
    if method in ("bm25", "hybrid"):
        allowed = [cid for cid, c in chunks.items() if filters.matches(c.metadata, norm)] if norm else None
        bm25 = index.bm25()
        lexical = [bm25.search(q, pool, allowed=allowed) for q in queries]
    out: list[list[Hit]] = []
    for i, query in enumerate(queries):
        hits = _merge(dense[i], lexical[i], method, alpha, chunks)
        if level == "doc":
            hits = _best_per_document(hits)
        if reranker is not None:
            hits = reranker.rerank(query, hits)
        out.append(trec_order(hits, level)[:k])
    return out


def trec_order(hits: Sequence[Hit], level: Level = "chunk") -> list[Hit]:
    """`hits` sorted by score (highest first), equal scores by id descending (the document's id at
    `level="doc"`), ranked from 1: the order trec_eval gives the same scores."""

    def key(hit: Hit) -> str:
        return hit.chunk.doc_id if level == "doc" else hit.chunk.id

    by_id = sorted(hits, key=key, reverse=True)
    ordered = sorted(by_id, key=lambda hit: -hit.score)  # stable: ties keep the id order
    return [Hit(h.chunk, h.score, rank, h.scores) for rank, h in enumerate(ordered, 1)]


def _best_per_document(hits: Sequence[Hit]) -> list[Hit]:
    """Each document once, as its best-scoring chunk (ties: the chunk the ranking put first)."""
    best: dict[str, Hit] = {}
    for hit in hits:
        seen = best.get(hit.chunk.doc_id)
        if seen is None or hit.score > seen.score:
            best[hit.chunk.doc_id] = hit
    return list(best.values())


def _merge(
    dense: list[tuple[str, float]],
    lexical: list[tuple[str, float]],
    method: Method,
    alpha: float,
    chunks: Mapping[str, Chunk],
) -> list[Hit]:
    dense_scores = dict(dense)
    bm25_scores = dict(lexical)
    if method == "dense":
        ranked = dense
    elif method == "bm25":
        ranked = lexical
    else:
        from honed.rag.retrieve.fusion import hybrid_weights, reciprocal_rank_fusion

        w_dense, w_bm25 = hybrid_weights(alpha)
        ranked = reciprocal_rank_fusion(
            [[i for i, _ in dense], [i for i, _ in lexical]], weights=[w_dense, w_bm25]
        )
    hits: list[Hit] = []
    for cid, score in ranked:
        chunk = chunks.get(cid)
        if chunk is None:
            # The vector store holds a chunk the database does not (left by an interrupted ingest of an
            # older index state): never return text honed cannot vouch for.
            continue
        scores: dict[str, float] = {}
        if cid in dense_scores:
            scores["dense"] = dense_scores[cid]
        if cid in bm25_scores:
            scores["bm25"] = bm25_scores[cid]
        if method == "hybrid":
            scores["fused"] = score
        hits.append(Hit(chunk, score, len(hits) + 1, scores))
    return hits
