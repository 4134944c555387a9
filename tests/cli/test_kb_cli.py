"""`honed kb` as a user runs it: the real console script in a subprocess, over one workspace per module
with a small knowledge base built through the CLI itself (each subprocess costs seconds, so the tests read
the same workspace and none of them changes what the others rely on), and one `honed serve` of it whose
embedder the commands use instead of each loading torch and MiniLM.

Covered: create, ingest (and the no-op re-ingest), list, show, search (table, JSON, `--where`), `eval`
over a dataset imported with `honed datasets import`, one-line errors, and `honed prompts run` of a
prompt that retrieves, answered by the real local model. Markdown front matter as filterable metadata,
and the warnings for a malformed block and for a filter on a field no document has, run in a workspace
of their own whose embedder is the stub OpenAI server (no model to load).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from honed.config import init_workspace
from tests.serve.test_served import start_serve, stop
from tests.support.cli import assert_one_line_error, honed
from tests.support.stub_openai import stub_openai

DOCS = {
    "returns.md": "# Returns\n\nYou can return any product within 30 days of delivery for a full refund.\n",
    "shipping.md": "# Shipping\n\nExpress shipping costs $12 and arrives the next day.\n",
}
RECORDS = [
    {
        "id": "warranty",
        "text": "All electronics carry a 2-year warranty covering defects.",
        "category": "care",
    },
    {"id": "gift", "text": "Gift cards never expire and work online or in store.", "category": "payments"},
]
QUERIES = [
    {
        "id": "q1",
        "inputs": {"query": "how long do I have to return a product"},
        "context_ids": ["returns.md"],
    },
    {"id": "q2", "inputs": {"query": "price of express shipping"}, "context_ids": ["shipping.md"]},
    {"id": "q3", "inputs": {"query": "do gift cards expire"}, "context_ids": ["gift"]},
    {"id": "q4", "inputs": {"query": "warranty on electronics"}, "context_ids": ["warranty"]},
]
EVAL_SPEC = """\
name: small
kb: docs
dataset: qs
k: 5
measures: [MRR, R@5]
variants:
  - {id: bm25, method: bm25}
  - {id: dense, method: dense}
"""
PROMPT = """\
name: rag
model: local/smollm2-135m-instruct
params: {max_tokens: 8, temperature: 0}
messages:
  - {role: system, content: Answer from the context.}
  - {role: user, content: "{{ context }}\\n\\nQuestion: {{ question }}"}
retrieve:
  - {kb: docs, query: "{{ question }}", k: 2}
"""


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    return result


class Built:
    """The module's workspace and what building its knowledge base printed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        docs = root / "docs"
        docs.mkdir()
        for name, text in DOCS.items():
            (docs / name).write_text(text, encoding="utf-8")
        (docs / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
        self.created = ok(honed("kb", "create", "docs", "--description", "shop policies", cwd=root))
        self.ingested = ok(honed("kb", "ingest", "docs", "docs", cwd=root))

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return honed(*args, cwd=self.root)

    def json(self, *args: str) -> Any:
        return json.loads(ok(self.run(*args, "--json")).stdout)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    # One `honed serve` for the module: each command's dense search, ingest and eval sends its texts to
    # the server's MiniLM (`honed.models.served`, same vectors: the identities must match) instead of
    # loading torch and the model in every subprocess. tests/serve/test_served.py holds the served and
    # in-process results equal; tests/rag/test_kb_import.py runs the local embedder in a command.
    root = init_workspace(tmp_path_factory.mktemp("kbcli"))
    server, _ = start_serve(root, "--no-warm")
    try:
        yield Built(root)
    finally:
        stop(server)


def test_create_ingest_list_and_show(ws: Built) -> None:
    assert ws.created.stdout.startswith("created knowledge base docs")
    assert (
        "4 added, 0 updated, 0 removed, 0 unchanged; 4 chunks embedded, 4 in the index" in ws.ingested.stdout
    )
    again = ok(ws.run("kb", "ingest", "docs", "docs"))
    assert "0 added, 0 updated, 0 removed, 4 unchanged; 0 chunks embedded, 4 in the index" in again.stdout

    [listed] = ws.json("kb", "list")
    assert listed["name"] == "docs" and listed["documents"] == 4 and listed["versions"] == 2  # create, ingest
    shown = ws.json("kb", "show", "docs")
    assert shown["documents"] == 4 and shown["config"]["description"] == "shop policies"
    assert [v["note"] for v in shown["versions"]] == ["created", "ingest: +4 ~0 -0"]
    assert shown["version"] == shown["versions"][-1]["hash"]
    [index] = shown["indexes"]
    assert index["state"] == "current" and index["default"] is True and index["chunks"] == 4


def test_search_prints_a_table_or_json_and_filters_by_metadata(ws: Built) -> None:
    table = ok(ws.run("kb", "search", "docs", "how many days to return a product", "-k", "2"))
    lines = table.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "returns.md#0" in line)
    assert "30 days" in lines[first] and "dense=" in lines[first] and "bm25=" in lines[first]
    assert any("│ 2 " in line for line in lines[first + 1 :])

    query = "warranty on electronics and gift cards"
    found = ws.json("kb", "search", "docs", query, "--method", "dense", "--where", '{"category": "payments"}')
    assert found["kb"] == "docs" and found["query"] == query and found["version"]
    # Only the gift card record has that category; the warranty, a better match, is filtered out.
    [hit] = found["hits"]
    assert hit["rank"] == 1 and hit["id"] == "gift#0" and hit["doc_id"] == "gift"
    assert hit["metadata"]["category"] == "payments" and hit["text"] == RECORDS[1]["text"]
    assert set(hit["scores"]) == {"dense"}


