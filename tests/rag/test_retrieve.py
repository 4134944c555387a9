"""The order every ranking is served and scored in: score, then id descending (trec_eval's), so a run
file of the real scores evaluates exactly as the ranking was served."""

from __future__ import annotations

from pathlib import Path

from honed.rag.evaluate.metrics import evaluate, read_run, write_run
from honed.rag.retrieve.rank import DEFAULT_CANDIDATES, _best_per_document, pool_size, trec_order
from honed.rag.types import Chunk, Hit


def _hit(chunk_id: str, score: float) -> Hit:
    doc = chunk_id.split("#")[0]
    return Hit(Chunk(chunk_id, doc, int(chunk_id.split("#")[1]), "text"), score, 0)


def test_ties_go_by_id_descending_as_trec_eval_breaks_them(tmp_path: Path) -> None:
    hits = [_hit("a#0", 2.0), _hit("c#0", 1.0), _hit("b#0", 1.0), _hit("d#0", 1.0), _hit("e#0", 0.5)]
    ordered = trec_order(hits, "doc")
    assert [h.chunk.doc_id for h in ordered] == ["a", "d", "c", "b", "e"]
    assert [h.rank for h in ordered] == [1, 2, 3, 4, 5]
    # Scored from the real scores written to a run file, only the order above gives these numbers:
    # the one relevant document "b" is 4th, so its reciprocal rank is 1/4.
    path = tmp_path / "r.run"
    write_run(path, {"q": {h.chunk.doc_id: h.score for h in ordered}}, "t")
    assert [line.split()[2] for line in path.read_text().splitlines()] == ["a", "d", "c", "b", "e"]
    assert evaluate(read_run(path), {"q": {"b": 1}}, ["MRR"]).aggregate["MRR"] == 0.25


def test_a_document_ranks_by_its_best_chunk() -> None:
    hits = [_hit("x#1", 0.9), _hit("y#0", 0.8), _hit("x#0", 0.7), _hit("z#3", 0.8)]
    docs = trec_order(_best_per_document(hits), "doc")
    assert [(h.chunk.id, h.score) for h in docs] == [("x#1", 0.9), ("z#3", 0.8), ("y#0", 0.8)]


def test_the_candidate_pool_is_the_configs_unless_more_are_asked_for() -> None:
    assert pool_size(10, None) == pool_size(25, None) == DEFAULT_CANDIDATES
    assert pool_size(10, 40) == 40 and pool_size(500, 40) == 500
