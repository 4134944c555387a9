"""Knowledge bases: the list, and a knowledge base's config, versions and indexes with a search box.

The search is `KnowledgeBase.search`, i.e. `honed.rag.retrieve.rank`: the one ranking behind `honed kb
search`, prompts that retrieve and `kb eval`, so the chunks a person sees here are the ones served.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from honed.rag.index.kb import KIND, get_kb, index_states, list_kbs
from honed.rag.types import Hit
from honed.ui.web import page
from honed.workspace import Workspace

METHODS = ("hybrid", "bm25", "dense")
LEVELS = ("chunk", "doc")


def router(h: Workspace) -> APIRouter:
    api = APIRouter()

    @api.get("/kb")
    def kbs(request: Request) -> Response:
        rows = [(name, n, at, h.store.kb.document_count(name)) for name, n, at in list_kbs(h.store)]
        return page(request, "kb/list.html", {"rows": rows})

    @api.get("/kb/{name}")
    def kb_page(
        request: Request, name: str, q: str = "", method: str = "hybrid", k: int = 5, level: str = "chunk"
    ) -> Response:
        kb = get_kb(h.store, h.settings, name)
        try:
            hits: list[Hit] | None = None
            if q.strip():
                hits = kb.search(q, k=k, method=method, level=level)  # type: ignore[arg-type]  # rank checks
        finally:
            kb.close()  # the embedder and the vector store's client, opened only by a dense search
        context: dict[str, Any] = {
            "name": name,
            "kb": kb,
            "config": json.dumps(kb.config.body(), indent=2, ensure_ascii=False),
            "documents": h.store.kb.document_count(name),
            "versions": list(reversed(h.store.names.history(KIND, name))),
            "indexes": index_states(h.store, kb),
            "hits": hits,
            "query": {"q": q, "method": method, "k": k, "level": level},
            "methods": METHODS,
            "levels": LEVELS,
        }
        return page(request, "kb/kb.html", context)

    return api
