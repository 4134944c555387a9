"""Fine-tuning the local embedder on real (query, relevant passage) pairs from Cranfield.

The slow test trains all-MiniLM-L6-v2 for one epoch on 64 Cranfield pairs (each query with its most
relevant abstract), then checks what training must do: the in-batch-negatives loss over the training
pairs falls, and the saved model reloads through `build_embedder` as `local/NAME` with its own identity
and its own vectors. It also prints (does not assert: 32 queries are too few to decide it) whether the
fine-tuned model ranks the relevant abstracts of held-out queries higher than the base model does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from honed.config import Settings
from honed.errors import ConfigError, InvalidInputError
from honed.rag.evaluate.collections import load_collection
from honed.rag.index.embedders import build_embedder, finetune_embedder
from honed.rag.index.embedders.finetune import SCALE, _batches
from tests.support.realdata import require

TRAIN_QUERIES = 64
HELD_OUT_QUERIES = 32
COLLECTION_SIZE = 128


def in_batch_loss(queries: np.ndarray, passages: np.ndarray) -> float:
    """MultipleNegativesRankingLoss over all pairs at once: cross-entropy of scaled cosines vs the diagonal"""
    logits = SCALE * queries @ passages.T
    logits -= logits.max(axis=1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-np.mean(np.diag(log_softmax)))


def mean_reciprocal_rank(queries: np.ndarray, docs: np.ndarray, relevant: list[set[int]]) -> float:
    """MRR of the first relevant document, ranking every document by exact cosine."""
    ranks = []
    for q, rel in zip(queries, relevant, strict=True):
        order = np.argsort(-(docs @ q), kind="stable")
        ranks.append(1.0 / (1 + next(i for i, d in enumerate(order) if int(d) in rel)))
    return float(np.mean(ranks))


@pytest.mark.slow
def test_finetuning_on_cranfield_pairs_lowers_the_loss_and_saves_a_new_model(workspace: Path) -> None:
    collection = load_collection("cranfield", require("cranfield").parent)
    texts = {doc.id: doc.text for doc in collection.documents}
    judged = [
        (qid, sorted(gains.items(), key=lambda kv: (-kv[1], int(kv[0]))))
        for qid, gains in sorted(collection.qrels.items(), key=lambda kv: int(kv[0]))
        if any(texts.get(d, "").strip() for d in gains)
    ]
    judged = [(qid, [(d, g) for d, g in ranked if texts[d].strip()]) for qid, ranked in judged]
    train = judged[:TRAIN_QUERIES]
    held_out = judged[TRAIN_QUERIES : TRAIN_QUERIES + HELD_OUT_QUERIES]
    pairs = [(collection.queries[qid], texts[ranked[0][0]]) for qid, ranked in train]

    # The ranking collection: the passages trained on, the most relevant document of each held-out query,
    # and other documents spread over the ids up to COLLECTION_SIZE (all 1,400 take a minute to embed).
    chosen = list(dict.fromkeys(ranked[0][0] for _, ranked in train + held_out))
    taken, room = set(chosen), COLLECTION_SIZE - len(chosen)
    others = [doc.id for doc in collection.documents if doc.text.strip() and doc.id not in taken]
    doc_ids = chosen + others[:: len(others) // room][:room]
    position = {d: i for i, d in enumerate(doc_ids)}
    relevant = [{position[d] for d, _ in ranked if d in position} for _, ranked in held_out]
    settings = Settings(root=workspace)

    steps: list[tuple[int, int, float]] = []
    result = finetune_embedder(
        pairs, name="cranfield-ft", settings=settings, progress=lambda *step: steps.append(step)
    )
    assert result.ref == "local/cranfield-ft"
    assert result.path == workspace / ".honed" / "embedders" / "cranfield-ft"
    assert result.steps == len(result.losses) == len(steps) >= TRAIN_QUERIES // 16
    assert [s[:2] for s in steps] == [(i + 1, result.steps) for i in range(result.steps)]
    assert all(np.isfinite(result.losses)) and result.pairs == TRAIN_QUERIES and result.tokens > 0

    manifest = json.loads((result.path / "honed.json").read_text())
    assert manifest["base"] == "local/all-MiniLM-L6-v2" and manifest["pairs"] == TRAIN_QUERIES
    assert manifest["losses"] == result.losses and manifest["params"]["batch_size"] == 16

    base = build_embedder("local/all-MiniLM-L6-v2", settings)
    tuned = build_embedder("local/cranfield-ft", settings)
    assert tuned.identity() == result.identity != base.identity()
    assert tuned.identity().startswith("local:cranfield-ft@")

    doc_texts = [texts[d] for d in doc_ids]
    train_queries = [q for q, _ in pairs]
    held_queries = [collection.queries[qid] for qid, _ in held_out]
    train_rows = [position[ranked[0][0]] for _, ranked in train]
    report = {}
    for label, embedder in (("base", base), ("fine-tuned", tuned)):
        docs = embedder.embed(doc_texts)
        loss = in_batch_loss(embedder.embed(train_queries, query=True), docs[train_rows])
        mrr = mean_reciprocal_rank(embedder.embed(held_queries, query=True), docs, relevant)
        report[label] = (loss, mrr, docs)
    assert report["fine-tuned"][0] < report["base"][0]  # the objective it was trained on went down
    assert np.abs(report["fine-tuned"][2] - report["base"][2]).max() > 1e-3  # new weights, new vectors
    print(
        f"\nfine-tuned on {TRAIN_QUERIES} Cranfield pairs in {result.seconds:.1f} s "
        f"({result.pairs_per_second:.1f} pairs/s, {result.tokens_per_second:.0f} tokens/s); "
        f"training-pairs loss {report['base'][0]:.3f} -> {report['fine-tuned'][0]:.3f}; "
        f"held-out MRR over {len(doc_ids)} docs: base {report['base'][1]:.3f}, "
        f"fine-tuned {report['fine-tuned'][1]:.3f}"
    )


def test_batches_never_repeat_a_query_or_passage_and_drop_lonely_pairs() -> None:
    import random

    pairs = [("q1", "p1"), ("q1", "p2"), ("q2", "p1"), ("q3", "p3"), ("q4", "p4"), ("q1", "p5")]
    batches = _batches(pairs, 4, random.Random(0))
    for batch in batches:
        assert len(batch) > 1
        assert len({pairs[i][0] for i in batch}) == len(batch) == len({pairs[i][1] for i in batch})
    assert batches == _batches(pairs, 4, random.Random(0))  # the seed decides the order
    assert sorted(i for b in batches for i in b) == sorted(set(i for b in batches for i in b))


def test_refusals_come_before_any_training(workspace: Path) -> None:
    settings = Settings(root=workspace)
    pairs = [(f"query {i}", f"passage {i}") for i in range(20)]
    with pytest.raises(InvalidInputError, match="at least batch_size=16 pairs, got 5"):
        finetune_embedder(pairs[:5], name="tiny", settings=settings)
    with pytest.raises(InvalidInputError, match=r"not a \(query, passage\) pair"):
        finetune_embedder([*pairs, ("only one",)], name="bad", settings=settings)  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="not a valid embedder name"):
        finetune_embedder(pairs, name="../escape", settings=settings)
    with pytest.raises(InvalidInputError, match="packaged model's name"):
        finetune_embedder(pairs, name="all-MiniLM-L6-v2", settings=settings)
    with pytest.raises(InvalidInputError, match="only local sentence-transformers models"):
        finetune_embedder(pairs, name="remote", settings=settings, base="openai/text-embedding-3-small")
    with pytest.raises(InvalidInputError, match="batch_size must be an integer of at least 2"):
        finetune_embedder(pairs, name="one", settings=settings, batch_size=1)
    (workspace / ".honed" / "embedders" / "taken").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match=r"already exists.*overwrite=True"):
        finetune_embedder(pairs, name="taken", settings=settings)
    with pytest.raises(ConfigError, match="there is none here"):
        finetune_embedder(pairs, name="nowhere", settings=Settings())


@pytest.mark.slow
def test_the_same_pairs_and_seed_give_the_same_weights(workspace: Path) -> None:
    settings = Settings(root=workspace)
    pairs = [
        ("what causes wing stall", "Stall happens when the angle of attack exceeds the critical angle."),
        ("supersonic inlet design", "Shock waves in supersonic inlets slow the air before the compressor."),
        ("heat transfer at hypersonic speed", "Aerodynamic heating grows steeply with Mach number."),
        ("boundary layer transition", "Laminar flow turns turbulent past a critical Reynolds number."),
    ]
    kwargs: dict[str, Any] = {"settings": settings, "batch_size": 2, "learning_rate": 1e-4}
    first = finetune_embedder(pairs, name="first", **kwargs)
    again = finetune_embedder(pairs, name="again", **kwargs)
    fingerprint = first.identity.split("@")[1]
    assert again.identity == f"local:again@{fingerprint}" and again.losses == first.losses

    replaced = finetune_embedder(pairs, name="again", overwrite=True, seed=1, **kwargs)
    assert replaced.identity.split("@")[1] != fingerprint
    assert build_embedder("local/again", settings).identity() == replaced.identity
    assert sorted(p.name for p in (workspace / ".honed" / "embedders").iterdir()) == ["again", "first"]
