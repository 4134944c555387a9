"""Retrieval quality on two classic test collections, through honed's own retrieval experiment.

For Cranfield (1,400 aeronautics abstracts, 225 queries, graded judgments) and CISI (1,460 library-science
abstracts, 112 queries of which 76 are judged), in a fresh workspace each: `import_collection` ingests
the documents into a knowledge base with honed's defaults (recursive chunks of 256 tokens, overlap 32;
all-MiniLM-L6-v2; embedded Chroma) and records the queries and judgments as a dataset; then
`run_retrieval_experiment` runs BM25, dense and hybrid (reciprocal-rank fusion, alpha 0.5) over every
query at depth 100, document level (a document ranks where its best chunk does), and reports MAP,
nDCG@10 and R@100 (trec_eval's own code via ir-measures) with each variant compared with BM25 query by
query (paired bootstrap CI and sign-flip permutation test, from honed's statistics). Latency is per
query, one at a time, as the experiment measures it; the experiment caches query embeddings, so the
variants after dense (hybrid here) find theirs cached and their latency leaves out embedding the query.
Ingest time is printed too (mostly embedding). `--quick`: Cranfield only. `--workspace DIR` keeps the
workspaces there, so a second run reuses their embedding caches (and then every query's embedding is
cached too: its latencies are not comparable with a fresh run's).

    .venv/bin/python bench/rag_collections.py [--quick] [--workspace DIR]
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

import honed
from honed.config import init_workspace
from honed.experiments.retrieval import import_collection, parse_retrieval_spec, run_retrieval_experiment
from honed.rag.index.kb import KnowledgeBaseConfig, create_kb, get_kb

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "rag_collections.json"
DATA_DIR = Path(os.environ.get("HONED_DATA_DIR") or HERE.parent.parent / "shared" / "data")
MEASURES = ["MAP", "nDCG@10", "R@100"]
VARIANTS = [
    {"id": "bm25", "method": "bm25"},
    {"id": "dense", "method": "dense"},
    {"id": "hybrid", "method": "hybrid", "alpha": 0.5},
]


def run_collection(name: str, folder: Path) -> dict[str, Any]:
    h = honed.connect(init_workspace(folder), data_dir=str(DATA_DIR))
    try:
        create_kb(h.store, name, KnowledgeBaseConfig(), exist_ok=True)
        kb = get_kb(h.store, h.settings, name)
        start = time.perf_counter()
        ingest, dataset = import_collection(h, kb, name)
        ingest_s = time.perf_counter() - start
        kb.close()
        spec = {
            "name": f"{name}-methods",
            "kb": name,
            "dataset": dataset,
            "k": 100,
            "measures": MEASURES,
            "baseline": "bm25",
            "variants": VARIANTS,
        }
        report = run_retrieval_experiment(h, parse_retrieval_spec(spec))
    finally:
        h.close()
    out = report.to_dict()
    for variant in out["variants"]:
        variant.pop("per_query")
    return {
        "ingest_s": ingest_s,
        "chunks": ingest.chunks_total,
        "chunks_embedded": ingest.chunks_embedded,
        "report": out,
    }


def print_collection(name: str, result: dict[str, Any]) -> None:
    report = result["report"]
    print(
        f"\n{name}: {report['queries']} queries ({report['judged']} judged), {result['chunks']} chunks, "
        f"ingest {result['ingest_s']:.1f} s ({result['chunks_embedded']} chunks embedded)"
    )
    print(f"{'variant':<8} " + " ".join(f"{m:>8}" for m in MEASURES) + f" {'p50 ms':>7} {'p99 ms':>7}")
    for v in report["variants"]:
        cells = " ".join(f"{v['aggregate'][m]:>8.4f}" for m in MEASURES)
        print(f"{v['id']:<8} {cells} {v['latency_ms']['p50']:>7.1f} {v['latency_ms']['p99']:>7.1f}")
    for variant, by_measure in report["comparisons"].items():
        for measure in MEASURES:
            c = by_measure[measure]
            low, high = c["ci"] or (float("nan"), float("nan"))
            print(
                f"  {variant} vs bm25, {measure:<8} {c['diff']:+.4f} [{low:+.4f}, {high:+.4f}] "
                f"p={c['p_value']:.4f} {c['verdict']}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Cranfield only")
    parser.add_argument("--workspace", type=Path, default=None, help="keep the workspaces in this folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = ["cranfield"] if args.quick else ["cranfield", "cisi"]

    load_start = os.getloadavg()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="honed-bench-collections-") as tmp:
        root = args.workspace or Path(tmp)
        for name in names:
            results[name] = run_collection(name, root / name)
            print_collection(name, results[name])
    load_end = os.getloadavg()
    print(f"\nload average at start / end: {load_start[0]:.2f} / {load_end[0]:.2f}")

    out = {
        "benchmark": "rag_collections",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_start_end": [load_start[0], load_end[0]],
        },
        "collections": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
