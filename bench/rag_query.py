"""Query latency over 100,000 chunks (dense, BM25, hybrid), honed against the raw libraries underneath.

The corpus: the 4,132 distinct texts of the 4,144 chunks honed's default chunking makes of Cranfield and
CISI, repeated with distinct ids to 100,000 chunks. Embedding 100,000 chunks on two CPU cores takes about
an hour, so the vectors come from a fast path, and only they do:

- the unique chunk texts are embedded for real, once (all-MiniLM-L6-v2; kept under bench/results/vectors
  so later runs skip it), and the embedding rate is measured;
- copy c > 0 of a chunk is its text with a tag ` #c<c>` appended (a distinct text, so a distinct cache
  key; the tag is a word no query contains) and its vector is the original's plus Gaussian noise
  (sigma 0.025 per dimension, renormalised: cosine ~0.9 to the original), so the store holds 100,000
  distinct vectors in clusters of near-duplicates;
- these vectors are written to honed's embedding cache (`store.embeddings.put_many`, the one lower layer
  used) under the keys honed's `CachedEmbedder` computes, and then `KnowledgeBase.ingest_documents` runs
  the real pipeline: chunking (each document is one chunk: the knowledge base's chunk size is 512
  tokens), cache look-ups (every one a hit: checked), the Chroma upsert, and the SQLite transaction. Its
  time is reported by phase; embedding 100,000 chunks is extrapolated from the measured rate, not run.

Then the first query's costs (loading the chunks from SQLite, building BM25) are timed, and the queries:
Cranfield's 225 queries, one at a time, each embedded for real (honed's embedding cache is cleared of
them between methods, so every query is a cache miss). Per query, in alternating order, honed's
`Index.search_many(k=10)` (50 candidates per retriever, its default) and the baselines on the same data:
raw `SentenceTransformer.encode` + Chroma `collection.query(n_results=50)` for dense, raw `bm25s`
`retrieve(k=50)` (same tokenizer settings) for BM25, and both plus a reciprocal-rank fusion for hybrid.
The ratio shows honed's overhead per query. `--quick`: 10,000 chunks from 1,000 Cranfield chunks, 50
queries.

    .venv/bin/python bench/rag_query.py [--quick] [--chunks 100000] [--queries 225]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete

import honed
from honed.config import init_workspace
from honed.rag.evaluate.collections import load_collection
from honed.rag.index import kb as kb_module
from honed.rag.index.embedders import CachedEmbedder
from honed.rag.index.embedders.local import BATCH_SIZE, LocalEmbedder, packaged_folder
from honed.rag.index.kb import KnowledgeBaseConfig, create_kb, get_kb
from honed.rag.index.stores.chroma import ChromaStore
from honed.rag.ingest.chunking import ChunkingConfig, chunk_documents
from honed.rag.types import Document
from honed.store.embeddings import EmbeddingCache
from honed.store.kb import KnowledgeBaseRepository
from honed.store.schema import embedding_cache

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "rag_query.json"
VECTORS = HERE / "results" / "vectors"
DATA_DIR = Path(os.environ.get("HONED_DATA_DIR") or HERE.parent.parent / "shared" / "data")
NOISE_SIGMA = 0.025
K = 10
RATE_SAMPLE = 256
POOL = 50  # honed's default candidates per retriever, asked of the baselines too
Array = npt.NDArray[np.float32]


def unique_chunks(quick: bool) -> list[str]:
    """The distinct chunk texts of Cranfield and CISI under honed's default chunking (quick: 1,000)."""
    docs = load_collection("cranfield", DATA_DIR).documents
    if not quick:
        docs += [Document(f"cisi-{d.id}", d.text) for d in load_collection("cisi", DATA_DIR).documents]
    texts = list(dict.fromkeys(c.text for c in chunk_documents(docs, ChunkingConfig())))
    return texts[:1000] if quick else texts


def real_vectors(model: Any, texts: list[str]) -> Array:
    """Normalised embeddings of `texts`, kept in bench/results/vectors (texts are embedded once)."""
    digest = hashlib.sha256("\0".join(["all-MiniLM-L6-v2", *texts]).encode()).hexdigest()[:16]
    path = VECTORS / f"{digest}.npy"
    if not path.exists():
        vectors = model.encode(
            texts, batch_size=BATCH_SIZE, normalize_embeddings=True, show_progress_bar=False
        )
        VECTORS.mkdir(parents=True, exist_ok=True)
        np.save(path, np.asarray(vectors, dtype=np.float32))
    return np.asarray(np.load(path), dtype=np.float32)


def embedding_rate(model: Any, texts: list[str]) -> float:
    """Chunks per second of `encode` on `texts` (a sample: the rate for the whole corpus is extrapolated)."""
    start = time.perf_counter()
    model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - start)


