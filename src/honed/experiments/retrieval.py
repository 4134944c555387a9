"""Retrieval experiments: retrieval measured on its own, variant against variant, query by query.

A spec (YAML or a dict) names a knowledge base, a dataset of queries with their relevance judgments, and
variants that change how retrieval is done:

    name: cranfield-methods
    kb: cranfield
    dataset: cranfield-queries      # NAME[@REF]; each case: inputs.query (or `query_field`), and qrels
    split: test                     # optional
    k: 100                          # ranking depth evaluated
    measures: [MAP, nDCG@10, R@100]
    baseline: bm25                  # default: the first variant
    variants:
      - {id: bm25, method: bm25}
      - {id: dense, method: dense}
      - {id: hybrid, method: hybrid, alpha: 0.5}
      - {id: tuned, method: dense, embedder: local/cran-ft}
      - {id: small-chunks, method: dense, chunking: {strategy: tokens, size: 128, overlap: 16}}
      - {id: reranked, method: hybrid, rerank: {type: llm, model: local/smollm2-135m-instruct}}

Relevance judgments come from each case's `metadata.qrels` (`{doc_id: grade}`, graded) when present,
else its `context_ids` (binary). Judgments name documents by default (`level: doc`): a document's score is
its best chunk's. A variant that changes chunking, embedder or store gets its own index over the same
documents, built (or reused) before it runs.

What is scored is what is served: each query's ranking comes from `honed.rag.retrieve.rank`, the function
behind `kb search` and the search API, with the variant's settings and the spec's `k` and `level`; the
candidate pool (`candidates`, default 100) is recorded with the results. The rankings go to trec_eval with
their real scores, already in trec_eval's order (score, then id descending), and `kb eval --run-dir`
writes them as TREC run files. Metrics come from `honed.rag.evaluate.metrics` (trec_eval's own code);
each variant is compared with the baseline per measure by the eval core's paired statistics over the
queries. Latency is measured per query, one query at a time, as an application would issue them, after
one untimed query that loads what the first search loads (reported apart as `warmup`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from honed.errors import InvalidInputError
from honed.hashing import short
from honed.rag.index.kb import KnowledgeBase, Method, get_kb
from honed.rag.ingest.chunking import ChunkingConfig
from honed.rag.retrieve.rank import pool_size
from honed.rag.types import Hit
from honed.userfiles import Lines, validate

if TYPE_CHECKING:
    from datetime import datetime

    from honed.datasets import Case
    from honed.rag.evaluate.metrics import Qrels
    from honed.rag.index.kb import Index
    from honed.store.names import Version
    from honed.workspace import Workspace

DEFAULT_MEASURES = ("MAP", "nDCG@10", "R@100", "P@10", "MRR")
REPORT_KIND = "retrieval-report"
#: The fields of each paired comparison in a retrieval report, in the order `kb eval --json` prints them.
RETRIEVAL_COMPARISON = ("mean_a", "mean_b", "diff", "ci", "p_value", "test", "verdict", "n", "message")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrievalVariant(_Strict):
    id: str = Field(min_length=1, max_length=100)
    method: Method = "dense"
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    candidates: int | None = Field(default=None, ge=1)
    chunking: ChunkingConfig | None = None
    embedder: str | None = None
    store: dict[str, Any] | None = None
    rerank: dict[str, Any] | None = None
    where: dict[str, Any] | None = None


class RetrievalSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    kb: str
    dataset: str
    split: str | None = None
    query_field: str = "query"
    k: int = Field(default=100, ge=1, le=10_000)
    level: Literal["doc", "chunk"] = "doc"
    measures: list[str] = Field(default_factory=lambda: list(DEFAULT_MEASURES), min_length=1)
    baseline: str | None = None
    variants: list[RetrievalVariant] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids(self) -> RetrievalSpec:
        ids = [v.id for v in self.variants]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"variant ids repeat: {', '.join(dupes)}")
        if self.baseline is not None and self.baseline not in ids:
            raise ValueError(f"baseline {self.baseline!r} is not a variant id ({', '.join(ids)})")
        return self


def parse_retrieval_spec(
    data: dict[str, Any], *, source: str = "spec", lines: Lines | None = None
) -> RetrievalSpec:
    return validate(RetrievalSpec, data, where=source, lines=lines)


def load_retrieval_spec(path: Path) -> RetrievalSpec:
    from honed.experiments.spec import read_spec_file

    file = read_spec_file(path, "retrieval experiment spec")
    return parse_retrieval_spec(file.data, source=file.where, lines=file.lines)


@dataclass(frozen=True)
class VariantResult:
    id: str
    index: str
    config: dict[str, Any]
    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]]
    latency_ms: dict[str, float]
    built_chunks: int
    #: per query, the ranked (id, score) list that was scored (for run files; not stored with the report)
    ranked: dict[str, list[tuple[str, float]]] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "index": self.index,
            "config": self.config,
            "aggregate": self.aggregate,
            "latency_ms": self.latency_ms,
            "built_chunks": self.built_chunks,
            "per_query": self.per_query,
        }


@dataclass(frozen=True)
class RetrievalReport:
    name: str
    kb: str
    kb_version: str
    dataset: str
    dataset_hash: str
    split: str | None
    queries: int
    judged: int
    k: int
    level: str
    measures: list[str]
    baseline: str
    variants: list[VariantResult]
    comparisons: dict[str, dict[str, dict[str, Any]]]
    """comparisons[variant][measure] = the eval core's paired comparison with the baseline, as a dict."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": REPORT_KIND,
            "name": self.name,
            "kb": self.kb,
            "kb_version": self.kb_version,
            "dataset": self.dataset,
            "dataset_hash": self.dataset_hash,
            "split": self.split,
            "queries": self.queries,
            "judged": self.judged,
            "k": self.k,
            "level": self.level,
            "measures": self.measures,
            "baseline": self.baseline,
            "variants": [v.to_dict() for v in self.variants],
            "comparisons": self.comparisons,
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> RetrievalReport:
        """A report as `to_dict` stored it (without the ranked lists, which are not stored)."""
        variants = [
            VariantResult(
                v["id"],
                v["index"],
                v["config"],
                v["aggregate"],
                v["per_query"],
                v["latency_ms"],
                v["built_chunks"],
            )
            for v in body["variants"]
        ]
        fields = {k: body[k] for k in cls.__dataclass_fields__ if k not in ("variants",)}
        return cls(**{**fields, "variants": variants})

    def write_runs(self, folder: Path) -> list[Path]:
        """Each variant's ranked lists as a TREC run file `folder/VARIANT.run` (the tag is the variant id,
        spaces as dashes); the lists exist only for a report just run, not for a stored one."""
        from honed.rag.evaluate.metrics import write_run

        if any(not v.ranked for v in self.variants):
            raise InvalidInputError(
                "this report holds no ranked lists (stored reports keep only the measures)",
                hint="write run files while evaluating: honed kb eval SPEC --run-dir DIR",
            )
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for v in self.variants:
            tag = "-".join(v.id.split())
            path = folder / f"{tag.replace('/', '-')}.run"
            write_run(path, {q: dict(docs) for q, docs in v.ranked.items()}, tag)
            paths.append(path)
        return paths


