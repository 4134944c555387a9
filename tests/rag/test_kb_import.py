"""`honed kb import` and what issue 16 asked of `honed kb ingest`, run as a user runs them: the real
console script in a subprocess over a real SQLite workspace.

Covered: a BEIR folder imported into a new knowledge base (counts, the dataset `NAME-queries` in the
shape `honed kb eval` reads, a re-import that changes nothing, and `kb eval` over it); failed imports and
ingests that leave no knowledge base behind; documents with repeated text kept by default and dropped,
each reported, with `--dedupe`; JSONL titles; and Cranfield converted to BEIR by
`scripts/beir_from_smart.py` and imported back with all 1,400 documents and the same judgments. Knowledge
bases that hold many documents embed with the stub OpenAI server (deterministic vectors, no model to
load); the one `kb import` creates itself uses the default local model on five documents.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import honed as honed_api
from honed.datasets import get_dataset
from honed.rag.evaluate.collections import load_collection
from honed.rag.evaluate.formats import load_beir
from honed.rag.ingest.importing import query_cases
from tests.conftest import PROJECT_ROOT
from tests.rag.test_formats import CORPUS, beir, jsonl
from tests.support.cli import assert_one_line_error, honed
from tests.support.realdata import DATA_DIR, require
from tests.support.stub_openai import StubServer, stub_openai


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    return result


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result).stdout)


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    with stub_openai() as server:  # one per module: stopping a server takes half a second
        yield server


@pytest.fixture
def stubbed(workspace: Path, stub: StubServer) -> Path:
    """The workspace with the stub server as the endpoint `stub` (embedder `stub/emb`)."""
    with (workspace / "honed.toml").open("a", encoding="utf-8") as toml:
        toml.write(f'\n[endpoints.stub]\nprovider = "openai"\nbase_url = "{stub.base_url}"\n')
    return workspace


@pytest.mark.slow
def test_a_beir_folder_becomes_a_knowledge_base_and_a_dataset_kb_eval_reads(workspace: Path) -> None:
    folder = beir(workspace / "small")

    out = as_json(honed("kb", "import", "small", "small", "--format", "beir", "--json", cwd=workspace))

    assert out["documents"] == 5 and out["ingest"]["added"] == ["5", "d1", "d2", "d3", "d4"]
    assert (out["queries"], out["judged_queries"], out["judgments"]) == (4, 3, 4)
    assert out["splits"] == {"(none)": 1, "test": 2, "train": 1}
    assert out["dataset"] == "small-queries@v1" and out["warnings"] == [] and out["queries_left_out"] == 0
    with honed_api.connect(workspace) as h:
        cases = list(get_dataset(h.store, "small-queries").cases)
    assert cases == query_cases(load_beir(folder).collection)

    again = ok(honed("kb", "import", "small", "small", "--format", "beir", cwd=workspace))
    assert again.stdout.startswith(
        "small: 5 documents (0 added, 0 updated, 5 unchanged; 0 chunks embedded), 4 queries "
        "(3 judged, 4 judgments; splits: (none) 1, test 2, train 1)"
    )
    assert "queries and judgments recorded as dataset small-queries@v1" in again.stdout

    (workspace / "eval.yaml").write_text(
        "name: small\nkb: small\ndataset: small-queries\nsplit: test\nk: 5\nmeasures: [MRR]\n"
        "variants:\n  - {id: bm25, method: bm25}\n",
        encoding="utf-8",
    )
    report = as_json(honed("kb", "eval", "eval.yaml", "--json", cwd=workspace))
    assert report["queries"] == 2 and report["judged"] == 2
    assert report["variants"][0]["aggregate"]["MRR"] == pytest.approx(1.0)


@pytest.mark.slow
def test_a_failed_import_or_ingest_leaves_no_knowledge_base(workspace: Path) -> None:
    beir(workspace / "bad", corpus_jsonl=jsonl(CORPUS[:1]) + "{broken\n")
    (workspace / "docs").mkdir()
    attempts = [
        (["kb", "import", "new", "bad", "--format", "beir"], ["bad/corpus.jsonl:2: not valid JSON"]),
        (["kb", "import", "new", "nowhere", "--format", "beir"], ["nowhere: not a folder"]),
        (["kb", "import", "new", "bad", "--format", "xml"], ["unknown format 'xml'"]),
        (["kb", "import", "new", "docs.trec", "--format", "trec"], ["needs --topics FILE and --qrels FILE"]),
        (
            ["kb", "import", "new", "bad", "--format", "beir", "--split", "dev"],
            ["no split 'dev'", "test, train"],
        ),
        (["kb", "ingest", "new", "missing.md", "--create"], ["missing.md"]),
        # The name is checked before the data folder (none is set here).
        (
            ["kb", "ingest", "new", "--create", "--collection", "nope"],
            ["unknown test collection 'nope'", "cisi"],
        ),
        (["kb", "ingest", "new", "--create", "--collection", "cranfield"], ["no data folder is set"]),
        (["kb", "ingest", "new", "--create"], ["nothing to ingest"]),
        (["kb", "ingest", "new", "docs"], ["no knowledge base 'new'", "--create"]),
    ]
    for args, fragments in attempts:
        assert_one_line_error(honed(*args, cwd=workspace), *fragments)
    assert as_json(honed("kb", "list", "--json", cwd=workspace)) == []


FAQ = [
    {"id": "r1", "text": "Same text here."},
    {"id": "r2", "text": "Same   text\nhere."},
    {"id": "r3", "text": "Other text."},
    {"id": "r4", "name": "Only a title", "text": ""},
    {"id": "r5", "name": "", "text": "  "},
]


@pytest.mark.slow
def test_repeated_text_is_kept_by_default_and_dropped_with_dedupe(stubbed: Path) -> None:
    (stubbed / "faq.jsonl").write_text(jsonl(FAQ), encoding="utf-8")
    for kb in ("all", "deduped"):
        ok(honed("kb", "create", kb, "--embedder", "stub/emb", cwd=stubbed))
    args = ("faq.jsonl", "--title-field", "name")

    kept = as_json(honed("kb", "ingest", "all", *args, "--json", cwd=stubbed))
    assert kept["added"] == ["r1", "r2", "r3", "r4"] and kept["duplicates"] == []
    # A record with a title and no text is kept (its title is its text); one with neither is reported.
    assert kept["skipped"] == [
        {"path": "faq.jsonl:5", "reason": "no text ('text' is empty) and no title ('name')"}
    ]

    deduped = as_json(honed("kb", "ingest", "deduped", *args, "--dedupe", "--json", cwd=stubbed))
    assert deduped["added"] == ["r1", "r3", "r4"]
    assert deduped["duplicates"] == [{"dropped": "r2", "duplicate_of": "r1"}]

    repeat = dict(CORPUS[0], _id="d1-copy")
    beir(stubbed / "rep", corpus_jsonl=jsonl([*CORPUS, repeat]))
    ok(honed("kb", "create", "rep", "--embedder", "stub/emb", cwd=stubbed))
    imported = ok(honed("kb", "import", "rep", "rep", "--format", "beir", "--dedupe", cwd=stubbed))
    assert imported.stdout.startswith("rep: 5 documents (5 added,")
    assert "duplicate skipped: d1-copy (same text as d1)" in imported.stderr


@pytest.mark.slow
def test_cranfield_converted_to_beir_imports_with_every_document_and_the_same_judgments(
    stubbed: Path,
) -> None:
    require("cranfield", "cran.all.1400")
    script = PROJECT_ROOT / "scripts" / "beir_from_smart.py"
    env_data = ["--data-dir", str(DATA_DIR)]
    converted = subprocess.run(
        [sys.executable, str(script), "cranfield", "cran-beir", *env_data],
        cwd=stubbed,
        capture_output=True,
        text=True,
        check=True,
    )
    assert converted.stdout.startswith("cranfield: 1400 documents, 225 queries, 1837 judgments")
    ok(honed("kb", "create", "cran", "--embedder", "stub/emb", cwd=stubbed))

    out = as_json(honed("kb", "import", "cran", "cran-beir", "--format", "beir", "--json", cwd=stubbed))

    assert (
        out["documents"] == 1400 and len(out["ingest"]["added"]) == 1400 and out["ingest"]["duplicates"] == []
    )
    assert (out["queries"], out["judged_queries"], out["judgments"]) == (225, 225, 1837)
    assert out["splits"] == {"test": 225} and out["warnings"] == []
    original = load_collection("cranfield", DATA_DIR)
    with honed_api.connect(stubbed) as h:
        cases = list(get_dataset(h.store, out["dataset"]).cases)
        assert h.store.kb.document_count("cran") == 1400
    assert {c.id: c.metadata["qrels"] for c in cases} == original.qrels
    assert [c.inputs["query"] for c in cases] == list(original.queries.values())


@pytest.mark.slow
def test_ingest_collection_still_records_the_queries_with_train_and_test_splits(stubbed: Path) -> None:
    require("cisi", "CISI.ALL")
    ok(honed("kb", "create", "cisi", "--embedder", "stub/emb", cwd=stubbed))

    out = as_json(
        honed(
            "kb",
            "ingest",
            "cisi",
            "--collection",
            "cisi",
            "--json",
            cwd=stubbed,
            env={"HONED_DATA_DIR": str(DATA_DIR)},
        )
    )

    assert len(out["added"]) == 1460 and out["duplicates"] == [] and out["dataset"] == "cisi-queries@v1"
    with honed_api.connect(stubbed) as h:
        cases = list(get_dataset(h.store, "cisi-queries").cases)
    assert len(cases) == 112 and {c.split for c in cases} == {"train", "test"}
    assert sum(1 for c in cases if c.metadata.get("qrels")) == 76


CISI_SPEC = """\
name: cisi-methods
kb: cisi
dataset: cisi-queries
k: 100
measures: [MAP, nDCG@10, R@100]
variants:
  - {id: bm25, method: bm25}
  - {id: hybrid, method: hybrid}