def corpus(texts: list[str], vectors: Array, n: int) -> tuple[list[Document], Array]:
    """`n` documents cycling through `texts` (copies tagged), and a vector for each."""
    rng = np.random.default_rng(0)
    docs, rows = [], []
    for i in range(n):
        copy, j = divmod(i, len(texts))
        docs.append(Document(f"c{copy}-{j}", texts[j] if copy == 0 else f"{texts[j]} #c{copy}"))
        rows.append(j)
    out = vectors[rows].copy()
    out[len(texts) :] += rng.normal(0, NOISE_SIGMA, out[len(texts) :].shape).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return docs, out


def timed_phases(phases: dict[str, float], owner: Any, name: str, label: str) -> Callable[[], None]:
    """Add the wall time spent in `owner.name` to `phases[label]`; returns the undo."""
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            phases[label] += time.perf_counter() - start

    setattr(owner, name, timed)
    return lambda: setattr(owner, name, original)


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "n": len(ms),
    }


def rrf(lists: list[list[int]], k: int = 60) -> list[int]:
    scores: dict[int, float] = defaultdict(float)
    for ranked in lists:
        for rank, i in enumerate(ranked, 1):
            scores[i] += 1 / (k + rank)
    return sorted(scores, key=lambda i: -scores[i])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 chunks, 50 queries")
    parser.add_argument("--chunks", type=int, default=None, help="chunks in the index (default 100,000)")
    parser.add_argument("--queries", type=int, default=None, help="Cranfield queries timed (default 225)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    n_chunks = args.chunks or (10_000 if args.quick else 100_000)
    n_queries = args.queries or (50 if args.quick else 225)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import bm25s  # type: ignore[import-untyped]
    import chromadb
    import Stemmer  # type: ignore[import-not-found]
    import torch
    from sentence_transformers import SentenceTransformer

    load_start = os.getloadavg()
    raw_model = SentenceTransformer(str(packaged_folder()), device="cpu")
    texts = unique_chunks(args.quick)
    vectors = real_vectors(raw_model, texts)
    rate = embedding_rate(raw_model, texts[-RATE_SAMPLE:])
    docs, doc_vectors = corpus(texts, vectors, n_chunks)
    queries = list(load_collection("cranfield", DATA_DIR).queries.values())[:n_queries]
    print(
        f"{len(texts)} unique chunks; embedding rate {rate:.1f} chunks/s (sample of {RATE_SAMPLE}); "
        f"{n_chunks} chunks in the index"
    )

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="honed-bench-query-") as tmp:
        h = honed.connect(init_workspace(Path(tmp)))
        config = KnowledgeBaseConfig(chunking=ChunkingConfig(size=512, overlap=32))
        create_kb(h.store, "bench", config)
        kb = get_kb(h.store, h.settings, "bench")
        index = kb.index()
        embedder = index.embedder
        assert isinstance(embedder, CachedEmbedder)
        embedder.embed(["warm up"], query=True)  # loads the model honed uses (shared per process)

        chunk_texts = [c.text for c in chunk_documents(docs, config.chunking)]
        assert len(chunk_texts) == len(docs), "a document made more than one chunk"
        start = time.perf_counter()
        keys = embedder.keys(chunk_texts)
        for s in range(0, len(keys), 10_000):
            h.store.embeddings.put_many(
                [
                    (k, embedder.identity(), v)
                    for k, v in zip(keys[s : s + 10_000], doc_vectors[s : s + 10_000], strict=True)
                ]
            )
        timings["cache write (prepared vectors)"] = time.perf_counter() - start

        phases: dict[str, float] = defaultdict(float)
        undo = [
            timed_phases(phases, kb_module, "chunk_documents", "chunk"),
            timed_phases(phases, EmbeddingCache, "get_many", "cache read"),
            timed_phases(phases, LocalEmbedder, "embed", "embed (model)"),
            timed_phases(phases, ChromaStore, "upsert", "chroma upsert"),
            timed_phases(phases, KnowledgeBaseRepository, "commit_ingest", "sqlite commit"),
        ]
        misses = embedder.misses
        start = time.perf_counter()
        report = kb.ingest_documents(docs)
        ingest_s = time.perf_counter() - start
        for u in undo:
            u()
        assert embedder.misses == misses and report.chunks_total == n_chunks, "ingest embedded chunks itself"
        phases["other"] = ingest_s - sum(phases.values())
        print(
            f"ingest (no embedding): {ingest_s:.1f} s; "
            + ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
        )

        start = time.perf_counter()
        index.chunks()
        timings["load chunks from SQLite (first query)"] = time.perf_counter() - start
        start = time.perf_counter()
        index.bm25()
        timings["build BM25 (first bm25/hybrid query)"] = time.perf_counter() - start

        store = index.vectors
        assert isinstance(store, ChromaStore) and store.path is not None
        client = chromadb.PersistentClient(
            path=str(store.path.resolve()), settings=chromadb.config.Settings(anonymized_telemetry=False)
        )
        collection = client.get_collection(store.name)  # the very collection honed wrote
        ids = list(index.chunks())
        start = time.perf_counter()
        stemmer = Stemmer.Stemmer("english")
        chunk_by_id = index.chunks()
        raw_bm25 = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
        raw_bm25.index(
            bm25s.tokenize(
                [chunk_by_id[i].text for i in ids], stopwords="en", stemmer=stemmer, show_progress=False
            ),
            show_progress=False,
        )
        timings["raw bm25s build (baseline)"] = time.perf_counter() - start
        for name, seconds in timings.items():
            print(f"{name}: {seconds:.1f} s")

        def raw_dense(q: str) -> list[str]:
            v = raw_model.encode([q], normalize_embeddings=True, show_progress_bar=False)
            found = collection.query(query_embeddings=v, n_results=POOL, include=["distances"])
            return found["ids"][0]

        def raw_lexical(q: str) -> list[int]:
            tokens = bm25s.tokenize(
                [q], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
            )
            known = [t for t in tokens[0] if t in raw_bm25.vocab_dict]
            if not known:
                return []
            docs_found, _ = raw_bm25.retrieve([known], k=POOL, show_progress=False)
            return [int(i) for i in docs_found[0]]

        position = {cid: i for i, cid in enumerate(ids)}
        raw: dict[str, Callable[[str], object]] = {
            "dense": raw_dense,
            "bm25": raw_lexical,
            "hybrid": lambda q: rrf([[position[i] for i in raw_dense(q)], raw_lexical(q)])[:K],
        }
        for fn in raw.values():
            fn("warm up the baselines")
        index.search_many(["warm up honed"], k=K, method="hybrid")

        latency: dict[str, dict[str, dict[str, float]]] = {}
        for method in ("dense", "bm25", "hybrid"):
            honed_ms, raw_ms = [], []
            for i, q in enumerate(queries):
                order = ("raw", "honed") if i % 2 == 0 else ("honed", "raw")
                for side in order:
                    start = time.perf_counter()
                    if side == "raw":
                        raw[method](q)
                        raw_ms.append((time.perf_counter() - start) * 1000)
                    else:
                        index.search_many([q], k=K, method=method)
                        honed_ms.append((time.perf_counter() - start) * 1000)
            with h.store.write() as conn:  # the next method's queries are cache misses again
                conn.execute(
                    delete(embedding_cache).where(
                        embedding_cache.c.key.in_(embedder.keys(queries, query=True))
                    )
                )
            latency[method] = {"honed": percentiles(honed_ms), "raw": percentiles(raw_ms)}
        embed_ms = []
        for q in queries:
            start = time.perf_counter()
            raw_model.encode([q], normalize_embeddings=True, show_progress_bar=False)
            embed_ms.append((time.perf_counter() - start) * 1000)
        kb.close()
        h.close()
    load_end = os.getloadavg()

    print(
        f"\n{n_chunks} chunks, {len(queries)} queries, k={K}, {POOL} candidates; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"{'method':<8} {'honed p50':>10} {'p99':>8} {'raw p50':>9} {'p99':>8} "
        f"{'p50 ratio':>10} {'overhead p50':>13}"
    )
    for method, row in latency.items():
        hp, rp = row["honed"], row["raw"]
        print(
            f"{method:<8} {hp['p50']:>8.1f}ms {hp['p99']:>6.1f}ms {rp['p50']:>7.1f}ms {rp['p99']:>6.1f}ms "
            f"{hp['p50'] / rp['p50']:>10.2f} {hp['p50'] - rp['p50']:>+11.1f}ms"
        )
    embed = percentiles(embed_ms)
    print(f"query embedding alone (raw encode): p50 {embed['p50']:.1f} ms, p99 {embed['p99']:.1f} ms")
    full_embed_min = n_chunks / rate / 60
    print(f"embedding {n_chunks} chunks at the measured rate would take ~{full_embed_min:.0f} min (not run)")
    print(f"load average at start / end: {load_start[0]:.2f} / {load_end[0]:.2f}")

    result = {
        "benchmark": "rag_query",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(),
            "load_average_start_end": [load_start[0], load_end[0]],
        },
        "chunks": n_chunks,
        "unique_texts": len(texts),
        "noise_sigma": NOISE_SIGMA,
        "queries": len(queries),
        "k": K,
        "candidates": POOL,
        "embedding_chunks_per_s": rate,
        "embedding_all_chunks_estimate_min": full_embed_min,
        "ingest_without_embedding_s": ingest_s,
        "ingest_phases_s": dict(phases),
        "other_timings_s": timings,
        "latency_ms": latency,
        "query_embedding_ms": embed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
