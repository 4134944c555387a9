"""The knowledge-base pages over a real server: the list, a knowledge base's config, versions and indexes,
and its search box, which ranks as `honed kb search` does; document text renders as text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from honed.rag.index.kb import KnowledgeBaseConfig, create_kb, get_kb
from tests.ui.conftest import HOSTILE, Site, client

ESCAPED = "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"
DOCS = {
    "returns.md": "# Returns\n\nYou can return any product within 30 days of delivery for a full refund.\n",
    "shipping.md": "# Shipping\n\nOrders ship within 2 business days. Express shipping costs $12.\n",
    "hostile.md": f"# Notes\n\nA pasted page said {HOSTILE} about warranty claims.\n",
}


@pytest.fixture(scope="module")
def kb_name(site: Site, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A knowledge base of three documents, ingested (embedded) once for the module."""
    folder: Path = tmp_path_factory.mktemp("docs")
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    h = site.h
    create_kb(h.store, "policies", KnowledgeBaseConfig(description="Shop policies"))
    kb = get_kb(h.store, h.settings, "policies")
    try:
        kb.ingest([folder])
    finally:
        kb.close()
    return "policies"


def test_the_list_links_each_knowledge_base(site: Site, kb_name: str) -> None:
    with client(site) as http:
        page = http.get("/kb")
    assert page.status_code == 200
    assert f'href="/kb/{kb_name}"' in page.text and re.search(r"<td>3</td>", page.text)  # 3 documents


def test_a_knowledge_base_shows_config_versions_and_indexes(site: Site, kb_name: str) -> None:
    with client(site) as http:
        page = http.get(f"/kb/{kb_name}")
    assert page.status_code == 200
    text = page.text
    assert "Shop policies" in text and "3 document(s)" in text
    assert "all-MiniLM-L6-v2" in text and "chroma" in text  # the config and its index
    assert "current" in text and "created" in text  # the index is built for these documents; v1's note
    assert 'id="results"' not in text  # no query, no search


def test_search_ranks_as_kb_search_does(site: Site, kb_name: str) -> None:
    kb = get_kb(site.h.store, site.h.settings, kb_name)
    try:
        expected = kb.search("refund", k=2, method="bm25")
    finally:
        kb.close()
    with client(site) as http:
        page = http.get(f"/kb/{kb_name}", params={"q": "refund", "method": "bm25", "k": 2})
    assert page.status_code == 200
    shown = re.findall(r'<tr class="hit"><td>\d+</td>\s*<td>([0-9.]+)', page.text)
    chunks = re.findall(r"<td><code>([^<]+#\d+)</code></td>", page.text)
    assert chunks == [h.chunk.id for h in expected] and chunks[0].startswith("returns.md")
    assert shown == [f"{h.score:.4f}" for h in expected]
    assert "30 days of delivery" in page.text


def test_document_text_is_text_never_markup(site: Site, kb_name: str) -> None:
    with client(site) as http:
        page = http.get(f"/kb/{kb_name}", params={"q": "warranty pasted", "method": "bm25"})
    assert ESCAPED in page.text and HOSTILE not in page.text


def test_bad_searches_and_unknown_names_are_pages(site: Site, kb_name: str) -> None:
    with client(site) as http:
        method = http.get(f"/kb/{kb_name}", params={"q": "x", "method": "magic"})
        k = http.get(f"/kb/{kb_name}", params={"q": "x", "method": "bm25", "k": 0})
        missing = http.get("/kb/nope")
    assert method.status_code == 400 and "unknown retrieval method" in method.text
    assert k.status_code == 400 and "k must be at least 1" in k.text
    assert missing.status_code == 404 and "no knowledge base &#39;nope&#39;" in missing.text
