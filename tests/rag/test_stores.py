"""One behaviour suite for every vector store: Chroma embedded, a real Chroma server (`chroma run`),
Qdrant local mode in a folder and Qdrant in memory.

The oracles are independent of the stores: exact cosine top-k computed with numpy, and
`honed.rag.index.filters.matches` applied to each chunk's metadata. No Qdrant server runs here, so Qdrant's
server mode is covered only by the unreachable-server test.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from honed.errors import InvalidInputError, RetrievalError
from honed.rag.index.filters import matches
from honed.rag.index.stores import builtin_registry, default_registry, open_vector_store
from honed.rag.index.stores.registry import collection_name, store_metadata
from honed.rag.types import Chunk, Vectors, VectorStore
from tests.support.postgres import free_port

DIM = 32
N = 500
KINDS = ["chroma-embedded", "chroma-server", "qdrant-local", "qdrant-memory"]
PERSISTENT = ["chroma-embedded", "chroma-server", "qdrant-local"]

Opener = Callable[..., VectorStore]


def unit(rows: Any) -> Vectors:
    array = np.asarray(rows, dtype=np.float32)
    normed: Vectors = (array / np.linalg.norm(array, axis=1, keepdims=True)).astype(np.float32)
    return normed


def metadata(i: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "group": "abc"[i % 3],
        "n": i % 10,
        # Mostly floats, every fifth an int: numeric filters must compare across the two.
        "score": float(i // 7) if i % 5 else i // 7,
        "flag": i % 2 == 0,
        "tags": ["t", str(i % 3)],  # stored as JSON text
        "note": None,  # dropped
    }
    if i % 4:
        meta["lang"] = "en" if i % 4 in (1, 2) else "de"  # missing on every fourth chunk
    return meta


@dataclass(frozen=True)
class Corpus:
    chunks: list[Chunk]
    vectors: Vectors
    queries: Vectors

    def exact(self, query: Vectors, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        sims = self.vectors @ query
        order = np.argsort(-sims, kind="stable")
        ids = [self.chunks[i].id for i in order if allowed is None or self.chunks[i].id in allowed]
        by_id = {c.id: float(s) for c, s in zip(self.chunks, sims, strict=True)}
        return [(i, by_id[i]) for i in ids[:k]]

    def similarity(self, chunk_id: str, query: Vectors) -> float:
        index = int(chunk_id.split("#")[1])
        return float(self.vectors[index] @ query)


CORPUS = Corpus(
    chunks=[Chunk(f"doc{i // 5}#{i}", f"doc{i // 5}", i, f"text {i}", metadata(i)) for i in range(N)],
    vectors=unit(np.random.default_rng(7).normal(size=(N, DIM))),
    queries=unit(np.random.default_rng(8).normal(size=(40, DIM))),
)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_opener(kind: str, request: pytest.FixtureRequest, root: Path) -> Opener:
    """`open(collection, dimension=DIM, **settings)` for this kind of store."""

    def opener(collection: str, dimension: int = DIM, **settings: Any) -> VectorStore:
        store_type, mode = kind.split("-")
        config: dict[str, Any] = {"type": store_type, **settings}
        if mode == "server":
            config["url"] = request.getfixturevalue("chroma_url")
        elif mode == "memory":
            config["url"] = ":memory:"
        return open_vector_store(config, collection=collection, dimension=dimension, root=root)

    return opener


@pytest.fixture
def opener(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[VectorStore] = []

    def tracked(collection: str, dimension: int = DIM, **settings: Any) -> VectorStore:
        store = make_opener(kind, request, tmp_path / "data")(collection, dimension, **settings)
        opened.append(store)
        return store

    yield tracked
    for store in opened:
        store.close()


def fresh_name() -> str:
    # Unique per test: the Chroma server is shared by the whole session.
    return f"kb-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module", params=KINDS)
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, VectorStore]]:
    """A store of each kind holding the whole corpus, shared by the read-only tests."""
    kind = str(request.param)
    store = make_opener(kind, request, tmp_path_factory.mktemp("stores"))(fresh_name())
    store.upsert(CORPUS.chunks, CORPUS.vectors)
    yield kind, store
    store.drop()
    store.close()


def test_nearest_neighbours_match_exact_cosine(loaded: tuple[str, VectorStore]) -> None:
    _, store = loaded
    assert store.count() == N
    results = store.query_many(CORPUS.queries, 10)
    found = 0
    for query, result in zip(CORPUS.queries, results, strict=True):
        assert len(result) == 10
        scores = [s for _, s in result]
        assert scores == sorted(scores, reverse=True)
        for chunk_id, score in result:
            assert score == pytest.approx(CORPUS.similarity(chunk_id, query), abs=1e-4)
        found += len({i for i, _ in result} & {i for i, _ in CORPUS.exact(query, 10)})
    assert found / (10 * len(CORPUS.queries)) >= 0.95
    # One query alone gives the same answer as in a batch; k beyond the collection returns everything.
    assert [i for i, _ in store.query(CORPUS.queries[0], 10)] == [i for i, _ in results[0]]
    assert len(store.query(CORPUS.queries[0], N + 50)) == N
    assert store.query(CORPUS.queries[0], 0) == []


FILTERS: list[dict[str, Any]] = [
    {"group": "a"},
    {"group": {"$eq": "b"}},
    {"n": 3},
    {"n": {"$eq": 3.0}},
    {"score": {"$eq": 10}},
    {"flag": True},
    {"flag": {"$ne": True}},
    {"lang": {"$ne": "en"}},
    {"n": {"$gt": 7}},
    {"n": {"$gte": 7}},
    {"score": {"$lt": 10.5}},
    {"score": {"$lte": 10}},
    {"n": {"$gt": 2, "$lt": 6}},
    {"group": {"$in": ["a", "c"]}},
    {"n": {"$in": [1, 2, 9]}},
    {"score": {"$in": [0, 5.0, 70]}},
    {"n": {"$in": [1, "x", 2.0]}},
    {"group": {"$in": []}},
    {"lang": {"$nin": ["en"]}},
    {"n": {"$nin": [0, 1, 2]}},
    {"group": {"$nin": []}},
    {"group": "a", "n": {"$gte": 5}, "lang": {"$ne": "de"}},
    {"absent": 1},
    {"absent": {"$ne": 1}},
]


@pytest.mark.parametrize("where", FILTERS, ids=[str(f) for f in FILTERS])
def test_filters_match_the_oracle(loaded: tuple[str, VectorStore], where: dict[str, Any]) -> None:
    _, store = loaded
    allowed = {c.id for c in CORPUS.chunks if matches(c.metadata, where)}
    query = CORPUS.queries[1]
    everything = store.query(query, N, where)
    assert {i for i, _ in everything} == allowed
    top = store.query(query, 10, where)
    assert [i for i, _ in top] == [i for i, _ in CORPUS.exact(query, 10, allowed)]


def test_delete_reupsert_and_drop(opener: Opener) -> None:
    store = opener(fresh_name())
    assert store.count() == 0
    assert store.query(CORPUS.queries[0], 5) == []
    store.upsert(CORPUS.chunks[:100], CORPUS.vectors[:100])
    assert store.count() == 100

    gone = [c.id for c in CORPUS.chunks[:10]]
    store.delete([*gone, "no-such-chunk"])
    store.delete([])
    assert store.count() == 90
    for index in range(10):
        assert gone[index] not in {i for i, _ in store.query(CORPUS.vectors[index], 5)}

    # Upserting an existing id replaces its vector and metadata rather than adding a second point.
    first = CORPUS.chunks[20]
    replaced = Chunk(first.id, first.doc_id, first.position, "new text", {"group": "z"})
    store.upsert([replaced], CORPUS.vectors[99:100])
    assert store.count() == 90
    assert store.query(CORPUS.vectors[99], 2)[0][1] == pytest.approx(1.0, abs=1e-4)
    assert {i for i, _ in store.query(CORPUS.vectors[99], 2)} == {first.id, CORPUS.chunks[99].id}
    [(only, score)] = store.query(CORPUS.queries[0], 5, {"group": "z"})
    assert only == first.id
    assert score == pytest.approx(float(CORPUS.vectors[99] @ CORPUS.queries[0]), abs=1e-4)
    # Repeated ids within one upsert: the last one wins.
    store.upsert([first, replaced], CORPUS.vectors[[5, 6]])
    assert store.count() == 90
    assert store.query(CORPUS.vectors[6], 1)[0][0] == first.id

    store.drop()
    assert store.count() == 0  # the store reopens an empty collection after a drop
    store.drop()  # dropping what is not there is fine
    store.upsert(CORPUS.chunks[:3], CORPUS.vectors[:3])
    assert store.count() == 3


@pytest.mark.parametrize("kind", PERSISTENT)
def test_persists_and_refuses_another_dimension(opener: Opener) -> None:
    name = fresh_name()
    first = opener(name)
    first.upsert(CORPUS.chunks, CORPUS.vectors)
    expected = first.query(CORPUS.queries[2], 10)
    first.close()

    again = opener(name)
    assert again.count() == N
    reopened = again.query(CORPUS.queries[2], 10)
    assert [i for i, _ in reopened] == [i for i, _ in expected]
    assert [s for _, s in reopened] == pytest.approx([s for _, s in expected], abs=1e-5)

    with pytest.raises(RetrievalError, match="16") as error:
        again.query(np.ones(16, dtype=np.float32), 3)
    assert "rebuild" in str(error.value)
    again.close()

    with pytest.raises(RetrievalError) as error:
        opener(name, dimension=16)
    message = str(error.value)
    assert f"holds {DIM}-dimensional vectors" in message and "makes 16" in message
    assert "rebuild" in message and "\n" not in message


def test_same_folder_two_collections(opener: Opener) -> None:
    """Two knowledge bases in one workspace share the store's folder (Qdrant locks it per client)."""
    one, two = opener(fresh_name()), opener(fresh_name())
    one.upsert(CORPUS.chunks[:5], CORPUS.vectors[:5])
    two.upsert(CORPUS.chunks[5:8], CORPUS.vectors[5:8])
    assert (one.count(), two.count()) == (5, 3)
    one.close()
    assert two.count() == 3


