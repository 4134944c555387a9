"""Retrieval into prompts: fill a prompt's `retrieve` variables, pick its dynamic few-shot examples and
give its templates their resources, then render.

A prompt says what it needs (`retrieve:`, `examples_from:`, `resources:`; see `honed.prompts.spec`); an
`Augmenter` opens the knowledge bases, datasets and databases those name once, and per call returns the
variables and demonstrations to render with, plus a trace of what was retrieved (chunk ids, scores,
which knowledge-base version and index) so every answer can be traced to its context, evaluated for
faithfulness, and attributed to retrieval or generation when it is wrong.

Context is formatted as numbered chunks, `[1] (doc.md#0) text`, so an answer can cite `[1]`; a token
budget (`max_tokens`) takes chunks in rank order until the next would not fit. Counting uses the same
tokenizer as chunking (cl100k), which is close to, not equal to, the model's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from pydantic import ValidationError

from honed.errors import HonedError, InvalidInputError
from honed.prompts.spec import ExamplesFrom, Prompt, Resource, RetrieveStep
from honed.prompts.template import render
from honed.rag.types import Document, Hit

if TYPE_CHECKING:
    from honed.datasets import Case
    from honed.rag.index.kb import KnowledgeBase
    from honed.rag.retrieve.routing import Router
    from honed.rag.sql import SqlSource
    from honed.rag.types import Embedder
    from honed.workspace import Workspace

#: Default budget of a `stuff` step: what a small model's window holds next to a question.
STUFF_DEFAULT_TOKENS = 1500

T = TypeVar("T")


@dataclass
class Augmented:
    """What a prompt renders with: `variables` (the inputs plus what retrieval filled), `examples`
    (dynamic few-shot pairs) and `trace` (one entry per retrieval: kb, version, index, query, chunk ids,
    scores, tokens)."""

    variables: dict[str, Any]
    examples: list[tuple[str, str]] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)

    def context_texts(self) -> list[str]:
        return [c["text"] for t in self.trace for c in t.get("chunks", [])]

    def context_ids(self) -> list[str]:
        return [c["id"] for t in self.trace for c in t.get("chunks", [])]


def format_chunks(hits: Sequence[Hit], max_tokens: int | None) -> tuple[str, list[Hit]]:
    """Numbered chunks under a token budget, and the hits that made it in."""
    return _numbered(hits, lambda hit: (hit.chunk.id, hit.chunk.text), max_tokens)


def _numbered(
    items: Sequence[T], id_and_text: Callable[[T], tuple[str, str]], max_tokens: int | None
) -> tuple[str, list[T]]:
    """Items as numbered blocks, "[n] (id) text", in order until the next would pass `max_tokens`; and
    the items that made it in. Chunks and stuffed documents are cited the same way."""
    from honed.rag.ingest.chunking import count_tokens

    parts: list[str] = []
    used: list[T] = []
    total = 0
    for item in items:
        item_id, body = id_and_text(item)
        text = f"[{len(used) + 1}] ({item_id}) {body.strip()}"
        n = count_tokens(text) + 1
        if max_tokens is not None and total + n > max_tokens:
            break
        parts.append(text)
        used.append(item)
        total += n
    return "\n\n".join(parts), used


class Augmenter:
    """Prepares prompts that retrieve. One per run: it caches the opened knowledge bases, the example
    pools and SQL connections. Thread-safe for `augment` calls."""

    def __init__(self, h: Workspace, *, base: Path | None = None) -> None:
        self.h = h
        self.base = base or h.settings.root or Path.cwd()
        self._kbs: dict[str, KnowledgeBase] = {}
        self._pools: dict[str, tuple[list[Case], Any]] = {}
        self._sql: dict[str, SqlSource] = {}
        self._embedder: Embedder | None = None
        self._routers: dict[str, Router] = {}
        self._gold: dict[str, dict[str, Document]] = {}  # kb name -> its documents by id
        self._lock = threading.RLock()

    # -- opened parts ---------------------------------------------------------------------------------

    def kb(self, name: str) -> KnowledgeBase:
        from honed.rag.index.kb import get_kb

        with self._lock:
            if name not in self._kbs:
                self._kbs[name] = get_kb(self.h.store, self.h.settings, name)
            return self._kbs[name]

    def _example_embedder(self) -> Embedder:
        from honed.rag.index.embedders import CachedEmbedder, build_embedder
        from honed.rag.index.kb import DEFAULT_EMBEDDER

        with self._lock:
            if self._embedder is None:
                self._embedder = CachedEmbedder(
                    build_embedder(DEFAULT_EMBEDDER, self.h.settings), self.h.store
                )
            return self._embedder

    def _pool(self, spec: ExamplesFrom) -> tuple[list[Case], Any]:
        from honed.datasets import get_dataset

        key = f"{spec.dataset}\x00{spec.split}\x00{spec.query}"
        with self._lock:
            if key not in self._pools:
                ds = get_dataset(self.h.store, spec.dataset)
                cases = list(ds.split(spec.split)) if spec.split else list(ds.cases)
                if not cases:
                    raise InvalidInputError(
                        f"examples_from: dataset {spec.dataset!r} has no cases"
                        + (f" in split {spec.split!r}" if spec.split else "")
                    )
                texts = [
                    render(spec.query, c.inputs, where=f"examples_from query, case {c.id!r}") for c in cases
                ]
                self._pools[key] = (cases, self._example_embedder().embed(texts, query=True))
            return self._pools[key]

    def router(self, spec: dict[str, Any]) -> Router:
        from honed.hashing import content_hash
        from honed.rag.retrieve.routing import Router, RouterConfig

        key = content_hash(spec)
        with self._lock:
            if key not in self._routers:
                try:
                    config = RouterConfig.model_validate(spec)
                except ValidationError as exc:
                    err = exc.errors()[0]
                    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
                    raise InvalidInputError(f"retrieve router: {loc}: {err['msg']}") from None
                self._routers[key] = Router.build(
                    config, self.h.settings, store=self.h.store, client=self.h.client
                )
            return self._routers[key]

    def _sql_source(self, name: str, res: Resource, base: Path | None = None) -> SqlSource:
        """The resource's database. A SQLite file is confined like a `file` resource (its path relative to
        the same folder); a PostgreSQL URL is used as it is (SqlSource refuses roles that could reach
        outside the database)."""
        from honed.rag.sql import SqlSource

        assert res.sql is not None
        url = res.sql
        scheme = url.split("://", 1)[0].lower().split("+")[0] if "://" in url else ""
        if scheme == "sqlite":
            url = f"sqlite:///{self._confined(name, url.split('://', 1)[1][1:], base)}"
        with self._lock:
            key = f"{url}\x00{res.row_limit}"
            if key not in self._sql:
                self._sql[key] = SqlSource(url, row_limit=res.row_limit)
            return self._sql[key]

    def _confined(self, name: str, given: str, base: Path | None) -> Path:
        """`given`, relative to `base` (the prompt file's folder; default: the augmenter's), with symlinks
        resolved. InvalidInputError when it lands outside that folder, or in honed's own data folder (its
        database holds API tokens and every stored run)."""
        root = (base or self.base).resolve()
        path = (root / given).resolve()
        if not path.is_relative_to(root):
            raise InvalidInputError(
                f"resource {name!r}: {given} is outside {root}", hint="use a path inside the workspace"
            )
        settings = self.h.settings
        private = [p for p in (settings.data_folder, settings.data_dir) if p is not None]
        url = settings.database_url or ""
        if url.split("://", 1)[0].lower().split("+")[0] == "sqlite":  # a store database kept elsewhere
            private.append(Path(url.split("://", 1)[1][1:]))
        for folder in (p.resolve() for p in private):
            if path.is_relative_to(folder):
                raise InvalidInputError(
                    f"resource {name!r}: {given} is in honed's own data ({folder})",
                    hint="point it at a file of your own; honed's store is not a resource",
                )
        return path

    def prepare(self, prompt: Prompt, *, base: Path | None = None) -> None:
        """Open what `prompt` refers to, so a missing knowledge base or dataset fails before any call."""
        for step in prompt.retrieve or []:
            if step.router is not None:
                for route in self.router(step.router).config.routes:
                    if route.kb is not None:
                        self.kb(route.kb).index().chunks()
            else:
                assert step.kb is not None
                self.kb(step.kb).index().chunks()
        if prompt.examples_from is not None:
            self._pool(prompt.examples_from)
        for name, res in (prompt.resources or {}).items():
            if res.kb is not None:
                self.kb(res.kb).index().chunks()
            if res.file is not None:
                self._file(name, res, base)
            if res.sql is not None:
                self._sql_source(name, res, base)

    def close(self) -> None:
        for kb in self._kbs.values():
            kb.close()
        for src in self._sql.values():
            src.close()
        self._kbs.clear()
        self._sql.clear()

    # -- per call -------------------------------------------------------------------------------------

    def augment(
        self,
        prompt: Prompt,
        variables: Mapping[str, Any],
        *,
        case_id: str | None = None,
        base: Path | None = None,
        gold: Sequence[str] = (),
    ) -> Augmented:
        """Retrieve for one call. `base` is the folder `file` resources are relative to (the prompt file's
        folder; default: the augmenter's); `gold` is the case's gold context ids (`mode: gold` steps)."""
        values = dict(variables)
        out = Augmented(values)
        clash = sorted(prompt.provided() & set(variables))
        if clash:
            raise InvalidInputError(
                f"prompt {prompt.name!r}: input(s) {', '.join(clash)} have the name of a retrieval variable",
                hint="rename the input or the step's `into` / the resource",
            )
        for step in prompt.retrieve or []:
            values[step.into], entry = self._retrieve(prompt, step, values, gold)
            out.trace.append(entry)
        if prompt.examples_from is not None:
            out.examples = self._examples(prompt.examples_from, values, case_id)
        for name, res in (prompt.resources or {}).items():
            values[name] = self._resource(name, res, out.trace, base)
        return out

    def _retrieve(
        self, prompt: Prompt, step: RetrieveStep, values: dict[str, Any], gold: Sequence[str] = ()
    ) -> tuple[str, dict[str, Any]]:
        name = step.kb
        decision: dict[str, Any] | None = None
        if step.router is not None:
            assert step.query is not None
            query = render(step.query, values, where=f"prompt {prompt.name!r} retrieve query ({step.into})")
            routed = self.router(step.router).route(query)
            decision = routed.to_dict()
            if routed.kb is None:
                return "", {"into": step.into, "route": decision, "chunks": []}
            name = routed.kb
        assert name is not None
        text, entry = self._retrieve_from(prompt, step, values, name, gold)
        if decision is not None:
            entry["route"] = decision
        return text, entry

    def _retrieve_from(
        self, prompt: Prompt, step: RetrieveStep, values: dict[str, Any], name: str, gold: Sequence[str] = ()
    ) -> tuple[str, dict[str, Any]]:
        kb = self.kb(name)
        index = kb.index()
        entry: dict[str, Any] = {
            "kb": kb.name,
            "version": kb.version.hash,
            "index": index.id,
            "into": step.into,
        }
        if step.mode in ("stuff", "gold"):
            pool = kb.documents() if step.mode == "stuff" else self._gold_documents(kb, gold)
            text, docs, total = _stuff(pool, step.max_tokens or STUFF_DEFAULT_TOKENS)
            entry.update({"mode": step.mode, "documents": [d.id for d in docs], "documents_total": total})
            entry["chunks"] = [{"id": d.id, "doc_id": d.id, "text": d.text} for d in docs]
            return text, entry
        assert step.query is not None
        query = render(step.query, values, where=f"prompt {prompt.name!r} retrieve query ({step.into})")
        [hits] = index.search_many([query], k=step.k, method=step.method, alpha=step.alpha, where=step.where)
        text, used = format_chunks(hits, step.max_tokens)
        entry.update(
            {
                "mode": "search",
                "query": query,
                "chunks": [
                    {"id": h.chunk.id, "doc_id": h.chunk.doc_id, "score": h.score, "text": h.chunk.text}
                    for h in used
                ],
                "dropped_for_budget": len(hits) - len(used),
            }
        )
        return text, entry

    def _gold_documents(self, kb: KnowledgeBase, gold: Sequence[str]) -> list[Document]:
        """The documents `gold` names, in its order: by document id, or by the document of a chunk id."""
        from honed.rag.evaluate.attribution import doc_part

        with self._lock:
            if kb.name not in self._gold:
                self._gold[kb.name] = {d.id: d for d in kb.documents()}
            by_id = self._gold[kb.name]
        out: list[Document] = []
        for gid in gold:
            doc = by_id.get(gid) or by_id.get(doc_part(gid) or "")
            if doc is None:
                raise InvalidInputError(
                    f"gold context {gid!r} is not a document of knowledge base {kb.name!r}",
                    hint="a case's context_ids name documents (or chunks) of the knowledge base",
                )
            if doc not in out:
                out.append(doc)
        return out

    def _examples(
        self, spec: ExamplesFrom, values: Mapping[str, Any], case_id: str | None
    ) -> list[tuple[str, str]]:
        cases, vectors = self._pool(spec)
        query = render(spec.query, values, where="examples_from query")
        q = self._example_embedder().embed([query], query=True)[0]
        sims = np.asarray(vectors) @ q
        order = np.argsort(-sims, kind="stable")
        out: list[tuple[str, str]] = []
        for i in order:
            case = cases[int(i)]
            if case_id is not None and case.id == case_id:
                continue  # a case must never be its own demonstration
            fields = {**case.inputs, "reference": case.reference}
            where = f"examples_from case {case.id!r}"
            out.append(
                (
                    render(spec.input, fields, where=f"{where} input"),
                    render(spec.output, fields, where=f"{where} output"),
                )
            )
            if len(out) == spec.k:
                break
        return out

    def _file(self, name: str, res: Resource, base: Path | None = None) -> str:
        assert res.file is not None
        path = self._confined(name, res.file, base)
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"resource {name!r}: cannot read {path} ({exc.strerror})") from None

    def _resource(
        self, name: str, res: Resource, trace: list[dict[str, Any]], base: Path | None = None
    ) -> Callable[..., str]:
        if res.file is not None:
            text = self._file(name, res, base)
            return lambda: text
        if res.kb is not None:
            kb = self.kb(res.kb)

            def search(query: str, k: int | None = None) -> str:
                [hits] = kb.index().search_many([str(query)], k=k or res.k, method=res.method)
                text, used = format_chunks(hits, None)
                trace.append(
                    {
                        "kb": kb.name,
                        "version": kb.version.hash,
                        "resource": name,
                        "query": str(query),
                        "chunks": [
                            {
                                "id": h.chunk.id,
                                "doc_id": h.chunk.doc_id,
                                "score": h.score,
                                "text": h.chunk.text,
                            }
                            for h in used
                        ],
                    }
                )
                return text

            return search
        source = self._sql_source(name, res, base)
        from honed.rag.sql import rows_as_context

        def sql(statement: str | None = None, **params: Any) -> str:
            text = res.query if res.query is not None else statement
            if text is None:
                raise HonedError(
                    f"resource {name!r} needs a SELECT statement", hint=f'{{{{ {name}("SELECT ...") }}}}'
                )
            result = source.query(text, params) if params else source.query(text)
            trace.append(
                {
                    "resource": name,
                    "sql": text,
                    "params": params,
                    "rows": len(result.rows),
                    "truncated": result.truncated,
                }
            )
            return rows_as_context(result)

        return sql


def _stuff(docs: Sequence[Document], budget: int) -> tuple[str, list[Document], int]:
    """Whole documents, numbered, in order, until the next would pass `budget` tokens."""
    text, used = _numbered(docs, lambda doc: (doc.id, doc.text), budget)
    return text, used, len(docs)
