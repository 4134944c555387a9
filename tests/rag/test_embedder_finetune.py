"""Fine-tuning the local embedder: batches, refusals, and determinism on a few pairs.

Training on real Cranfield pairs (the loss falls, the saved model reloads by name with its own identity,
and how it retrieves for held-out queries) is tested in test_cranfield.py, on the knowledge base that
module builds once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from honed.config import Settings
from honed.errors import ConfigError, InvalidInputError
from honed.rag.index.embedders import build_embedder, finetune_embedder
from honed.rag.index.embedders.finetune import _batches


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
