"""Retrieval on a real test collection: Cranfield's 1,400 abstracts and 225 judged queries, ingested
once for the module with the real local embedder into embedded Chroma.

What a user relies on: BM25, dense and hybrid retrieval each reported with MAP, nDCG@10 and R@100
(trec_eval's own numbers), compared query by query with paired statistics; and a fine-tuned embedder
measured against the base one on held-out queries it never saw, whichever way that comes out (after
checking that training lowered its own objective and saved a model that reloads by name).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import honed
from honed.api import Honed
from honed.config import init_workspace
from honed.datasets import get_dataset
from honed.experiments.retrieval import (
    import_collection,
    parse_retrieval_spec,
    run_retrieval_experiment,
    training_pairs,
)
from honed.rag.evaluate.metrics import evaluate, read_run, write_run
from honed.rag.index.embedders import build_embedder
from honed.rag.index.embedders.finetune import SCALE
from honed.rag.index.kb import KnowledgeBaseConfig, create_kb, get_kb
from honed.rag.ingest.chunking import ChunkingConfig
from tests.support.bm25_reference import bm25s_run
from tests.support.realdata import DATA_DIR, require

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Honed]:
    require("cranfield", "cran.all.1400")
    root = init_workspace(tmp_path_factory.mktemp("cran"))
    h = honed.connect(root, data_dir=str(DATA_DIR))
    # Whole documents, as test collections are judged (and as the reference BM25 below indexes them).
    # HNSW is approximate, and its graph depends on the order vectors went in (Chroma inserts them on
    # several threads): an ef_search above the collection's size makes the dense search exact, so the
    # index reopened by `kb search` finds the same neighbours as the one `kb eval` used.
    config = KnowledgeBaseConfig(
        chunking=ChunkingConfig(strategy="document"), store={"type": "chroma", "ef_search": 2000}
    )
    create_kb(h.store, "cran", config)
    kb = get_kb(h.store, h.settings, "cran")
    report, dataset = import_collection(h, kb, "cranfield")
    kb.close()
    assert report.added and len(report.added) == 1400
    assert dataset == "cran-queries@v1"
    yield h
    h.close()


def in_batch_loss(queries: np.ndarray, passages: np.ndarray) -> float:
    """MultipleNegativesRankingLoss over all pairs at once: cross-entropy of scaled cosines vs the diagonal"""
    logits = SCALE * queries @ passages.T
    logits -= logits.max(axis=1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-np.mean(np.diag(log_softmax)))


def run(h: Honed, **spec: Any) -> Any:
    return run_retrieval_experiment(
        h, parse_retrieval_spec({"name": "cran", "kb": "cran", "dataset": "cran-queries", **spec})
    )


def test_bm25_dense_and_hybrid_with_paired_significance(cran: Honed) -> None:
    report = run(
        cran,
        measures=["MAP", "nDCG@10", "R@100"],
        variants=[
            {"id": "bm25", "method": "bm25"},
            {"id": "dense", "method": "dense"},
            {"id": "hybrid", "method": "hybrid"},
        ],
    )
    by = {v.id: v for v in report.variants}
    assert report.queries == 225 and report.judged == 225
    for v in by.values():
        assert set(v.aggregate) == {"MAP", "nDCG@10", "R@100"}
        assert v.latency_ms["p50"] > 0
        print(v.id, {m: round(x, 4) for m, x in v.aggregate.items()}, "p50 ms", round(v.latency_ms["p50"], 1))
    # Published ranges for Cranfield (stemmed BM25 ~0.40-0.43 MAP; MiniLM dense close to it). These bounds
    # fail if ids, qrels or ranking are mixed up, which drops MAP to ~0.
    assert 0.38 <= by["bm25"].aggregate["MAP"] <= 0.46
    assert 0.33 <= by["dense"].aggregate["MAP"] <= 0.47
    # Hybrid fusion beats BM25 on this collection, and the paired test says it is not noise.
    hybrid_map = report.comparisons["hybrid"]["MAP"]
    assert hybrid_map["diff"] > 0 and hybrid_map["p_value"] < 0.05 and hybrid_map["verdict"] == "better"
    assert hybrid_map["ci"][0] > 0
    # Stored: the report is a version under the experiment's name.
    stored = cran.store.names.history("retrieval-report", "cran")
    assert stored


def test_kb_eval_scores_what_search_serves_and_bm25_equals_a_bm25s_run_file(
    cran: Honed, tmp_path: Path
) -> None:
    report = run(
        cran,
        k=100,
        measures=["MAP", "nDCG@10", "R@100"],
        variants=[{"id": m, "method": m} for m in ("bm25", "dense", "hybrid")],
    )
    kb = get_kb(cran.store, cran.settings, "cran")
    queries = {c.id: c.inputs["query"] for c in get_dataset(cran.store, "cran-queries").cases}
    try:
        # The ranked lists `kb eval` scored are, query by query, what the search API serves.
        for v in report.variants:
            assert v.config["candidates"] == 100 and v.config["level"] == "doc"
            for qid, text in queries.items():
                served = kb.search(text, k=100, method=v.id, level="doc")
                assert [(h.chunk.doc_id, h.score) for h in served] == v.ranked[qid], (v.id, qid)
                assert v.latency_ms["warmup"] > 0
        # The hybrid's top 10 no longer moves with the depth asked for (the pool is the config's).
        shallow = run(cran, k=10, measures=["nDCG@10"], variants=[{"id": "hybrid", "method": "hybrid"}])
        hybrid = next(v for v in report.variants if v.id == "hybrid")
        assert shallow.variants[0].aggregate["nDCG@10"] == hybrid.aggregate["nDCG@10"]
        documents = kb.documents()
    finally:
        kb.close()
    # BM25 run by bm25s directly over the documents (the same tokenizer settings), written as a TREC run
    # file and scored from it, equals what `kb eval` reports to 4 decimals.
    ranking = bm25s_run(documents, queries, 100)
    path = tmp_path / "bm25s.run"
    write_run(path, ranking, "bm25s")
    qrels = {
        c.id: dict(c.metadata["qrels"])
        for c in get_dataset(cran.store, "cran-queries").cases
        if c.metadata.get("qrels")
    }
    reference = evaluate(read_run(path), qrels, ["MAP", "nDCG@10", "R@100"]).aggregate
    bm25 = next(v for v in report.variants if v.id == "bm25").aggregate
    print("bm25s", reference, "honed", bm25)
    assert {m: round(x, 4) for m, x in bm25.items()} == {m: round(x, 4) for m, x in reference.items()}


def test_fine_tuned_embedder_against_the_base_on_held_out_queries(cran: Honed) -> None:
    from honed.rag.index.embedders.finetune import finetune_embedder

    kb = get_kb(cran.store, cran.settings, "cran")
    pairs = training_pairs(cran, kb, "cran-queries", split="train")
    dataset = get_dataset(cran.store, "cran-queries")
    held_out = {c.inputs["query"] for c in dataset.split("test")}
    assert pairs and not {q for q, _ in pairs} & held_out  # no held-out query is trained on
    # One pair for each of 64 training queries: enough for a different embedder, and 4 steps instead of the
    # ~5 minutes all pairs take on two cores (test_embedder_finetune checks that training lowers the loss).
    one_each: dict[str, str] = {}
    for query, passage in pairs:
        one_each.setdefault(query, passage)
    subset = list(one_each.items())[:64]
    steps: list[tuple[int, int, float]] = []
    result = finetune_embedder(
        subset,
        name="cran-ft",
        settings=cran.settings,
        epochs=1,
        batch_size=16,
        progress=lambda *step: steps.append(step),
    )
    assert result.pairs == 64 and result.steps == len(result.losses) == 4
    assert [s[:2] for s in steps] == [(i + 1, 4) for i in range(4)]
    assert all(np.isfinite(result.losses)) and result.tokens > 0
    assert result.ref == "local/cran-ft"
    assert result.path == cran.settings.root / ".honed" / "embedders" / "cran-ft"
    manifest = json.loads((result.path / "honed.json").read_text())
    assert manifest["base"] == "local/all-MiniLM-L6-v2" and manifest["pairs"] == 64
    assert manifest["losses"] == result.losses and manifest["params"]["batch_size"] == 16
    # The saved model reloads by name with its own identity, and the objective it was trained on (in-batch
    # negatives over the training pairs) went down: training did what it is for.
    base_embedder = build_embedder("local/all-MiniLM-L6-v2", cran.settings)
    tuned_embedder = build_embedder("local/cran-ft", cran.settings)
    assert tuned_embedder.identity() == result.identity != base_embedder.identity()
    assert result.identity.startswith("local:cran-ft@")
    queries, passages = [q for q, _ in subset], [d for _, d in subset]
    losses = {
        label: in_batch_loss(e.embed(queries, query=True), e.embed(passages))
        for label, e in (("base", base_embedder), ("tuned", tuned_embedder))
    }
    print("training-pairs loss", losses)
    assert losses["tuned"] < losses["base"]
    report = run(
        cran,
        split="test",
        measures=["MAP", "nDCG@10", "R@100"],
        variants=[
            {"id": "base", "method": "dense"},
            {"id": "tuned", "method": "dense", "embedder": "local/cran-ft"},
        ],
    )
    base, tuned = report.variants
    print("base", base.aggregate, "tuned", tuned.aggregate, report.comparisons["tuned"]["MAP"]["message"])
    assert tuned.index != base.index and tuned.built_chunks > 0  # its own index over the same documents
    # Only test-split queries were evaluated, none of which the embedder trained on.
    assert report.split == "test" and report.queries < 225
    c = report.comparisons["tuned"]["MAP"]
    assert c["n"] == report.judged and c["ci"] is not None
    kb.close()