def test_qdrant_folder_held_by_another_process(tmp_path: Path) -> None:
    """Qdrant's local mode locks its folder: a second process gets a clear error, not a traceback."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_QDRANT_FOLDER, str(tmp_path / "qdrant")],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        with pytest.raises(RetrievalError, match="is in use") as error:
            open_vector_store({"type": "qdrant"}, collection="kb", dimension=4, root=tmp_path)
        assert "qdrant server" in error.value.one_line()
    finally:
        holder.communicate(b"done\n", timeout=30)


HOLD_QDRANT_FOLDER = """
import sys
from qdrant_client import QdrantClient
client = QdrantClient(path=sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
client.close()
"""


@pytest.mark.parametrize("store_type", ["chroma", "qdrant"])
def test_unreachable_server_is_one_line_error(store_type: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RetrievalError) as error:
        open_vector_store({"type": store_type, "url": url}, collection="kb", dimension=4, root=tmp_path)
    line = error.value.one_line()
    assert url in line and "\n" not in str(error.value)
    assert ("chroma run --path DIR --port N" if store_type == "chroma" else "qdrant") in line


def test_chroma_hnsw_settings_reach_the_collection(tmp_path: Path) -> None:
    config = {"type": "chroma", "ef_search": 150, "ef_construction": 120, "max_neighbors": 24}
    store = open_vector_store(config, collection="kb-hnsw", dimension=4, root=tmp_path)
    store.close()
    # ef_search is a search-time setting: a later open may change it...
    raised = {**config, "ef_search": 400}
    store = open_vector_store(raised, collection="kb-hnsw", dimension=4, root=tmp_path)
    assert hnsw_config(tmp_path / "chroma", "kb-hnsw") == {
        "space": "cosine",
        "ef_search": 400,
        "ef_construction": 120,
        "max_neighbors": 24,
    }
    store.close()
    # ...but the graph's build settings cannot change without a rebuild.
    with pytest.raises(RetrievalError, match="max_neighbors=24, not 32"):
        open_vector_store({**config, "max_neighbors": 32}, collection="kb-hnsw", dimension=4, root=tmp_path)


def hnsw_config(path: Path, name: str) -> dict[str, Any]:
    """The HNSW settings Chroma itself reports for a collection."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(
        path=str(path.resolve()), settings=Settings(anonymized_telemetry=False)
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            hnsw = client.get_collection(name, embedding_function=None).configuration["hnsw"] or {}
        return {k: hnsw.get(k) for k in ("space", "ef_search", "ef_construction", "max_neighbors")}
    finally:
        client.close()  # type: ignore[attr-defined]


def test_registry_lists_types_and_rejects_unknown_settings(tmp_path: Path) -> None:
    assert {"chroma", "qdrant"} <= set(default_registry().kinds())
    assert builtin_registry().kinds() == ["chroma", "qdrant"]
    with pytest.raises(InvalidInputError, match="unknown vector store type 'pinecone'") as error:
        open_vector_store({"type": "pinecone"}, collection="kb", dimension=4, root=tmp_path)
    assert "chroma, qdrant" in str(error.value)
    with pytest.raises(InvalidInputError, match="unknown chroma vector store setting 'ef'") as error:
        open_vector_store({"ef": 10}, collection="kb", dimension=4, root=tmp_path)
    assert "ef_search" in str(error.value)
    with pytest.raises(InvalidInputError, match="hnsw_ef"):
        open_vector_store({"type": "qdrant", "hnsw_ef": -1}, collection="kb", dimension=4, root=tmp_path)
    with pytest.raises(InvalidInputError, match="is not http"):
        open_vector_store({"url": "localhost:8000"}, collection="kb", dimension=4, root=tmp_path)
    with pytest.raises(InvalidInputError, match="needs a 'path'"):
        open_vector_store({"type": "qdrant"}, collection="kb", dimension=4, root=None)
    # The default type is chroma, kept under the workspace's data folder.
    store = open_vector_store({}, collection="my notes/ü", dimension=4, root=tmp_path)
    store.upsert(CORPUS.chunks[:1], unit(np.ones((1, 4))))
    assert store.count() == 1
    store.close()
    assert (tmp_path / "chroma").is_dir()


def test_collection_names_every_store_accepts() -> None:
    assert collection_name("kb-main.v2") == "kb-main.v2"
    odd = ["a", "my notes/ü", "x..y", "-lead", "a" * 600, "éé"]
    cleaned = [collection_name(n) for n in odd]
    assert len(set(cleaned)) == len(odd)
    for name in cleaned:
        assert 3 <= len(name) <= 200 and ".." not in name
        assert name[0].isalnum() and name[-1].isalnum() and name.isascii()
    assert collection_name("my notes/ü").startswith("my_notes-")


def test_metadata_the_store_holds() -> None:
    held = store_metadata(
        {"a": 1, "b": [1, "x"], "c": {"k": None}, "d": None, "_honed_id": "x"}, reserved=["_honed_id"]
    )
    assert held == {"a": 1, "b": '[1, "x"]', "c": '{"k": null}'}
