"""Knowledge bases end to end: real files, the real local embedder, real Chroma/Qdrant, SQLite and
PostgreSQL. Each test reads what a user relies on: search finds the right chunk; re-ingesting unchanged
files does no work; a changed file is re-embedded alone; an interrupted ingest is never served as if
complete; bad input leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import honed
from honed.errors import InvalidInputError, NotFoundError, RetrievalError
from honed.rag.index.kb import KIND, KnowledgeBase, KnowledgeBaseConfig, create_kb, get_kb, set_config
from honed.rag.ingest.chunking import ChunkingConfig

DOCS = {
    "returns.md": "# Returns policy\n\nYou can return any product within 30 days of delivery for a full "
    "refund.\n\n"
    "## Damaged items\n\nDamaged items are replaced free of charge. Report the damage within 7 days.\n",
    "shipping.md": "# Shipping\n\nOrders ship within 2 business days. Express shipping costs $12 and arrives "
    "the next day. International shipping reaches 40 countries.\n",
}
RECORDS = [
    {
        "id": "warranty",
        "text": "All electronics carry a 2-year warranty covering defects.",
        "category": "warranty",
    },
    {"id": "gift", "text": "Gift cards never expire and work online or in store.", "category": "payments"},
]


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "faq.jsonl").write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n", encoding="utf-8")
    return folder


def open_kb(
    database_url: str, workspace: Path, store: dict[str, Any] | None = None, name: str = "docs"
) -> KnowledgeBase:
    h = honed.connect(database_url=database_url)
    config = KnowledgeBaseConfig(store=store or {"type": "chroma"})
    create_kb(h.store, name, config, exist_ok=True)
    return get_kb(h.store, h.settings, name)


@pytest.fixture
def docs(workspace: Path) -> Path:
    return write_docs(workspace / "docs")


def test_ingest_a_folder_and_search_it(database_url: str, workspace: Path, docs: Path) -> None:
    kb = open_kb(database_url, workspace)
    report = kb.ingest([docs])
    assert report.added == ["gift", "returns.md", "shipping.md", "warranty"]
    assert report.chunks_total >= 4 and report.chunks_embedded == report.chunks_total
    for method in ("dense", "bm25", "hybrid"):
        hits = kb.search("how many days do I have to return a product for a refund", k=2, method=method)  # type: ignore[arg-type]
        assert hits[0].chunk.doc_id == "returns.md", (method, [h.chunk.id for h in hits])
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    hybrid = kb.search("express shipping price", k=3)
    assert hybrid[0].chunk.doc_id == "shipping.md"
    assert {"dense", "bm25", "fused"} <= set(hybrid[0].scores)
    # A metadata filter (a JSONL field) restricts every retriever.
    for method in ("dense", "bm25", "hybrid"):
        hits = kb.search("warranty on electronics", k=5, method=method, where={"category": "payments"})  # type: ignore[arg-type]
        assert [h.chunk.metadata["category"] for h in hits] == ["payments"] * len(hits), method
    kb.close()


def test_reingesting_unchanged_files_does_no_work(database_url: str, workspace: Path, docs: Path) -> None:
    kb = open_kb(database_url, workspace)
    first = kb.ingest([docs])
    versions = len(kb.store.names.history(KIND, "docs"))
    again = kb.ingest([docs])
    assert not again.changed and again.chunks_embedded == 0 and again.unchanged == 4
    assert again.version == first.version
    assert len(kb.store.names.history(KIND, "docs")) == versions  # no new version either

    (docs / "shipping.md").write_text(
        "# Shipping\n\nOrders now ship the same day, free of charge.\n", encoding="utf-8"
    )
    changed = kb.ingest([docs])
    assert changed.updated == ["shipping.md"] and not changed.added
    assert changed.chunks_embedded == 1  # only the changed document's chunk
    assert changed.version != first.version
    hits = kb.search("when do orders ship", k=4, method="bm25")
    texts = " ".join(h.chunk.text for h in hits)
    assert "same day" in texts and "2 business days" not in texts  # the old text is gone everywhere

    (docs / "returns.md").unlink()
    pruned = kb.ingest([docs], prune=True)
    assert pruned.removed == ["returns.md"]
    assert all(
        h.chunk.doc_id != "returns.md" for h in kb.search("return a product refund", k=5, method="dense")
    )
    kb.close()


def test_a_new_chunking_config_builds_a_new_index_from_stored_documents(
    database_url: str, workspace: Path, docs: Path
) -> None:
    kb = open_kb(database_url, workspace)
    kb.ingest([docs])
    old_index = kb.index().id
    config = kb.config.with_overrides(chunking=ChunkingConfig(strategy="tokens", size=16, overlap=4))
    set_config(kb.store, "docs", config)
    kb2 = get_kb(kb.store, kb.settings, "docs")
    with pytest.raises(RetrievalError, match=r"out of date|incomplete"):
        kb2.search("refund", k=1)
    # No files needed: the index is rebuilt from the documents honed stored.
    report = kb2.ingest_documents(kb2.documents())
    assert report.rebuilt and report.chunks_total > 4
    assert kb2.index().id != old_index
    assert all(h.chunk.text for h in kb2.search("refund within 30 days", k=3))
    kb.close()
    kb2.close()


def test_an_interrupted_ingest_is_never_served_and_the_next_one_repairs_it(
    database_url: str, workspace: Path, docs: Path
) -> None:
    kb = open_kb(database_url, workspace)
    kb.ingest([docs])
    before = kb.store.kb.document_hashes("docs")
    (docs / "shipping.md").write_text("# Shipping\n\nWe ship by drone now.\n", encoding="utf-8")
    vectors = kb.index().vectors
    real_upsert = vectors.upsert

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RetrievalError("the vector store went away")

    vectors.upsert = crash  # type: ignore[method-assign]
    with pytest.raises(RetrievalError, match="went away"):
        kb.ingest([docs])
    vectors.upsert = real_upsert  # type: ignore[method-assign]
    assert kb.store.kb.document_hashes("docs") == before  # the documents were not half-updated
    fresh = get_kb(kb.store, kb.settings, "docs")
    with pytest.raises(RetrievalError, match="incomplete"):
        fresh.search("drone", k=1)
    repaired = fresh.ingest([docs])
    assert repaired.updated == ["shipping.md"] and repaired.rebuilt
    assert fresh.search("drone delivery", k=1, method="bm25")[0].chunk.doc_id == "shipping.md"
    kb.close()
    fresh.close()


def test_bad_input_stores_nothing(database_url: str, workspace: Path) -> None:
    kb = open_kb(database_url, workspace)
    versions = kb.store.names.history(KIND, "docs")
    with pytest.raises(InvalidInputError, match="no such file"):
        kb.ingest([workspace / "missing"])
    bad = workspace / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"bad.jsonl:2"):
        kb.ingest([bad])
    assert kb.store.names.history(KIND, "docs") == versions
    assert kb.store.kb.document_count("docs") == 0
    with pytest.raises(NotFoundError, match="no knowledge base 'nope'"):
        get_kb(kb.store, kb.settings, "nope")
    with pytest.raises(InvalidInputError, match="exists already"):
        create_kb(kb.store, "docs", KnowledgeBaseConfig(embedder="local/other"))
    kb.close()


def test_qdrant_local_mode_serves_the_same_searches(workspace: Path, docs: Path) -> None:
    kb = open_kb(
        f"sqlite:///{workspace / '.honed' / 'honed.db'}", workspace, store={"type": "qdrant"}, name="qd"
    )
    kb.ingest([docs])
    assert kb.search("refund within 30 days", k=1, method="dense")[0].chunk.doc_id == "returns.md"
    assert (workspace / ".honed" / "kb" / "qdrant").is_dir()
    kb.close()


def test_a_chroma_server_holds_the_vectors(chroma_url: str, workspace: Path, docs: Path) -> None:
    """The team path: vectors on a real `chroma run` server, chunks and versions in honed's database."""
    kb = open_kb(
        f"sqlite:///{workspace / '.honed' / 'honed.db'}",
        workspace,
        store={"type": "chroma", "url": chroma_url},
        name="srv",
    )
    kb.ingest([docs])
    hits = kb.search("express shipping cost", k=2, method="dense")
    assert hits[0].chunk.doc_id == "shipping.md"
    assert kb.index().vectors.count() == kb.index().row().chunks
    kb.close()
