"""Embedders: the local model (packaged, folder, workspace), references and their errors, the embedding
cache over SQLite and PostgreSQL, and OpenAI-compatible endpoints over real HTTP.

OpenAI's API cannot be reached from here, so the OpenAI-compatible embedder is tested against the stub
server of tests/support/stub_openai.py: a real HTTP server on 127.0.0.1 that implements `/v1/embeddings`
with deterministic (not unit-length) vectors and answers scripted errors (429, 401, 503) on demand.
Everything else uses the real packaged all-MiniLM-L6-v2 on the CPU.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from honed.config import Settings
from honed.errors import (
    EndpointUnreachableError,
    InvalidInputError,
    MissingAPIKeyError,
    ProviderError,
    RateLimitError,
    UnknownModelError,
)
from honed.rag.index.embedders import CachedEmbedder, EmbedderRegistry, build_embedder, default_registry
from honed.rag.index.embedders import local as local_embedders
from honed.rag.types import Embedder, Vectors
from honed.store import Store
from tests.support.stub_openai import Reply, StubServer, free_port, stub_openai, stub_vector

KEY_VAR = "STUB_EMBED_KEY"
SECRET = "sk-test-very-secret-0123456789"


def settings_for(root: Path | None = None, **endpoints: dict[str, Any]) -> Settings:
    return Settings.model_validate(
        {"root": root, "endpoints": endpoints, "retry": {"base_delay_s": 0.01, "max_delay_s": 0.05}}
    )


def unit_rows(v: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5))


class Counting(Embedder):
    """A real embedder that records what it was asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def identity(self) -> str:
        return self.inner.identity()

    def embed(self, texts: Sequence[str], *, query: bool = False) -> Vectors:
        self.calls.append(list(texts))
        return self.inner.embed(texts, query=query)


# -- the local model -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_default_local_model_is_the_packaged_minilm_shared_with_the_evaluator() -> None:
    from honed.evals.evaluators.similarity import embedding_model

    embedder = build_embedder("local/all-MiniLM-L6-v2", settings_for())
    assert embedder.identity() == "local:all-MiniLM-L6-v2"
    assert embedder.dimension == 384
    assert isinstance(embedder, local_embedders.LocalEmbedder)
    assert embedder.model is embedding_model()  # one copy per process
    bare = build_embedder("all-MiniLM-L6-v2", settings_for())
    assert bare.identity() == embedder.identity()

    texts = [
        "The wing stalls at a high angle of attack.",
        "Lift falls when the airfoil stalls.",
        "Bake bread.",
    ]
    v = embedder.embed(texts)
    assert v.shape == (3, 384) and v.dtype == np.float32 and unit_rows(v)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert np.array_equal(embedder.embed(texts, query=True), v)  # a symmetric model ignores `query`
    assert embedder.embed([]).shape == (0, 384)


@pytest.mark.slow
def test_a_models_dimension_is_read_from_its_folder_without_loading_it(tmp_path: Path) -> None:
    """A search whose query embedding is cached opens the vector store, which needs the dimension: it comes
    from the module configs (the packaged model's older format and today's), not from loading the model."""
    model = local_embedders.load_fresh(local_embedders.packaged_folder())
    model.save(str(tmp_path / "saved"))
    for folder in (local_embedders.packaged_folder(), tmp_path / "saved"):
        assert local_embedders.folder_dimension(folder) == model.get_embedding_dimension() == 384
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": "my.Custom"}]')
    assert local_embedders.folder_dimension(odd) is None  # unknown modules: the model is asked instead
    embedder = build_embedder("local/all-MiniLM-L6-v2", settings_for())
    assert isinstance(embedder, local_embedders.LocalEmbedder)
    assert embedder.dimension == 384 and embedder._model is None  # not loaded until something is embedded