def stored_report(h: Workspace, name: str, ref: str | None = None) -> tuple[Version, RetrievalReport]:
    """The retrieval report recorded under `name` (its latest, or the version `ref` names)."""
    version, body = h.store.names.get(REPORT_KIND, name, ref, noun="retrieval evaluation")
    return version, RetrievalReport.from_dict(body)


def stored_reports(h: Workspace) -> list[tuple[str, int, datetime]]:
    """(name, versions, last recorded) of every stored retrieval report."""
    return h.store.names.names(REPORT_KIND)


def qrels_for(cases: list[Case]) -> Qrels:
    """Judgments from the cases: `metadata.qrels` (graded) or `context_ids` (binary)."""
    out: dict[str, dict[str, int]] = {}
    for case in cases:
        graded = case.metadata.get("qrels")
        if isinstance(graded, dict) and graded:
            out[case.id] = {str(d): int(g) for d, g in graded.items()}
        elif case.context_ids:
            out[case.id] = dict.fromkeys(case.context_ids, 1)
    return out


def run_retrieval_experiment(
    h: Workspace, spec: RetrievalSpec, *, progress: Any = None, record: bool = True
) -> RetrievalReport:
    """Run every variant over the queries, evaluate, compare with the baseline, and record the report."""
    from honed.datasets import get_dataset
    from honed.evals.stats import compare
    from honed.evals.stats._matrix import ScoreMatrix
    from honed.rag.evaluate.metrics import evaluate, parse_measures
    from honed.rag.retrieve.rerank import build_reranker

    parse_measures(spec.measures)  # fail on a misspelt measure before any work
    dataset = get_dataset(h.store, spec.dataset)
    cases = list(dataset.split(spec.split)) if spec.split else list(dataset.cases)
    if not cases:
        raise InvalidInputError(
            f"dataset {spec.dataset!r} has no cases" + (f" in split {spec.split!r}" if spec.split else "")
        )
    missing = [c.id for c in cases if not isinstance(c.inputs.get(spec.query_field), str)]
    if missing:
        raise InvalidInputError(
            f"{len(missing)} case(s) have no text input {spec.query_field!r} (e.g. {missing[0]!r})",
            hint="set `query_field` to the input holding the query",
        )
    qrels = qrels_for(cases)
    if not qrels:
        raise InvalidInputError(
            f"dataset {spec.dataset!r} has no relevance judgments",
            hint="give cases `context_ids` (relevant document ids) or `metadata.qrels` ({doc_id: grade})",
        )
    kb = get_kb(h.store, h.settings, spec.kb)
    queries = [(c.id, c.inputs[spec.query_field]) for c in cases]
    results: list[VariantResult] = []
    try:
        for variant in spec.variants:
            index, built = _index_for(kb, variant, progress)
            reranker = build_reranker(variant.rerank, h.client, h.settings.root) if variant.rerank else None
            # One untimed query first: it loads what the first search loads (the embedder's weights, the
            # BM25 index, the vector store), which no later query pays; reported apart as the warm-up.
            started = time.perf_counter()
            _retrieve(index, spec, variant, reranker, queries[0][1])
            warmup_ms = (time.perf_counter() - started) * 1000
            ranking: dict[str, dict[str, float]] = {}
            ranked: dict[str, list[tuple[str, float]]] = {}
            latencies: list[float] = []
            for done, (qid, text) in enumerate(queries, 1):
                started = time.perf_counter()
                hits = _retrieve(index, spec, variant, reranker, text)
                latencies.append((time.perf_counter() - started) * 1000)
                # The real scores, in trec_eval's order already (honed.rag.retrieve.rank), so trec_eval ranks
                # them exactly as the search served them.
                ranked[qid] = [(_key(hit, spec.level), hit.score) for hit in hits]
                ranking[qid] = dict(ranked[qid])
                if progress is not None:
                    progress(f"query {variant.id}", done, len(queries))
            evaluation = evaluate(ranking, qrels, spec.measures)
            lat = np.asarray(latencies)
            results.append(
                VariantResult(
                    variant.id,
                    index.id,
                    {
                        **index.describe(),
                        **variant.model_dump(
                            exclude={"id", "chunking", "embedder", "store"}, exclude_none=True
                        ),
                        "candidates": pool_size(spec.k, variant.candidates),
                        "level": spec.level,
                    },
                    dict(evaluation.aggregate),
                    {q: dict(v) for q, v in evaluation.per_query.items()},
                    {
                        "p50": float(np.percentile(lat, 50)),
                        "p95": float(np.percentile(lat, 95)),
                        "p99": float(np.percentile(lat, 99)),
                        "mean": float(lat.mean()),
                        "warmup": warmup_ms,
                    },
                    built,
                    ranked,
                )
            )
    finally:
        kb.close()
    baseline = spec.baseline or spec.variants[0].id
    base = next(r for r in results if r.id == baseline)
    comparisons: dict[str, dict[str, dict[str, Any]]] = {}
    judged = sorted(set(base.per_query))
    for r in results:
        if r.id == baseline:
            continue
        comparisons[r.id] = {}
        for measure in base.aggregate:
            ids = [q for q in judged if q in r.per_query]
            a = ScoreMatrix(np.array([[base.per_query[q][measure]] for q in ids]), tuple(ids))
            b = ScoreMatrix(np.array([[r.per_query[q][measure]] for q in ids]), tuple(ids))
            c = compare(a, b)
            comparisons[r.id][measure] = c.brief(RETRIEVAL_COMPARISON)
    report = RetrievalReport(
        spec.name,
        kb.name,
        kb.version.hash,
        dataset.ref,
        dataset.hash,
        spec.split,
        len(queries),
        len(judged),
        spec.k,
        spec.level,
        list(base.aggregate),
        baseline,
        results,
        comparisons,
    )
    if record:
        h.store.names.record(REPORT_KIND, spec.name, report.to_dict(), note=f"{len(results)} variants")
    return report