@pytest.mark.slow
def test_eval_measures_variants_over_a_dataset_with_context_ids(ws: Built) -> None:
    (ws.root / "qs.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES), encoding="utf-8")
    ok(ws.run("datasets", "import", "qs", "qs.jsonl"))
    (ws.root / "small.yaml").write_text(EVAL_SPEC, encoding="utf-8")
    report = ws.json("kb", "eval", "small.yaml")
    assert report["kb"] == "docs" and report["queries"] == 4 and report["judged"] == 4
    assert report["measures"] == ["MRR", "R@5"] and report["baseline"] == "bm25"
    by_id = {v["id"]: v for v in report["variants"]}
    assert set(by_id) == {"bm25", "dense"}
    # Four queries, each with its one relevant document among four: every one is found in the top 5.
    assert by_id["dense"]["aggregate"]["R@5"] == 1.0 and by_id["dense"]["aggregate"]["MRR"] == 1.0
    assert 0 < by_id["bm25"]["aggregate"]["MRR"] <= 1.0
    assert set(report["comparisons"]["dense"]) == {"MRR", "R@5"}

    # Every query's measures, the candidate pool and the warm-up are in the JSON.
    assert set(by_id["dense"]["per_query"]) == {q["id"] for q in QUERIES}
    assert by_id["dense"]["config"]["candidates"] == 100 and by_id["dense"]["latency_ms"]["warmup"] > 0

    table = ok(ws.run("kb", "eval", "small.yaml", "--run-dir", "runs"))
    assert "4 queries (4 judged) from qs" in table.stdout
    assert "dense vs bm25" in table.stdout and "warm-up ms" in table.stdout
    # The run files hold what search serves for each query, scores and all: one `kb search` through the
    # CLI, the rest through the same function in this process (one model load instead of one a query).
    run = [line.split() for line in (ws.root / "runs" / "dense.run").read_text().splitlines()]

    def written(qid: str) -> list[tuple[str, float]]:
        return [(r[2], float(r[4])) for r in run if r[0] == qid]

    first = QUERIES[0]
    served = ws.json(
        "kb", "search", "docs", first["inputs"]["query"], "--method", "dense", "-k", "5", "--level", "doc"
    )["hits"]
    assert written(first["id"]) == [(h["doc_id"], h["score"]) for h in served]
    import honed as honed_api
    from honed.rag.index.kb import get_kb

    with honed_api.connect(ws.root) as h:
        kb = get_kb(h.store, h.settings, "docs")
        try:
            for q in QUERIES:
                hits = kb.search(q["inputs"]["query"], k=5, method="dense", level="doc")
                assert written(q["id"]) == [(hit.chunk.doc_id, hit.score) for hit in hits]
        finally:
            kb.close()
    # Stored: listed, and shown again without running.
    assert [r["name"] for r in ws.json("kb", "results")] == ["small"]
    again = ws.json("kb", "results", "small")
    assert again["variants"][1]["per_query"] == by_id["dense"]["per_query"]
    assert "MRR per query" in ok(ws.run("kb", "results", "small", "--per-query")).stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["kb", "search", "nope", "refund"], ["no knowledge base 'nope'", "honed kb create nope"]),
        (["kb", "ingest", "docs", "missing/"], ["missing", "no such file"]),
        (["kb", "search", "docs", "refund", "--where", "{bad"], ["--where is not valid JSON"]),
        (["kb", "search", "docs", "refund", "--where", '{"$or": []}'], ["$or"]),
        (["kb", "ingest", "docs", "--collection", "cranfield"], ["no data folder is set", "HONED_DATA_DIR"]),
        (["kb", "eval", "bad-measure.yaml"], ["unknown retrieval measure 'MAPP'", "known:"]),
        (["kb", "eval", "bad-key.yaml"], ["bad-key.yaml:", "variantz: unknown key"]),
    ],
)
def test_user_errors_are_one_line(ws: Built, args: list[str], fragments: list[str]) -> None:
    (ws.root / "bad-measure.yaml").write_text(
        EVAL_SPEC.replace("[MRR, R@5]", "[MRR, MAPP]"), encoding="utf-8"
    )
    (ws.root / "bad-key.yaml").write_text(EVAL_SPEC + "variantz: []\n", encoding="utf-8")
    assert_one_line_error(ws.run(*args), *fragments)