@pytest.mark.slow
def test_a_model_folder_is_named_by_a_fingerprint_of_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(local_embedders.packaged_folder(), folder)
    settings = settings_for()
    embedder = build_embedder(f"local/{folder}", settings)
    identity = embedder.identity()
    assert identity.startswith("local:copy@") and len(identity) == len("local:copy@") + 16
    packaged = build_embedder("local/all-MiniLM-L6-v2", settings)
    assert np.allclose(embedder.embed(["same weights"]), packaged.embed(["same weights"]), atol=1e-6)

    (folder / "README.md").write_text("a new model card changes nothing it computes")
    assert build_embedder(f"local/{folder}", settings).identity() == identity
    config = folder / "config_sentence_transformers.json"
    config.write_text(config.read_text() + "\n")
    assert build_embedder(f"local/{folder}", settings).identity() != identity


@pytest.mark.slow
def test_a_model_saved_in_the_workspace_is_local_slash_its_name(workspace: Path) -> None:
    shutil.copytree(local_embedders.packaged_folder(), workspace / ".honed" / "embedders" / "mine")
    settings = settings_for(workspace)
    assert build_embedder("local/mine", settings).identity().startswith("local:mine@")
    with pytest.raises(UnknownModelError) as err:
        build_embedder("local/yours", settings)
    message = err.value.one_line()
    assert "'yours'" in message and "local/all-MiniLM-L6-v2" in message and "local/mine" in message


def test_unknown_references_are_one_line_errors_listing_what_is_available(tmp_path: Path) -> None:
    settings = settings_for(
        vllm={"provider": "openai", "base_url": "http://127.0.0.1:1/v1"},
        fake={"provider": "scripted"},
    )
    cases = {
        "local/no-such-model": "unknown local embedder 'no-such-model'",
        "nowhere/model": "unknown embedder 'nowhere/model'",
        "fake/model": "endpoint 'fake' uses provider 'scripted', which has no embeddings",
        "": "is empty",
    }
    for ref, expected in cases.items():
        with pytest.raises(UnknownModelError) as err:
            build_embedder(ref, settings)
        message = err.value.one_line()
        assert expected in message and "\n" not in str(err.value)
        assert "local/all-MiniLM-L6-v2" in message
        if ref != "local/no-such-model":
            assert "openai/MODEL" in message and "vllm/MODEL" in message

    not_a_model = tmp_path / "plain-folder"
    not_a_model.mkdir()
    with pytest.raises(InvalidInputError, match="not a sentence-transformers model folder"):
        build_embedder(f"local/{not_a_model}", settings)


def test_options_are_checked() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown option.*'colour'"):
        build_embedder("local/all-MiniLM-L6-v2", settings_for(), options={"colour": "red"})
    with pytest.raises(InvalidInputError, match="batch_size must be a positive integer"):
        build_embedder("local/all-MiniLM-L6-v2", settings_for(), options={"batch_size": 0})
    with pytest.raises(InvalidInputError, match="dimensions must be a positive integer"):
        build_embedder("openai/text-embedding-3-small", settings_for(), options={"dimensions": -1})


def test_plugins_register_kinds_and_default_endpoints() -> None:
    assert {"local", "openai"} <= set(default_registry().kinds())
    registry = EmbedderRegistry(plugins=False)
    registry.add_embedder(
        "constant", lambda ref, settings: ConstantEmbedder(ref.model), default_endpoints={"k": {}}
    )
    embedder = build_embedder("k/seven", settings_for(), registry=registry)
    assert embedder.identity() == "constant:seven"
    with pytest.raises(UnknownModelError, match="available: k/MODEL"):
        build_embedder("local/all-MiniLM-L6-v2", settings_for(), registry=registry)


class ConstantEmbedder(Embedder):
    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def dimension(self) -> int:
        return 2

    def identity(self) -> str:
        return f"constant:{self.name}"

    def embed(self, texts: Sequence[str], *, query: bool = False) -> Vectors:
        return np.tile(np.array([0.6, 0.8], dtype=np.float32), (len(texts), 1))


# -- the embedding cache ----------------------------------------------------------------------------------


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


