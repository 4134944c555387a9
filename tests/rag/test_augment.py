"""Retrieval into prompts, for real: a knowledge base on the real local embedder and Chroma, datasets and
runs in the workspace's SQLite, a real SQLite file behind `sql` resources, and the real local model in the
one experiment that makes calls.

What a user relies on: the context a prompt gets is the ranking the knowledge base gives, numbered for
citation and cut to the budget; dynamic examples are the nearest other cases, never the case itself;
resources cannot read outside their folder or write to a database; and an experiment records what each
answer was given, so retrieval can be scored and blamed apart from generation.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import honed
from honed.api import Honed
from honed.datasets import Case, record_cases
from honed.errors import HonedError, InvalidInputError
from honed.experiments import analyse, parse_spec, resolve, run_experiment
from honed.prompts import Chain, Prompt, push
from honed.prompts.inputs import check_chain_variables
from honed.rag.index.kb import KnowledgeBase, KnowledgeBaseConfig, create_kb, get_kb
from honed.rag.ingest.chunking import count_tokens
from honed.rag.retrieve.augment import Augmenter, format_chunks
from honed.run import Renderer, run_chain

MODEL = "local/smollm2-135m-instruct"
DOCS = {
    "returns.md": "# Returns\n\nYou can return any product within 30 days of delivery for a full refund.\n",
    "shipping.md": "# Shipping\n\nExpress shipping costs $12 and arrives the next day. Standard shipping is "
    "free.\n",
    "warranty.md": "# Warranty\n\nAll electronics carry a 2-year warranty covering manufacturing defects.\n",
}
RECORDS = [
    {"id": "gift", "text": "Gift cards never expire and work online or in store.", "category": "payments"},
    {"id": "loyalty", "text": "Loyalty points pay for up to half of an order.", "category": "payments"},
    {"id": "support", "text": "Support answers the phone from 9am to 5pm on weekdays.", "category": "help"},
]
ALL_IDS = sorted([*DOCS, *(r["id"] for r in RECORDS)])
RETURN_Q = "How many days do I have to return a product for a refund?"


def write_docs(folder: Path, docs: dict[str, str] = DOCS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    return folder


def qa(**fields: Any) -> Prompt:
    """A prompt whose user turn reads the retrieved `context` and the `question`."""
    return Prompt.parse(
        {
            "name": "qa",
            "messages": [
                {"role": "system", "content": "Answer from the context only."},
                {"role": "user", "content": "{{ context }}\n\nQuestion: {{ question }}"},
            ],
            **fields,
        }
    )


def numbered(items: list[tuple[str, str]]) -> list[str]:
    """What `format_chunks` promises, spelled out: `[n] (id) text`."""
    return [f"[{i}] ({cid}) {text.strip()}" for i, (cid, text) in enumerate(items, 1)]


@pytest.fixture
def h(workspace: Path) -> Iterator[Honed]:
    h = honed.connect(workspace)
    yield h
    h.close()


@pytest.fixture
def kb(h: Honed, workspace: Path) -> Iterator[KnowledgeBase]:
    create_kb(h.store, "docs", KnowledgeBaseConfig())
    kb = get_kb(h.store, h.settings, "docs")
    kb.ingest([write_docs(workspace / "docs")])
    yield kb
    kb.close()


@pytest.fixture
def augmenter(h: Honed, workspace: Path) -> Iterator[Augmenter]:
    aug = Augmenter(h, base=workspace)
    yield aug
    aug.close()


# -- retrieve: search ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dense", "bm25", "hybrid"])
def test_a_search_step_fills_numbered_chunks_in_rank_order_and_traces_them(
    kb: KnowledgeBase, augmenter: Augmenter, method: str
) -> None:
    prompt = qa(retrieve=[{"kb": "docs", "query": "{{ question }} (refund)", "k": 3, "method": method}])
    out = augmenter.augment(prompt, {"question": RETURN_Q})
    hits = kb.search(f"{RETURN_Q} (refund)", k=3, method=method)  # type: ignore[arg-type]
    assert len(hits) == (2 if method == "bm25" else 3)  # BM25 returns only chunks sharing a term
    assert hits[0].chunk.doc_id == "returns.md"
    expected = numbered([(h.chunk.id, h.chunk.text) for h in hits])
    assert out.variables["context"] == "\n\n".join(expected)
    assert out.variables["question"] == RETURN_Q  # the inputs stay as given
    [entry] = out.trace
    assert entry["kb"] == "docs" and entry["version"] == kb.version.hash and entry["index"] == kb.index().id
    assert entry["mode"] == "search" and entry["into"] == "context"
    assert entry["query"] == f"{RETURN_Q} (refund)"  # the rendered template, not the template
    assert [c["id"] for c in entry["chunks"]] == [h.chunk.id for h in hits]
    # Each method scores on its own scale (cosine, BM25, fused ranks): equal scores mean this method ran.
    assert [c["score"] for c in entry["chunks"]] == pytest.approx([h.score for h in hits])
    assert entry["dropped_for_budget"] == 0
    assert out.context_ids() == [h.chunk.id for h in hits]
    assert out.context_texts() == [h.chunk.text for h in hits]
    messages = prompt.render(out.variables, examples=out.examples)
    assert messages[1]["content"].startswith("[1] (returns.md#0) # Returns")


def test_k_and_where_restrict_what_comes_back(kb: KnowledgeBase, augmenter: Augmenter) -> None:
    one = augmenter.augment(
        qa(retrieve=[{"kb": "docs", "query": "{{ question }}", "k": 1}]), {"question": RETURN_Q}
    )
    assert one.context_ids() == ["returns.md#0"]
    assert one.variables["context"].startswith("[1] (returns.md#0)") and "[2]" not in one.variables["context"]

    question = {"question": "Is there a warranty on electronics I buy online?"}
    unfiltered = augmenter.augment(qa(retrieve=[{"kb": "docs", "query": "{{ question }}", "k": 5}]), question)
    assert unfiltered.context_ids()[0] == "warranty.md#0"
    step = {"kb": "docs", "query": "{{ question }}", "k": 5, "where": {"category": "payments"}}
    for method in ("dense", "bm25", "hybrid"):
        filtered = augmenter.augment(qa(retrieve=[{**step, "method": method}]), question)
        ids = filtered.context_ids()
        # BM25 returns only chunks sharing a term with the query ("online": the gift card record).
        assert ids and set(ids) <= {"gift#0", "loyalty#0"}, method
        assert len(ids) == (1 if method == "bm25" else 2), method
        assert "warranty" not in filtered.variables["context"]


def test_a_token_budget_keeps_whole_chunks_in_rank_order(kb: KnowledgeBase, augmenter: Augmenter) -> None:
    hits = kb.search(RETURN_Q, k=3, method="dense")
    parts = numbered([(h.chunk.id, h.chunk.text) for h in hits])
    cost = [count_tokens(p) + 1 for p in parts]  # +1: the separator between chunks

    def with_budget(max_tokens: int) -> tuple[str, dict[str, Any]]:
        step = {"kb": "docs", "query": "{{ question }}", "k": 3, "method": "dense", "max_tokens": max_tokens}
        out = augmenter.augment(qa(retrieve=[step]), {"question": RETURN_Q})
        return out.variables["context"], out.trace[0]

    text, entry = with_budget(cost[0] + cost[1] - 1)  # one token short of two chunks
    assert text == parts[0] and entry["dropped_for_budget"] == 2
    assert [c["id"] for c in entry["chunks"]] == [hits[0].chunk.id]  # the trace names what was sent
    text, entry = with_budget(cost[0] + cost[1])
    assert text == "\n\n".join(parts[:2]) and entry["dropped_for_budget"] == 1
    text, entry = with_budget(sum(cost))
    assert text == "\n\n".join(parts) and entry["dropped_for_budget"] == 0
    # Whole chunks only: a budget below the first chunk leaves the context empty rather than cutting it.
    text, used = format_chunks(hits, cost[0] - 1)
    assert text == "" and used == []


def test_a_malformed_filter_is_refused_when_the_prompt_is_read() -> None:
    with pytest.raises(InvalidInputError, match=r"\$or"):
        qa(retrieve=[{"kb": "docs", "query": "{{ question }}", "where": {"$or": []}}])


# -- retrieve: stuff -------------------------------------------------------------------------------------


def test_stuff_fits_whole_documents_in_id_order_under_the_budget(
    kb: KnowledgeBase, augmenter: Augmenter
) -> None:
    docs = kb.documents()
    assert sorted(d.id for d in docs) == ALL_IDS
    parts = numbered([(d.id, d.text) for d in sorted(docs, key=lambda d: d.id)])
    everything = augmenter.augment(qa(retrieve=[{"kb": "docs", "mode": "stuff"}]), {"question": "x"})
    assert everything.variables["context"] == "\n\n".join(parts)
    [entry] = everything.trace
    assert entry["mode"] == "stuff" and entry["documents"] == ALL_IDS and entry["documents_total"] == 6
    assert entry["version"] == kb.version.hash

    budget = sum(count_tokens(p) + 1 for p in parts[:3]) + count_tokens(parts[3])  # 1 short of the 4th
    some = augmenter.augment(
        qa(retrieve=[{"kb": "docs", "mode": "stuff", "max_tokens": budget}]), {"question": "x"}
    )
    assert some.variables["context"] == "\n\n".join(parts[:3])
    assert some.trace[0]["documents"] == ALL_IDS[:3] and some.trace[0]["documents_total"] == 6


def test_stuffed_documents_are_the_context_evaluators_see(kb: KnowledgeBase, augmenter: Augmenter) -> None:
    out = augmenter.augment(qa(retrieve=[{"kb": "docs", "mode": "stuff"}]), {"question": "x"})
    texts = {d.id: d.text for d in kb.documents()}
    assert out.context_texts() == [texts[i] for i in ALL_IDS]


# -- examples_from -------------------------------------------------------------------------------------

FAQ = [
    ("hats", "What is the refund policy for hats?", "Hats: 30 days.", "train"),
    ("shoes", "What is the refund policy for shoes?", "Shoes: 60 days.", "test"),
    ("shirts", "Can I get my money back for a shirt?", "Shirts: 14 days.", "train"),
    ("paris", "What is the weather like in Paris today?", "Sunny.", "train"),
    ("lyon", "When does the next train to Lyon leave?", "At 9.", "train"),
]


def faq_prompt(**examples_from: Any) -> Prompt:
    return Prompt.parse(
        {
            "name": "faq",
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "Q: {{ question }}"},
            ],
            "examples": [{"input": "Q: hello", "output": "A: hi"}],
            "examples_from": {
                "dataset": "faq",
                "query": "{{ question }}",
                "k": 2,
                "input": "Q: {{ question }}",
                "output": "A: {{ reference }}",
                **examples_from,
            },
        }
    )


def test_examples_from_are_the_nearest_other_cases_after_the_static_examples(
    h: Honed, augmenter: Augmenter
) -> None:
    record_cases(
        h.store, "faq", [Case(id=i, inputs={"question": q}, reference=r, split=s) for i, q, r, s in FAQ]
    )
    prompt = faq_prompt()
    hats = {"question": FAQ[0][1]}
    out = augmenter.augment(prompt, hats, case_id="hats")
    # The nearest by the same embedding the augmenter uses, the case itself left out.
    from honed.rag.index.embedders import build_embedder
    from honed.rag.index.kb import DEFAULT_EMBEDDER

    embedder = build_embedder(DEFAULT_EMBEDDER, h.settings)
    vectors = np.asarray(embedder.embed([q for _, q, _, _ in FAQ], query=True))
    sims = vectors[1:] @ vectors[0]
    nearest = [FAQ[1 + int(i)] for i in np.argsort(-sims)[:2]]
    assert {n[0] for n in nearest} == {"shoes", "shirts"}  # the fixture means what it says
    assert out.examples == [(f"Q: {q}", f"A: {r}") for _, q, r, _ in nearest]
    messages = prompt.render(out.variables, examples=out.examples)
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert [m["content"] for m in messages[1:3]] == ["Q: hello", "A: hi"]  # static examples come first
    assert [m["content"] for m in messages[3:7]] == [t for pair in out.examples for t in pair]
    assert messages[-1]["content"] == f"Q: {FAQ[0][1]}"

    # Only the id keeps a case out: without it, the case's own text is its nearest neighbour.
    assert augmenter.augment(prompt, hats).examples[0] == (f"Q: {FAQ[0][1]}", "A: Hats: 30 days.")
    # A split limits the pool.
    train_only = augmenter.augment(faq_prompt(split="train"), hats, case_id="hats").examples
    assert len(train_only) == 2 and all("shoes" not in user for user, _ in train_only)
    with pytest.raises(HonedError, match="no cases in split 'dev'"):
        augmenter.augment(faq_prompt(split="dev"), hats, case_id="hats")


# -- resources ----------------------------------------------------------------------------------------


def test_a_file_resource_reads_inside_its_folder_only(h: Honed, workspace: Path) -> None:
    folder = workspace / "prompts"
    folder.mkdir()
    (folder / "policy.txt").write_text("Refunds within 30 days.", encoding="utf-8")
    (workspace / "secret.txt").write_text("the launch codes", encoding="utf-8")
    (folder / "link.txt").symlink_to(workspace / "secret.txt")

    def prompt(path: str) -> Prompt:
        return Prompt.parse(
            {
                "name": "p",
                "messages": [{"role": "user", "content": "Policy: {{ policy() }}\nQ: {{ question }}"}],
                "resources": {"policy": {"file": path}},
            }
        )

    aug = Augmenter(h, base=folder)
    try:
        good = prompt("policy.txt")
        out = aug.augment(good, {"question": "refund?"})
        assert good.render(out.variables)[0]["content"] == "Policy: Refunds within 30 days.\nQ: refund?"
        for escaping in ("../secret.txt", str(workspace / "secret.txt"), "link.txt"):
            with pytest.raises(InvalidInputError, match="is outside") as caught:
                aug.prepare(prompt(escaping))  # refused before any call is planned
            assert "launch codes" not in str(caught.value)
            with pytest.raises(InvalidInputError, match="is outside"):
                aug.augment(prompt(escaping), {"question": "x"})
        with pytest.raises(InvalidInputError, match="cannot read"):
            aug.augment(prompt("missing.txt"), {"question": "x"})
    finally:
        aug.close()


def test_a_kb_resource_is_a_search_the_template_calls(kb: KnowledgeBase, augmenter: Augmenter) -> None:
    prompt = Prompt.parse(
        {
            "name": "p",
            "messages": [
                {"role": "user", "content": "{{ search(question) }}\n--\n{{ search('gift cards', 1) }}"}
            ],
            "resources": {"search": {"kb": "docs", "k": 2, "method": "bm25"}},
        }
    )
    assert prompt.variables() == {"question"}
    out = augmenter.augment(prompt, {"question": RETURN_Q})
    content = prompt.render(out.variables)[0]["content"]
    first = kb.search(RETURN_Q, k=2, method="bm25")
    expected = numbered([(h.chunk.id, h.chunk.text) for h in first])
    assert content == "\n\n".join(expected) + "\n--\n" + numbered([("gift#0", RECORDS[0]["text"])])[0]
    # Each call is traced when the template runs it, with the knowledge base version.
    assert [(t["resource"], t["query"], [c["id"] for c in t["chunks"]]) for t in out.trace] == [
        ("search", RETURN_Q, [h.chunk.id for h in first]),
        ("search", "gift cards", ["gift#0"]),
    ]
    assert {t["version"] for t in out.trace} == {kb.version.hash}


@pytest.fixture
def shop(workspace: Path) -> str:
    path = workspace / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, stock INTEGER)")
    conn.executemany(
        "INSERT INTO products VALUES (?, ?, ?, ?)",
        [(1, "Claw hammer", "tools", 40), (2, "Hand saw", "tools", 12), (3, "Rake", "garden", 0)],
    )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def sql_prompt(content: str, url: str, **resource: Any) -> Prompt:
    return Prompt.parse(
        {
            "name": "p",
            "messages": [{"role": "user", "content": content}],
            "resources": {
                "stock": {
                    "sql": url,
                    "query": "SELECT name, stock FROM products WHERE category = :cat ORDER BY id",
                    **resource,
                },
                "db": {"sql": url, **resource},
            },
        }
    )


def test_a_sql_resource_runs_a_fixed_query_or_a_select_read_only(
    shop: str, augmenter: Augmenter, workspace: Path
) -> None:
    prompt = sql_prompt("{{ stock(cat=category) }}\n{{ db('SELECT count(*) AS n FROM products') }}", shop)
    assert prompt.variables() == {"category"}
    out = augmenter.augment(prompt, {"category": "tools"})
    content = prompt.render(out.variables)[0]["content"]
    assert content == (
        "| name | stock |\n|---|---|\n| Claw hammer | 40 |\n| Hand saw | 12 |\n| n |\n|---|\n| 3 |"
    )
    assert out.trace == [
        {
            "resource": "stock",
            "sql": "SELECT name, stock FROM products WHERE category = :cat ORDER BY id",
            "params": {"cat": "tools"},
            "rows": 2,
            "truncated": False,
        },
        {
            "resource": "db",
            "sql": "SELECT count(*) AS n FROM products",
            "params": {},
            "rows": 1,
            "truncated": False,
        },
    ]
    capped = sql_prompt("{{ db('SELECT name FROM products ORDER BY id') }}", shop, row_limit=1)
    out = augmenter.augment(capped, {})
    assert capped.render(out.variables)[0]["content"].endswith("(only the first 1 rows; there were more)")
    assert out.trace[0]["truncated"] is True

    for statement in ("DELETE FROM products", "SELECT 1; DELETE FROM products", "DROP TABLE products"):
        writer = sql_prompt(f"{{{{ db({statement!r}) }}}}", shop)
        with pytest.raises(InvalidInputError):
            writer.render(augmenter.augment(writer, {}).variables)
    with pytest.raises(HonedError, match=":cat"):  # a fixed query called without its parameter
        unbound = sql_prompt("{{ stock() }}", shop)
        unbound.render(augmenter.augment(unbound, {}).variables)
    with pytest.raises(HonedError, match="needs a SELECT statement"):
        bare = sql_prompt("{{ db() }}", shop)
        bare.render(augmenter.augment(bare, {}).variables)
    conn = sqlite3.connect(workspace / "shop.db")
    assert conn.execute("SELECT count(*) FROM products").fetchone() == (3,)  # nothing was written
    conn.close()


def test_a_sql_resource_opens_only_databases_in_its_folder_and_never_honeds_own(
    h: Honed, augmenter: Augmenter, shop: str, workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert h.store is not None  # opened: it creates the workspace's own database
    store = workspace / ".honed" / "honed.db"
    assert store.is_file()  # API tokens, every stored run
    outside = tmp_path_factory.mktemp("elsewhere") / "other.db"
    conn = sqlite3.connect(outside)
    conn.execute("CREATE TABLE secrets (value TEXT)")
    conn.execute("INSERT INTO secrets VALUES ('the launch codes')")
    conn.commit()
    conn.close()
    (workspace / "link.db").symlink_to(outside)
    refused = {
        f"sqlite:///{store}": "honed's own data",
        "sqlite:///.honed/honed.db": "honed's own data",
        f"sqlite:///{outside}": "is outside",
        "sqlite:///link.db": "is outside",  # a link inside the workspace to a file outside it
        "sqlite:///../other.db": "is outside",
    }
    for url, why in refused.items():
        prompt = sql_prompt("{{ db('SELECT * FROM secrets') }}", url)
        with pytest.raises(InvalidInputError, match=why) as caught:
            augmenter.prepare(prompt)  # refused before any call is planned
        text = caught.value.one_line()
        assert str(caught.value) == text and caught.value.hint and "launch codes" not in text
        with pytest.raises(InvalidInputError, match=why):
            augmenter.augment(prompt, {})
    file_prompt = Prompt.parse(
        {
            "name": "p",
            "messages": [{"role": "user", "content": "{{ conf() }}"}],
            "resources": {"conf": {"file": ".honed/honed.db"}},
        }
    )
    with pytest.raises(InvalidInputError, match="honed's own data"):  # the same rule for files
        augmenter.augment(file_prompt, {})
    # A database inside the workspace, by a path relative to the prompt's folder, works.
    inside = sql_prompt("{{ db('SELECT count(*) AS n FROM products') }}", "sqlite:///shop.db")
    assert inside.render(augmenter.augment(inside, {}).variables)[0]["content"] == "| n |\n|---|\n| 3 |"


def test_a_renderer_renders_while_resources_are_open(h: Honed, shop: str) -> None:
    prompt = sql_prompt("{{ stock(cat='garden') }}", shop)
    with Renderer(h) as renderer:
        rendered = renderer.render(prompt, {})
    assert "| Rake | 0 |" in rendered.messages[0]["content"]
    assert rendered.retrieved is not None


# -- variables and clashes ----------------------------------------------------------------------------


def test_an_input_named_like_a_retrieval_variable_is_a_one_line_error(
    kb: KnowledgeBase, augmenter: Augmenter
) -> None:
    prompt = qa(
        retrieve=[{"kb": "docs", "query": "{{ question }}"}], resources={"policy": {"file": "policy.txt"}}
    )
    for clash in ("context", "policy"):
        with pytest.raises(InvalidInputError, match=f"input\\(s\\) {clash} have the name") as caught:
            augmenter.augment(prompt, {"question": "q", clash: "mine"})
        assert "\n" not in caught.value.one_line() and caught.value.hint


def test_variables_leave_out_what_retrieval_provides(kb: KnowledgeBase, h: Honed, workspace: Path) -> None:
    prompt = Prompt.parse(
        {
            "name": "rag",
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "{{ policy() }} Be {{ style }}."},
                {"role": "user", "content": "{{ context }}\n\n{{ question }}"},
            ],
            "retrieve": [{"kb": "docs", "query": "{{ question }}", "k": 1}],
            "examples_from": {"dataset": "faq", "query": "{{ topic }}", "input": "{{ question }}"},
            "resources": {"policy": {"file": "policy.txt"}},
        }
    )
    assert prompt.variables() == {"question", "style", "topic"}
    assert prompt.provided() == {"context", "policy"}

    # A chain still names the input nobody gives, not the variable retrieval fills.
    chain = Chain.parse(
        {"name": "c", "steps": [{"prompt": prompt.model_dump(exclude_none=True), "output": "a"}]}
    )
    with pytest.raises(InvalidInputError, match="reads variable 'question', which no input") as caught:
        check_chain_variables(chain, [prompt], {"style": "brief", "topic": "t"})
    assert "'context'" not in str(caught.value)
    check_chain_variables(chain, [prompt], {"style": "brief", "topic": "t", "question": "q"})

    # So does an experiment, before any call and before a run is recorded.
    (workspace / "policy.txt").write_text("Be kind.", encoding="utf-8")
    record_cases(h.store, "faq", [Case(id="c1", inputs={"query": "refund?", "style": "x", "topic": "y"})])
    push(h.store, [prompt])
    spec = {"name": "e", "dataset": "faq", "variants": [{"prompt": "rag"}], "evaluators": [{"type": "exact"}]}
    with pytest.raises(InvalidInputError, match=r"case 'c1'.*undefined variable 'question'"):
        run_experiment(h, resolve(h, parse_spec(spec), base=workspace))
    assert h.store.runs.list() == []


@pytest.mark.slow
def test_a_chain_step_that_retrieves_gets_its_context(kb: KnowledgeBase, h: Honed) -> None:
    step = qa(
        model=MODEL, params={"max_tokens": 4}, retrieve=[{"kb": "docs", "query": "{{ question }}", "k": 1}]
    )
    chain = Chain.parse(
        {"name": "c", "steps": [{"prompt": step.model_dump(exclude_none=True), "output": "a"}]}
    )
    result = run_chain(h, chain, {"question": RETURN_Q})
    assert "[1] (returns.md#0)" in result.steps[0].request.messages[1]["content"]


def test_an_experiment_pins_the_dataset_its_examples_come_from(h: Honed) -> None:
    record_cases(h.store, "faq", [Case(id=i, inputs={"question": q}, reference=r) for i, q, r, _ in FAQ])
    record_cases(h.store, "qs", [Case(id="q1", inputs={"question": "Refunds on socks?"})])
    push(h.store, [faq_prompt().model_copy(update={"model": MODEL})])
    spec = parse_spec(
        {"name": "e", "dataset": "qs", "variants": [{"prompt": "faq"}], "evaluators": [{"type": "exact"}]}
    )
    before = resolve(h, spec).hash
    record_cases(
        h.store, "faq", [Case(id=i, inputs={"question": q}, reference=r + "!") for i, q, r, _ in FAQ]
    )
    assert resolve(h, spec).hash != before


@pytest.mark.slow
def test_a_prompt_files_resources_are_found_next_to_it_in_an_experiment(h: Honed, workspace: Path) -> None:
    folder = workspace / "prompts"
    folder.mkdir()
    (folder / "policy.txt").write_text("Refunds within 30 days.", encoding="utf-8")
    (folder / "p.yaml").write_text(
        f"name: p\nmodel: {MODEL}\nparams: {{max_tokens: 4}}\n"
        "messages:\n  - {role: user, content: '{{ policy() }} {{ question }}'}\n"
        "resources:\n  policy: {file: policy.txt}\n",
        encoding="utf-8",
    )
    record_cases(h.store, "qs", [Case(id="q1", inputs={"question": "Refunds?"})])
    spec = {
        "name": "e",
        "dataset": "qs",
        "variants": [{"prompt": "prompts/p.yaml"}],
        "evaluators": [{"type": "exact"}],
    }
    run = run_experiment(h, resolve(h, parse_spec(spec), base=workspace))
    assert run.status == "completed"


# -- an experiment that retrieves, with the real local model --------------------------------------------

CHECKS = """
def context_size(context):
    return len(context or [])