"""


@pytest.mark.slow
def test_cisi_as_beir_in_one_command_scores_as_bm25s_and_as_search_serves(stubbed: Path) -> None:
    """Issue 16's check on a second collection: CISI converted to BEIR, loaded by one command, BM25 equal
    to a bm25s run file scored by trec_eval's code, and the hybrid that `kb eval` scored (here fusing
    BM25 with the stub's deterministic vectors) equal to what search serves for every query."""
    from honed.rag.evaluate.metrics import evaluate, read_run, write_run
    from honed.rag.index.kb import get_kb
    from tests.support.bm25_reference import bm25s_run

    require("cisi", "CISI.ALL")
    script = PROJECT_ROOT / "scripts" / "beir_from_smart.py"
    subprocess.run(
        [sys.executable, str(script), "cisi", "cisi-beir", "--data-dir", str(DATA_DIR)],
        cwd=stubbed,
        check=True,
        capture_output=True,
    )
    # HNSW is approximate and Chroma's embedded index answers differently after each reload (it re-adds
    # recent vectors on several threads): a search breadth above the 1,460 documents makes it exact.
    create = ["--embedder", "stub/emb", "--chunking", "document", "--ef-search", "2000"]
    ok(honed("kb", "create", "cisi", *create, cwd=stubbed))
    out = as_json(honed("kb", "import", "cisi", "cisi-beir", "--format", "beir", "--json", cwd=stubbed))
    assert out["documents"] == 1460 and out["ingest"]["duplicates"] == []  # repeats kept (1440, 1447)
    (stubbed / "cisi.yaml").write_text(CISI_SPEC, encoding="utf-8")
    report = as_json(honed("kb", "eval", "cisi.yaml", "--run-dir", "runs", "--json", cwd=stubbed))
    by_id = {v["id"]: v for v in report["variants"]}

    with honed_api.connect(stubbed) as h:
        cases = [c for c in get_dataset(h.store, "cisi-queries").cases]
        kb = get_kb(h.store, h.settings, "cisi")
        try:
            documents = kb.documents()
            served = {
                c.id: [
                    (hit.chunk.doc_id, hit.score) for hit in kb.search(c.inputs["query"], k=100, level="doc")
                ]
                for c in cases
            }
        finally:
            kb.close()
    queries = {c.id: c.inputs["query"] for c in cases}
    qrels = {c.id: dict(c.metadata["qrels"]) for c in cases if c.metadata.get("qrels")}
    # The hybrid run file, in its rank order, is what the search API serves, query by query.
    written: dict[str, list[tuple[str, float]]] = {}
    for line in (stubbed / "runs" / "hybrid.run").read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        written.setdefault(qid, []).append((doc, float(score)))
    assert len(written) == len(queries)
    for qid, ranked in written.items():
        assert ranked == served[qid], qid
    path = stubbed / "bm25s.run"
    write_run(path, bm25s_run(documents, queries, 100), "bm25s")
    reference = evaluate(read_run(path), qrels, ["MAP", "nDCG@10", "R@100"]).aggregate
    assert {m: round(x, 4) for m, x in by_id["bm25"]["aggregate"].items()} == {
        m: round(x, 4) for m, x in reference.items()
    }