@pytest.mark.slow
def test_cached_embedder_embeds_each_distinct_miss_once_and_keeps_order(store: Store) -> None:
    inner = Counting(build_embedder("local/all-MiniLM-L6-v2", settings_for()))
    cached = CachedEmbedder(inner, store)
    assert cached.identity() == "local:all-MiniLM-L6-v2" and cached.dimension == 384

    texts = ["alpha wing", "beta flow", "alpha wing", "gamma shock", "beta flow"]
    first = cached.embed(texts)
    assert inner.calls == [["alpha wing", "beta flow", "gamma shock"]]
    assert store.embeddings.count("local:all-MiniLM-L6-v2") == 3
    direct = inner.inner.embed(texts)
    assert np.allclose(first, direct, atol=1e-6) and unit_rows(first)
    assert first[0].tobytes() == first[2].tobytes() and first[1].tobytes() == first[4].tobytes()

    again = cached.embed(["gamma shock", "delta nozzle", "alpha wing", "delta nozzle"])
    assert inner.calls[1:] == [["delta nozzle"]]
    assert again[0].tobytes() == first[3].tobytes() and again[2].tobytes() == first[0].tobytes()
    assert again[1].tobytes() == again[3].tobytes()

    # A fresh process (a new CachedEmbedder) reads the very bytes that were written, and embeds nothing.
    reread = CachedEmbedder(Counting(inner.inner), store)
    assert reread.embed(texts).tobytes() == first.tobytes()
    assert reread.inner.calls == []  # type: ignore[attr-defined]
    assert (reread.hits, reread.misses) == (5, 0)

    # Queries are keyed apart from documents, so asymmetric models can encode them differently.
    cached.embed(["alpha wing"], query=True)
    assert inner.calls[-1] == ["alpha wing"]


def test_cached_embedder_without_a_store_passes_through() -> None:
    inner = Counting(ConstantEmbedder("x"))
    cached = CachedEmbedder(inner, None)
    assert cached.embed(["a", "a"]).shape == (2, 2)
    assert cached.embed(["a"]).shape == (1, 2)
    assert inner.calls == [["a", "a"], ["a"]]