def grade(context, metadata):
    return {"value": float(metadata["pass"]), "passed": metadata["pass"], "details": {"context": context}}
"""


@pytest.mark.slow
def test_an_experiment_records_retrieval_scores_it_and_pins_the_kb_version(
    kb: KnowledgeBase, h: Honed, workspace: Path
) -> None:
    (workspace / "checks.py").write_text(CHECKS, encoding="utf-8")
    prompt = qa(
        model=MODEL,
        params={"max_tokens": 12, "temperature": 0},
        retrieve=[{"kb": "docs", "query": "{{ question }}", "k": 1, "method": "bm25"}],
    )
    push(h.store, [prompt])
    # `pass` scripts the verdict so that every attribution kind is reached whatever the model says.
    cases = [
        Case(id="ok", inputs={"question": RETURN_Q}, reference="30", context_ids=["returns.md"],
             metadata={"pass": True}),
        Case(id="gen", inputs={"question": "How much does express shipping cost?"}, reference="$12",
             context_ids=["shipping.md"], metadata={"pass": False}),
        Case(id="ret", inputs={"question": "Do gift cards expire?"}, reference="never",
             context_ids=["warranty.md"], metadata={"pass": False}),
        Case(id="nogold", inputs={"question": "When does support answer the phone?"}, reference="9am",
             metadata={"pass": False}),
    ]  # fmt: skip
    record_cases(h.store, "rag-qs", cases)
    spec = parse_spec(
        {
            "name": "rag",
            "dataset": "rag-qs",
            "variants": [{"prompt": "qa"}],
            "evaluators": [
                {"type": "python", "name": "size", "function": "checks.py:context_size"},
                {"type": "python", "name": "grade", "function": "checks.py:grade"},
                {"type": "contains"},
            ],
        }
    )
    exp = resolve(h, spec, base=workspace)
    assert exp.body()["knowledge"] == {"docs": kb.version.hash}
    run = run_experiment(h, exp)
    assert run.status == "completed" and run.spec["knowledge"] == {"docs": kb.version.hash}

    rows = {r["case_id"]: r for r in h.store.runs.results(run.id)}
    assert set(rows) == {"ok", "gen", "ret", "nogold"}
    retrieved = {cid: [c["id"] for t in r["retrieved"] for c in t["chunks"]] for cid, r in rows.items()}
    assert retrieved == {
        "ok": ["returns.md#0"],
        "gen": ["shipping.md#0"],
        "ret": ["gift#0"],
        "nogold": ["support#0"],
    }
    for r in rows.values():
        [entry] = r["retrieved"]
        assert entry["kb"] == "docs" and entry["version"] == kb.version.hash and entry["query"]
        assert r["output"] and r["output_tokens"] <= 12
    # Evaluators see the chunk texts that were put into the prompt.
    texts = {d.id: d.text for d in kb.documents()}
    grades = {s["case_id"]: s for s in h.store.runs.scores(run.id) if s["evaluator"] == "grade"}
    assert grades["ret"]["details"]["context"] == [texts["gift"]]
    assert {s["value"] for s in h.store.runs.scores(run.id) if s["evaluator"] == "size"} == {1.0}

    report = analyse(h.store, run.id, n_boot=200)
    assert report.retrieval_judge == "grade"  # the first evaluator with pass/fail, not `size`
    [variant] = report.variants
    summary = report.retrieval[variant]
    assert (summary["results"], summary["with_gold"], summary["gold_retrieved"]) == (4, 3, 2)
    assert summary["gold_retrieved_rate"] == pytest.approx(2 / 3)
    kinds = {k: v["count"] for k, v in summary["attribution"]["kinds"].items()}
    assert kinds == {"ok": 1, "generation_miss": 1, "retrieval_miss": 1, "unknown": 1}
    assert summary["attribution"]["failures"]["n"] == 2
    assert report.to_dict()["retrieval"] == report.retrieval

    # The run is pinned to the knowledge base's content: the same content resumes the same run, new
    # content is a new one.
    assert resolve(h, spec, base=workspace).hash == exp.hash
    kb.ingest([write_docs(workspace / "docs", {**DOCS, "returns.md": "Returns: 45 days, no questions."})])
    changed = resolve(h, spec, base=workspace)
    assert changed.hash != exp.hash and changed.body()["knowledge"] == {"docs": kb.version.hash}


def test_gold_mode_gives_the_case_its_own_gold_documents(kb: KnowledgeBase, augmenter: Augmenter) -> None:
    texts = {d.id: d.text for d in kb.documents()}
    prompt = qa(retrieve=[{"kb": "docs", "mode": "gold"}])
    out = augmenter.augment(prompt, {"question": "x"}, gold=["warranty.md", "returns.md#0", "warranty.md"])
    assert out.variables["context"] == "\n\n".join(
        numbered([("warranty.md", texts["warranty.md"]), ("returns.md", texts["returns.md"])])
    )
    assert out.trace[0]["mode"] == "gold" and out.trace[0]["documents"] == ["warranty.md", "returns.md"]
    assert augmenter.augment(prompt, {"question": "x"}).variables["context"] == ""  # no gold ids
    with pytest.raises(InvalidInputError, match=r"'nope\.md' is not a document of knowledge base 'docs'"):
        augmenter.augment(prompt, {"question": "x"}, gold=["nope.md"])
