"""One endpoint stack for chat and embeddings (honed.models.endpoints, honed.models.embeddings).

Embeddings go through the same endpoint settings, API key lookup, retry rule, concurrency limit and price
table as chat calls; these tests check each of those over real HTTP to the stub server on 127.0.0.1 (see
tests/rag/test_embedders.py for the embedder's own behaviour: batches, unit vectors, errors).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from honed.config import RetryConfig, Settings
from honed.errors import MissingAPIKeyError, ProviderError, RateLimitError
from honed.models.client import ModelClient
from honed.models.embeddings import OpenAIEmbeddings
from honed.models.endpoints import api_key, merge_endpoints, retry_delay
from honed.models.prices import PriceTable
from honed.models.types import Usage
from honed.rag.index.embedders import build_embedder, default_registry
from tests.support.stub_openai import Reply, StubServer, stub_openai

KEY_VAR = "STUB_ENDPOINTS_KEY"


@pytest.fixture(scope="module")
def _server() -> Iterator[StubServer]:
    with stub_openai() as server:
        yield server


@pytest.fixture
def stub(_server: StubServer) -> StubServer:
    _server.script, _server.requests, _server.times = [], [], []
    _server.max_active = _server.active = 0
    _server.default_delay_s = 0.0
    return _server


def settings(
    stub: StubServer | None = None, *, retry: dict[str, Any] | None = None, **endpoint: Any
) -> Settings:
    endpoints = {}
    if stub is not None:
        endpoints["stub"] = {"provider": "openai", "base_url": stub.base_url, "timeout_s": 5, **endpoint}
    return Settings.model_validate(
        {
            "endpoints": endpoints,
            "retry": {"base_delay_s": 0.01, "max_delay_s": 0.05, **(retry or {})},
            "prices": {"stub/emb": {"input": 1.0, "output": 0.0}},
        }
    )


def test_chat_and_embeddings_resolve_an_endpoint_the_same_way(tmp_path: Path) -> None:
    s = Settings.model_validate(
        {
            "root": tmp_path,
            "endpoints": {
                "openai": {"provider": "openai", "timeout_s": 7, "max_concurrency": 3},
                "vllm": {"provider": "openai", "base_url": "http://127.0.0.1:1/v1"},
            },
        }
    )
    chat = ModelClient(s).endpoints()
    embed = default_registry().endpoints(s)
    for name in ("openai", "vllm"):
        assert chat[name] == embed[name]
    # A table for a default endpoint changes only what it sets: OpenAI's address and key variable stay.
    assert chat["openai"].base_url == "https://api.openai.com/v1"
    assert chat["openai"].api_key_env == "OPENAI_API_KEY" and chat["openai"].timeout_s == 7
    replaced = merge_endpoints(
        {"x": {"provider": "local"}},
        Settings.model_validate({"endpoints": {"x": {"provider": "openai", "base_url": "http://h/v1"}}}),
    )
    assert replaced["x"].provider == "openai"


def test_api_key_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    assert api_key("e", None) is None
    monkeypatch.delenv(KEY_VAR, raising=False)
    with pytest.raises(MissingAPIKeyError, match=f"{KEY_VAR} is not set") as err:
        api_key("e", KEY_VAR)
    assert "[endpoints.e]" in err.value.one_line()
    monkeypatch.setenv(KEY_VAR, "k1")
    assert api_key("e", KEY_VAR) == "k1"


def test_retry_rule_gives_up_saying_why() -> None:
    policy = RetryConfig(max_attempts=3, base_delay_s=0.01, max_delay_s=0.01, max_total_s=10)
    assert (
        retry_delay(
            policy, RateLimitError("busy", provider="e", retry_after=0.2, retryable=True), 1, time.monotonic()
        )
        == 0.2
    )
    with pytest.raises(RateLimitError, match=r"gave up after 3 attempts\)$"):
        retry_delay(policy, RateLimitError("busy", provider="e", retryable=True), 3, time.monotonic())
    with pytest.raises(ProviderError, match="retry budget spent"):
        retry_delay(
            policy, ProviderError("x", provider="e", retryable=True, retry_after=60), 1, time.monotonic()
        )
    with pytest.raises(ProviderError, match=r"^bad$"):
        retry_delay(policy, ProviderError("bad", provider="e"), 1, time.monotonic())


def test_embeddings_are_priced_by_input_tokens(stub: StubServer) -> None:
    calls = OpenAIEmbeddings("stub", "emb", settings(stub).endpoints["stub"], settings(stub))
    assert calls.spend.requests == 0 and calls.spend.cost_usd == 0.0
    result = calls.embed(["one two three", "four"])  # the stub bills a token per word
    assert result.vectors.shape == (2, 8) and result.usage == Usage(4, 0)
    assert result.cost_usd == pytest.approx(4 / 1_000_000)
    calls.embed(["five six"])
    spend = calls.spend
    assert (spend.requests, spend.input_tokens) == (2, 6) and spend.cost_usd == pytest.approx(6e-6)
    unpriced = OpenAIEmbeddings("stub", "other", settings(stub).endpoints["stub"], settings(stub))
    assert unpriced.embed(["a"]).cost_usd is None and unpriced.spend.cost_usd is None
    # OpenAI's embedding models are in the built-in table, billed for input only.
    assert PriceTable().cost("openai/text-embedding-3-small", Usage(1_000_000, 0)) == pytest.approx(0.02)


def test_embedder_spend_is_the_calls(stub: StubServer) -> None:
    embedder = build_embedder("stub/emb", settings(stub), options={"batch_size": 1})
    embedder.embed(["a b", "c"])
    assert embedder.spend.requests == 2 and embedder.spend.input_tokens == 3  # type: ignore[attr-defined]


def test_embeddings_honour_max_concurrency_across_threads(stub: StubServer) -> None:
    stub.default_delay_s = 0.15
    s = settings(stub, max_concurrency=2)
    calls = OpenAIEmbeddings("stub", "emb", s.endpoints["stub"], s)
    threads = [threading.Thread(target=calls.embed, args=([f"t{i}"],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stub.requests) == 6 and stub.max_active == 2


def test_embeddings_timeout_is_the_endpoints_and_retried(stub: StubServer) -> None:
    stub.script = [Reply(delay_s=1.0), Reply(delay_s=1.0)]
    s = settings(stub, retry={"max_attempts": 2}, timeout_s=0.3)
    calls = OpenAIEmbeddings("stub", "emb", s.endpoints["stub"], s)
    started = time.monotonic()
    with pytest.raises(ProviderError, match=r"timed out after 0.3 s.*gave up after 2 attempts") as err:
        calls.embed(["a"])
    assert err.value.retryable and time.monotonic() - started < 1.5
    assert len(stub.requests) == 2


def test_azure_endpoint_sends_api_key_header_and_no_bearer(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, "az-key")
    body = {"data": [{"index": 0, "embedding": [3.0, 4.0]}], "usage": {"prompt_tokens": 1}}
    stub.script = [Reply(body=body)]
    s = settings(stub, api_key_env=KEY_VAR, azure_api_version="2024-06-01")
    calls = OpenAIEmbeddings("stub", "emb", s.endpoints["stub"], s)
    assert np.allclose(calls.embed(["a"]).vectors, [[3.0, 4.0]])
    headers = stub.requests[0]["headers"]
    assert headers["api-key"] == "az-key" and "authorization" not in headers