def test_cached_embedder_keys_change_with_the_identity(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as store:
        one, two = Counting(ConstantEmbedder("one")), Counting(ConstantEmbedder("two"))
        CachedEmbedder(one, store).embed(["same text"])
        CachedEmbedder(two, store).embed(["same text"])
        assert one.calls == two.calls == [["same text"]]
        assert store.embeddings.count() == 2
        assert CachedEmbedder(one, store).embed([]).shape == (0, 2)


# -- OpenAI-compatible endpoints (over real HTTP to the stub server) ---------------------------------------


@pytest.fixture(scope="module")
def _server() -> Iterator[StubServer]:
    with stub_openai() as server:  # one per module: stopping a server takes half a second
        yield server


@pytest.fixture
def stub(_server: StubServer) -> StubServer:
    _server.script, _server.requests, _server.times = [], [], []
    return _server


def stub_settings(stub: StubServer, **retry: Any) -> Settings:
    endpoint = {"provider": "openai", "base_url": stub.base_url, "api_key_env": KEY_VAR, "timeout_s": 5}
    settings = settings_for(stub=endpoint)
    return (
        settings.model_copy(update={"retry": settings.retry.model_copy(update=retry)}) if retry else settings
    )


def expected(texts: Sequence[str], dims: int = 8) -> np.ndarray:
    raw = np.array([stub_vector(t, dims) for t in texts], dtype=np.float32)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def test_openai_embeddings_in_batches_normalised_and_in_order(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, SECRET)
    embedder = build_embedder("stub/emb-small", stub_settings(stub), options={"batch_size": 3})
    assert embedder.identity() == "openai:stub/emb-small"
    texts = [f"text number {i}" for i in range(7)] + [""]
    vectors = embedder.embed(texts)
    assert vectors.shape == (8, 8) and vectors.dtype == np.float32 and unit_rows(vectors)
    assert np.allclose(vectors, expected([*texts[:-1], " "]), atol=1e-6)
    assert embedder.dimension == 8
    bodies = [r["body"] for r in stub.requests]
    assert [b["input"] for b in bodies] == [texts[0:3], texts[3:6], [texts[6], " "]]
    assert {b["model"] for b in bodies} == {"emb-small"}
    assert stub.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    embedder.close()


def test_openai_dimensions_option_is_sent_and_known_without_a_call(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, SECRET)
    embedder = build_embedder("stub/emb-small", stub_settings(stub), options={"dimensions": 40})
    assert embedder.dimension == 40 and stub.requests == []
    assert embedder.identity() == "openai:stub/emb-small@40"
    assert np.allclose(embedder.embed(["x"]), expected(["x"], 40), atol=1e-6)
    assert stub.requests[0]["body"]["dimensions"] == 40


def test_openai_dimension_is_learned_from_the_first_reply(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, SECRET)
    embedder = build_embedder("stub/emb-small", stub_settings(stub))
    assert embedder.dimension == 8
    assert len(stub.requests) == 1


def test_openai_retries_429_honouring_retry_after_then_succeeds(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, SECRET)
    stub.script = [
        Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0.3"}),
        Reply(503, {"error": {"message": "overloaded"}}),
    ]
    embedder = build_embedder("stub/emb-small", stub_settings(stub))
    vectors = embedder.embed(["a", "b"])
    assert np.allclose(vectors, expected(["a", "b"]), atol=1e-6)
    assert len(stub.requests) == 3
    assert stub.times[1] - stub.times[0] >= 0.29  # the server asked for 0.3 s


def test_openai_gives_up_after_max_attempts(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VAR, SECRET)
    stub.script = [Reply(429, {"error": {"message": "quota"}}) for _ in range(3)]
    embedder = build_embedder("stub/emb-small", stub_settings(stub, max_attempts=2))
    with pytest.raises(RateLimitError, match=r"HTTP 429.*gave up after 2 attempts"):
        embedder.embed(["a"])
    assert len(stub.requests) == 2


def test_openai_rejected_key_is_a_provider_error_that_never_shows_the_key(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, SECRET)
    stub.script = [Reply(401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}})]
    with pytest.raises(ProviderError) as err:
        build_embedder("stub/emb-small", stub_settings(stub)).embed(["a"])
    assert err.value.status == 401 and not err.value.retryable
    line = err.value.one_line()
    assert "rejected the API key (HTTP 401)" in line and KEY_VAR in line
    assert SECRET not in line and SECRET not in repr(err.value.args)
    assert len(stub.requests) == 1


def test_openai_missing_key_names_the_variable_and_sends_nothing(stub: StubServer) -> None:
    with pytest.raises(MissingAPIKeyError, match=f"{KEY_VAR} is not set"):
        build_embedder("stub/emb-small", stub_settings(stub)).embed(["a"])
    assert stub.requests == []
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY is not set"):  # the built-in endpoint
        build_embedder("openai/text-embedding-3-small", settings_for()).embed(["a"])


def test_openai_unreachable_endpoint_is_one_line_without_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VAR, SECRET)
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    settings = settings_for(down={"provider": "openai", "base_url": base_url, "api_key_env": KEY_VAR})
    with pytest.raises(EndpointUnreachableError) as err:
        build_embedder("down/emb", settings).embed(["a"])
    line = err.value.one_line()
    assert f"cannot reach endpoint 'down' at {base_url}: connection refused" in line
    assert SECRET not in line and "\n" not in str(err.value)


def test_openai_reply_that_is_not_embeddings_is_an_error(stub: StubServer) -> None:
    stub.script = [Reply(200, {"data": [{"index": 0}]})]
    settings = settings_for(stub={"provider": "openai", "base_url": stub.base_url})  # no key needed
    with pytest.raises(ProviderError, match="not an embedding list"):
        build_embedder("stub/emb", settings).embed(["a"])
    assert "authorization" not in stub.requests[0]["headers"]
    stub.script = [Reply(404, {"error": {"message": "model not found"}})]
    with pytest.raises(UnknownModelError, match="no embedding model 'emb'"):
        build_embedder("stub/emb", settings).embed(["a"])