def _index_for(kb: KnowledgeBase, variant: RetrievalVariant, progress: Any) -> tuple[Index, int]:
    config = kb.config.with_overrides(
        chunking=variant.chunking, embedder=variant.embedder, store=variant.store
    )
    index = kb.index(config)
    if config == kb.config:
        index.chunks()  # the knowledge base's own index must be current (ingest keeps it so)
        return index, 0
    embedded = index.build(progress=progress)
    return index, embedded


def _retrieve(
    index: Index, spec: RetrievalSpec, variant: RetrievalVariant, reranker: Any, text: str
) -> list[Hit]:
    """What `kb search` (the search API) serves for `text` with the variant's settings."""
    [hits] = index.search_many(
        [text],
        k=spec.k,
        method=variant.method,
        alpha=variant.alpha,
        where=variant.where,
        candidates=variant.candidates,
        reranker=reranker,
        level=spec.level,
        # Each query embedded afresh, as an application's new query is: an earlier variant's cached
        # vectors would make a later one's latency look cheaper than it is (same vectors either way).
        cache_queries=False,
    )
    return hits


def _key(hit: Hit, level: str) -> str:
    return hit.chunk.doc_id if level == "doc" else hit.chunk.id


def variant_label(result: VariantResult) -> str:
    return f"{result.id} (index {short(result.index, 8)})"


