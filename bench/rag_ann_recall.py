"""Recall@10 of Chroma's approximate (HNSW) search against exact search, as `ef_search` varies.

Two sets of vectors, each upserted through honed's `open_vector_store` into embedded Chroma (cosine,
HNSW built with Chroma's defaults: ef_construction 100, max_neighbors 16), then searched with the
store's `ef_search` set through honed's store config (`{"type": "chroma", "ef_search": N}`, which honed
applies to the existing collection):

- real: the all-MiniLM-L6-v2 embeddings of the 4,132 distinct chunk texts of Cranfield and CISI (the same
  vectors as rag_query.py, kept under bench/results/vectors), queried with the 337 real queries of both
  collections, embedded for real;
- clustered: 100,000 synthetic unit vectors in 384 dimensions, 2,000 clusters of 50 (centre plus
  Gaussian noise, cosine ~0.25 between members of a cluster, ~0 between clusters: neighbours that stand
  out only a little, as in high-dimensional data), queried with 500 fresh points drawn the same way.

Exact top 10 is numpy's (a matrix product over all vectors); recall@10 = |approximate ∩ exact| / 10,
averaged over the queries (ties at rank 10 make a perfect search score a hair under 1.0). Chroma's
default `ef_search` (100) is marked, and so is each set's tuned value: the smallest swept value with
recall >= 0.95. Qdrant's local mode (qdrant-client without a server) is exact, brute force in Python: it
is run on the real set as a check of the reference and skipped at 100,000 vectors (a Qdrant server has
HNSW and its own `hnsw_ef`; not measured here).
`--quick`: 1,000 real chunks and 20,000 clustered vectors.

    .venv/bin/python bench/rag_ann_recall.py [--quick] [--ef 10,20,40,60,100,200,400]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from honed.rag.evaluate.collections import load_collection
from honed.rag.index.embedders.local import BATCH_SIZE, packaged_folder
from honed.rag.index.stores import open_vector_store
from honed.rag.types import Chunk
from rag_query import DATA_DIR, real_vectors, unique_chunks

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "rag_ann_recall.json"
K = 10
TARGET = 0.95
DEFAULT_EF = 100  # Chroma's default ef_search
NOISE = 0.1  # per dimension, around unit centres: cosine ~0.25 within a cluster, ~0 between
Array = npt.NDArray[np.float32]


def clustered(n: int, queries: int, dim: int = 384, size: int = 50) -> tuple[Array, Array]:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (n // size, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(m: int) -> Array:
        points = centres[rng.integers(0, len(centres), m)] + rng.normal(0, NOISE, (m, dim)).astype(np.float32)
        return np.asarray(points / np.linalg.norm(points, axis=1, keepdims=True), dtype=np.float32)

    return draw(n), draw(queries)


def exact_top(vectors: Array, queries: Array) -> npt.NDArray[np.int64]:
    scores = queries @ vectors.T
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), 1), 1)


def sweep(
    name: str, vectors: Array, queries: Array, efs: list[int], folder: Path, qdrant: bool
) -> list[dict[str, Any]]:
    chunks = [Chunk(str(i), str(i), 0, str(i)) for i in range(len(vectors))]
    truth = [set(map(str, row)) for row in exact_top(vectors, queries)]
    rows: list[dict[str, Any]] = []
    config: dict[str, Any] = {"type": "chroma", "path": str(folder / "chroma")}
    store = open_vector_store(config, collection=name, dimension=vectors.shape[1], root=None)
    start = time.perf_counter()
    store.upsert(chunks, vectors)
    print(f"{name}: {len(vectors)} vectors upserted into chroma in {time.perf_counter() - start:.1f} s")
    store.close()
    stores: list[tuple[str, dict[str, Any]]] = [
        (f"chroma ef_search={ef}", {**config, "ef_search": ef}) for ef in efs
    ]
    if qdrant:
        stores.append(("qdrant local (exact)", {"type": "qdrant", "url": ":memory:"}))
    for label, spec in stores:
        store = open_vector_store(spec, collection=name, dimension=vectors.shape[1], root=None)
        if spec["type"] == "qdrant":
            store.upsert(chunks, vectors)
        store.query(queries[0], K)  # warm up
        hits, ms = [], []
        for q in queries:
            start = time.perf_counter()
            hits.append(store.query(q, K))
            ms.append((time.perf_counter() - start) * 1000)
        store.close()
        recall = float(np.mean([len({i for i, _ in h} & t) / K for h, t in zip(hits, truth, strict=True)]))
        rows.append(
            {
                "set": name,
                "store": label,
                "ef_search": spec.get("ef_search"),
                "recall_at_10": recall,
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
            }
        )
        print(f"  {label:<24} recall@10 {recall:.4f}  p50 {rows[-1]['p50_ms']:.2f} ms", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 real chunks, 20,000 clustered vectors")
    parser.add_argument(
        "--ef", type=lambda s: [int(x) for x in s.split(",")], default=[10, 20, 40, 60, 100, 200, 400]
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    load_start = os.getloadavg()
    model = SentenceTransformer(str(packaged_folder()), device="cpu")
    texts = unique_chunks(args.quick)
    real = real_vectors(model, texts)
    query_texts = [*load_collection("cranfield", DATA_DIR).queries.values()]
    query_texts += [*load_collection("cisi", DATA_DIR).queries.values()]
    real_queries = np.asarray(
        model.encode(query_texts, batch_size=BATCH_SIZE, normalize_embeddings=True), dtype=np.float32
    )
    synthetic, synthetic_queries = clustered(20_000 if args.quick else 100_000, 500)

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="honed-bench-ann-") as tmp:
        rows += sweep("real", real, real_queries, args.ef, Path(tmp), qdrant=True)
        rows += sweep("clustered", synthetic, synthetic_queries, args.ef, Path(tmp), qdrant=False)
    load_end = os.getloadavg()

    chroma = [r for r in rows if r["ef_search"] is not None]
    tuned = {  # per set: the smallest swept ef_search that reaches the target
        name: min(
            (r["ef_search"] for r in chroma if r["set"] == name and r["recall_at_10"] >= TARGET), default=None
        )
        for name in ("real", "clustered")
    }
    print(f"\n{'set':<10} {'store':<24} {'recall@10':>9} {'p50 ms':>7} {'p99 ms':>7}")
    for r in rows:
        mark = (
            " (default)"
            if r["ef_search"] == DEFAULT_EF
            else " (tuned)"
            if r["ef_search"] == tuned[r["set"]]
            else ""
        )
        cells = f"{r['recall_at_10']:>9.4f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}"
        print(f"{r['set']:<10} {r['store']:<24} {cells}{mark}")
    print(
        f"smallest ef_search with recall@10 >= {TARGET}: " + ", ".join(f"{k} {v}" for k, v in tuned.items())
    )
    print(f"load average at start / end: {load_start[0]:.2f} / {load_end[0]:.2f}")
    default_ok = all(r["recall_at_10"] >= TARGET for r in chroma if r["ef_search"] == DEFAULT_EF)
    targets = {
        f"default ef_search ({DEFAULT_EF}) recall@10 >= {TARGET}": default_ok,
        f"some swept ef_search reaches recall@10 >= {TARGET} on each set": None not in tuned.values(),
    }
    for name, ok in targets.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    result = {
        "benchmark": "rag_ann_recall",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_start_end": [load_start[0], load_end[0]],
        },
        "k": K,
        "real_vectors": len(real),
        "real_queries": len(real_queries),
        "clustered_vectors": len(synthetic),
        "clustered_queries": len(synthetic_queries),
        "default_ef_search": DEFAULT_EF,
        "tuned_ef_search": tuned,
        "rows": rows,
        "targets": targets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