@pytest.mark.slow
def test_prompts_run_retrieves_before_it_asks_the_local_model(ws: Built) -> None:
    (ws.root / "rag.yaml").write_text(PROMPT, encoding="utf-8")
    question = "How many days do I have to return a product?"
    answered = ok(ws.run("prompts", "run", "rag.yaml", "--var", f"question={question}"))
    assert answered.stdout.strip()
    assert "rag (file)" in answered.stderr and "out tokens" in answered.stderr

    data = ws.json("prompts", "run", "rag.yaml", "--var", f"question={question}")
    [entry] = data["retrieved"]
    assert entry["kb"] == "docs" and entry["query"] == question
    assert entry["chunks"][0]["id"] == "returns.md#0" and len(entry["chunks"]) == 2
    user = data["messages"][-1]["content"]
    assert user.startswith("[1] (returns.md#0) # Returns") and user.endswith(f"Question: {question}")
    assert data["text"] == answered.stdout.strip() and 0 < data["output_tokens"] <= 8


POLICY = """\
---
category: policy
title: Returns policy
---
# Returns

You can return any product within 30 days of delivery for a full refund.
"""
SHIPPING = """\
---
category: logistics
---
# Shipping

Returns of parcels are shipped back within 30 days at our cost.
"""


@pytest.mark.slow
def test_front_matter_is_metadata_a_where_filter_finds(tmp_path: Path) -> None:
    with stub_openai() as stub:
        root = init_workspace(tmp_path / "fm")
        with (root / "honed.toml").open("a", encoding="utf-8") as toml:
            toml.write(f'\n[endpoints.stub]\nprovider = "openai"\nbase_url = "{stub.base_url}"\n')
        docs = root / "docs"
        docs.mkdir()
        (docs / "policy.md").write_text(POLICY, encoding="utf-8")
        (docs / "shipping.md").write_text(SHIPPING, encoding="utf-8")
        (docs / "broken.md").write_text("---\ncategory: [policy\n---\n# Broken\n\nStill searchable.\n")
        ok(honed("kb", "create", "docs", "--embedder", "stub/emb", cwd=root))

        ingested = ok(honed("kb", "ingest", "docs", "docs", cwd=root))
        assert "3 added" in ingested.stdout
        [warning] = [line for line in ingested.stderr.splitlines() if "warning" in line]
        assert warning.startswith("warning: docs/broken.md: front matter is not valid YAML")

        # The README's example: hybrid search (the default) filtered on a front matter field.
        query = "how long do returns take"
        where = '{"category": "policy"}'
        found = json.loads(
            ok(honed("kb", "search", "docs", query, "--where", where, "--json", cwd=root)).stdout
        )
        assert [hit["doc_id"] for hit in found["hits"]] == ["policy.md"]
        hit = found["hits"][0]
        assert hit["metadata"]["category"] == "policy" and hit["metadata"]["title"] == "Returns policy"
        assert "category" not in hit["text"] and hit["text"].startswith("# Returns")
        # The malformed block stayed in its document's text (and so in its chunks).
        kept = ok(honed("kb", "search", "docs", "category policy", "--method", "bm25", "--json", cwd=root))
        texts = [h["text"] for h in json.loads(kept.stdout)["hits"] if h["doc_id"] == "broken.md"]
        assert any("category: [policy" in text for text in texts)


def test_a_filter_on_a_field_no_document_has_warns_in_one_line(ws: Built) -> None:
    typo = ws.run("kb", "search", "docs", "refund", "--method", "bm25", "--where", '{"categroy": "care"}')
    assert typo.returncode == 0, typo.stderr
    [line] = typo.stderr.strip().splitlines()
    assert line.startswith("warning: filter field 'categroy' is in no document of knowledge base 'docs'")
    assert "did you mean 'category'?" in line

    known = ws.run("kb", "search", "docs", "refund", "--method", "bm25", "--where", '{"category": "care"}')
    assert known.returncode == 0 and "warning" not in known.stderr