#: Splits for a test collection's queries: half to train an embedder on, half held out to measure it.
COLLECTION_SPLITS: tuple[tuple[str, float], ...] = (("train", 0.5), ("test", 0.5))


def import_collection(
    h: Workspace, kb: KnowledgeBase, collection: str, *, progress: Any = None
) -> tuple[Any, str]:
    """Ingest a test collection's documents (Cranfield, CISI; read in place from the data folder) into
    `kb`, and record its queries as the dataset `{kb}-queries`: `inputs.query`, `context_ids` (relevant
    documents), `metadata.qrels` (graded judgments), split train/test 50/50 by query id.
    Returns (ingest report, dataset ref)."""
    from honed.datasets import record_cases
    from honed.datasets.splits import SplitPlan
    from honed.rag.ingest.importing import query_cases, read_named_collection

    coll = read_named_collection(collection, h.settings)
    report = kb.ingest_documents(coll.documents, progress=progress)
    cases = query_cases(coll, plan=SplitPlan(ratios=COLLECTION_SPLITS))
    name = f"{kb.name}-queries"
    result = record_cases(h.store, name, cases, note=f"queries and judgments of {collection}")
    return report, result.dataset.ref


def training_pairs(
    h: Workspace, kb: KnowledgeBase, dataset: str, *, split: str | None = "train", query_field: str = "query"
) -> list[tuple[str, str]]:
    """(query, relevant document text) pairs from a dataset's judgments, for fine-tuning an embedder.
    Only the given split is used, so the held-out queries stay unseen."""
    from honed.datasets import get_dataset

    ds = get_dataset(h.store, dataset)
    cases = list(ds.split(split)) if split else list(ds.cases)
    texts = {d.id: d.text for d in kb.documents()}
    pairs: list[tuple[str, str]] = []
    for qid, rels in sorted(qrels_for(cases).items()):
        case = next(c for c in cases if c.id == qid)
        query = case.inputs.get(query_field)
        if not isinstance(query, str):
            continue
        for doc, grade in sorted(rels.items()):
            if grade > 0 and doc in texts:
                pairs.append((query, texts[doc]))
    if not pairs:
        raise InvalidInputError(
            f"no (query, document) pairs in {dataset!r}" + (f" split {split!r}" if split else ""),
            hint="the cases need relevance judgments naming documents of the knowledge base",
        )
    return pairs
