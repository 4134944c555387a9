"""`honed kb create|config|ingest|import|list|show|search|eval|results|finetune`: formatting only; the
work is in `honed.rag` (eval and results: `honed.cli.kb_eval`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from honed.cli.common import (
    JsonOption,
    err_console,
    open_honed,
    parse_json_option,
    print_json,
    print_table,
    progress_bars,
)
from honed.cli.kb_eval import eval_, results
from honed.cli.option_sets import OptionSet, unset
from honed.hashing import short

app = typer.Typer(
    help="Knowledge bases for retrieval: create, ingest files, search, evaluate retrieval.",
    no_args_is_help=True,
)

NameArgument = typer.Argument(..., help="Knowledge base name, e.g. docs.")


@dataclass(frozen=True)
class _ConfigChanges:
    """What `kb create|config` were told to set; `None` keeps the base config's value."""

    description: str | None = None
    chunking: str | None = None
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    embedder: str | None = None
    store: str | None = None
    store_url: str | None = None
    store_path: Path | None = None
    ef_search: int | None = None

    def apply(self, base: Any) -> Any:
        """`base` (a `KnowledgeBaseConfig`, or `None` for the defaults) with these changes, validated."""
        from honed.rag.index.kb import KnowledgeBaseConfig
        from honed.rag.ingest.chunking import ChunkingConfig

        data = base.model_dump() if base is not None else KnowledgeBaseConfig().model_dump()
        if self.description is not None:
            data["description"] = self.description
        chunk = dict(data["chunking"])
        for key, value in (
            ("strategy", self.chunking),
            ("size", self.chunk_size),
            ("overlap", self.chunk_overlap),
        ):
            if value is not None:
                chunk[key] = value
        data["chunking"] = ChunkingConfig.model_validate(chunk).model_dump() if chunk else chunk
        if self.embedder is not None:
            data["embedder"] = self.embedder
        if self.store is not None or self.store_url is not None or self.store_path is not None:
            spec: dict[str, Any] = {"type": self.store or data["store"].get("type", "chroma")}
            if self.store_url is not None:
                spec["url"] = self.store_url
            if self.store_path is not None:
                spec["path"] = str(self.store_path.resolve())
            data["store"] = spec
        if self.ef_search is not None:
            data["store"] = {**data["store"], "ef_search": self.ef_search}
        return KnowledgeBaseConfig.parse(data)


#: The options of `kb create` and `kb config`, gathered into a `_ConfigChanges`.
CONFIG_OPTIONS = OptionSet(
    {
        "description": unset("--description", "What it holds."),
        "chunking": unset(
            "--chunking", "recursive (default), tokens, sentences, or document (one chunk each)."
        ),
        "chunk_size": unset("--chunk-size", "Max tokens per chunk (default 256).", int | None),
        "chunk_overlap": unset(
            "--chunk-overlap", "Tokens shared by neighbouring chunks (default 32).", int | None
        ),
        "embedder": unset(
            "--embedder", "local/all-MiniLM-L6-v2 (default), local/NAME (fine-tuned), ENDPOINT/MODEL."
        ),
        "store": unset("--store", "chroma (default, embedded in the workspace) or qdrant."),
        "store_url": unset("--store-url", "A Chroma or Qdrant server, e.g. http://127.0.0.1:8000."),
        "store_path": unset(
            "--store-path", "Folder of an embedded store (default: the workspace).", Path | None
        ),
        "ef_search": unset(
            "--ef-search",
            "HNSW search breadth (Chroma). Above the number of chunks the dense search is in effect exact "
            "and the same after every reload; the default (100) is approximate.",
            int | None,
            min=1,
        ),
    },
    _ConfigChanges,
)

DedupeOption = typer.Option(
    False,
    "--dedupe",
    help="Drop documents whose text repeats an earlier one's, reporting each (default: keep every id).",
)
EfSearchOption = typer.Option(
    None,
    "--ef-search",
    min=1,
    help="HNSW search breadth (Chroma). Above the number of chunks the dense search is in effect exact "
    "and the same after every reload; the default (100) is approximate.",
)


@app.command("create")
@CONFIG_OPTIONS.into("changes")
def create(name: str = NameArgument, *, changes: _ConfigChanges, json_out: bool = JsonOption) -> None:
    """Create an empty knowledge base with its chunking, embedder and vector store."""
    from honed.rag.index.kb import create_kb

    h = open_honed(require_workspace=True)
    config = changes.apply(None)
    version = create_kb(h.store, name, config)
    if json_out:
        print_json({"kb": name, "version": version.hash, "config": config.body()})
    else:
        typer.echo(f"created knowledge base {name} ({short(version.hash)}): {json.dumps(config.body())}")


@app.command("config")
@CONFIG_OPTIONS.into("changes")
def config_(name: str = NameArgument, *, changes: _ConfigChanges, json_out: bool = JsonOption) -> None:
    """Change how a knowledge base is chunked, embedded or stored (a new version; the next ingest
    builds the new index from the stored documents)."""
    from honed.rag.index.kb import get_kb, set_config

    h = open_honed(require_workspace=True)
    kb = get_kb(h.store, h.settings, name)
    config = changes.apply(kb.config)
    version = set_config(h.store, name, config)
    if json_out:
        print_json({"kb": name, "version": version.hash, "config": config.body()})
    else:
        typer.echo(
            f"{name}: config is now {json.dumps(config.body())}; run `honed kb ingest {name}` to build it"
        )


@app.command("ingest")
def ingest(
    name: str = NameArgument,
    paths: list[str] = typer.Argument(None, help="Files, folders or globs (txt, md, html, pdf, jsonl)."),
    prune: bool = typer.Option(False, "--prune", help="Remove documents that are not among PATHS."),
    text_field: str = typer.Option("text", "--text-field", help="JSONL: the field holding the text."),
    id_field: str = typer.Option("id", "--id-field", help="JSONL: the field holding the document id."),
    title_field: str = typer.Option(
        "title", "--title-field", help="JSONL: the field holding the title (the text of a record with none)."
    ),
    dedupe: bool = DedupeOption,
    collection: str | None = typer.Option(
        None,
        "--collection",
        help="Ingest a test collection from the data folder (cranfield, cisi) and record its queries "
        "with their relevance judgments as the dataset NAME-queries.",
    ),
    create: bool = typer.Option(False, "--create", help="Create the knowledge base if it does not exist."),
    follow_links: bool = typer.Option(
        False,
        "--follow-links",
        help="Also read links that lead out of the folders named (each one is reported).",
    ),
    max_file_mb: float | None = typer.Option(
        None, "--max-file-mb", help="Skip files larger than this (default 100 MB).", min=0
    ),
    max_pdf_pages: int | None = typer.Option(
        None, "--max-pdf-pages", help="Skip PDFs with more pages (default 2000).", min=1
    ),
    max_chars: int | None = typer.Option(
        None, "--max-chars", help="Skip documents with more characters of text (default 2000000).", min=1
    ),
    json_out: bool = JsonOption,
) -> None:
    """Ingest documents. Unchanged documents are skipped; changed ones re-chunked and re-embedded.

    Only regular files inside the folders named (a folder, a glob's fixed part, a file's folder) are
    read: links out of them, FIFOs, devices and files over a limit are skipped, each reported with the
    reason. Every document with its own id is kept, repeated text or not, unless --dedupe. The input is
    read and checked before --create creates anything.

      honed kb ingest docs docs/ --create
      honed kb ingest docs 'manuals/**/*.pdf' --max-pdf-pages 5000
      honed kb ingest docs faq.jsonl --title-field question --text-field answer --dedupe
    """
    from honed.rag.ingest.importing import ingest as ingest_into
    from honed.rag.ingest.loaders import LoadLimits

    given = {
        "max_file_bytes": None if max_file_mb is None else int(max_file_mb * 1024 * 1024),
        "max_pdf_pages": max_pdf_pages,
        "max_chars": max_chars,
    }
    h = open_honed(require_workspace=True)
    with progress_bars(disable=json_out) as progress:
        report, dataset = ingest_into(
            h,
            name,
            paths=paths or (),
            collection=collection,
            create=create,
            prune=prune,
            dedupe=dedupe,
            text_field=text_field,
            id_field=id_field,
            title_field=title_field,
            follow_links=follow_links,
            limits=LoadLimits(**{k: v for k, v in given.items() if v is not None}),
            progress=progress,
        )
    extra = {"dataset": dataset} if dataset is not None else {}
    if json_out:
        print_json({**report.to_dict(), **extra})
        return
    parts = [f"{len(report.added)} added", f"{len(report.updated)} updated", f"{len(report.removed)} removed"]
    parts.append(f"{report.unchanged} unchanged")
    typer.echo(
        f"{name}: {', '.join(parts)}; {report.chunks_embedded} chunks embedded, {report.chunks_total} in the "
        f"index; version {short(report.version)}" + (" (index rebuilt)" if report.rebuilt else "")
    )
    for dropped, original in report.duplicates:
        # Paths and reasons are plain text: a file named `[b]x.md` is not markup.
        err_console.print(Text(f"duplicate skipped: {dropped} (same text as {original})", style="dim"))
    for path, reason in report.skipped:
        err_console.print(Text(f"skipped: {path} ({reason})", style="dim"))
    for link, target in report.followed:
        err_console.print(f"followed link: {link} -> {target} (--follow-links)", markup=False)
    for path, warning in report.warnings:
        err_console.print(f"warning: {path}: {warning}", markup=False, highlight=False, soft_wrap=True)
    if extra:
        typer.echo(f"queries and judgments recorded as dataset {extra['dataset']}")


@app.command("list")
def list_(json_out: bool = JsonOption) -> None:
    """Every knowledge base with its document count."""
    from honed.rag.index.kb import list_kbs

    h = open_honed(require_workspace=True)
    rows = []
    for name, versions, changed in list_kbs(h.store):
        rows.append(
            {
                "name": name,
                "versions": versions,
                "documents": h.store.kb.document_count(name),
                "changed": str(changed)[:19],
            }
        )
    if json_out:
        print_json(rows)
    else:
        print_table(
            None,
            ["name", "documents", "versions", "changed"],
            [[r["name"], r["documents"], r["versions"], r["changed"]] for r in rows],
        )


@app.command("show")
def show(name: str = NameArgument, json_out: bool = JsonOption) -> None:
    """A knowledge base's config, versions and indexes."""
    from honed.rag.index.kb import KIND, get_kb, index_states

    h = open_honed(require_workspace=True)
    kb = get_kb(h.store, h.settings, name)
    indexes = [state.to_dict() for state in index_states(h.store, kb)]
    history = h.store.names.history(KIND, name)
    versions = [
        {"n": v.number, "hash": v.hash, "note": v.note, "at": str(v.created_at)[:19]} for v in history
    ]
    data: dict[str, Any] = {
        "kb": name,
        "version": kb.version.hash,
        "config": kb.config.body(),
        "documents": h.store.kb.document_count(name),
        "versions": versions,
        "indexes": indexes,
    }
    if json_out:
        print_json(data)
        return
    typer.echo(f"{name} v{kb.version.number} ({short(kb.version.hash)}): {data['documents']} documents")
    typer.echo(f"config: {json.dumps(data['config'])}")
    print_table(
        "versions",
        ["#", "hash", "note", "at"],
        [[v["n"], short(str(v["hash"])), v["note"], v["at"]] for v in versions],
    )
    print_table(
        "indexes",
        ["index", "chunks", "state", "config"],
        [
            [
                short(str(i["id"])) + (" *" if i["default"] else ""),
                i["chunks"],
                i["state"],
                json.dumps(i["config"]),
            ]
            for i in indexes
        ],
    )


@app.command("search")
def search(
    name: str = NameArgument,
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(5, "-k", "--k", help="How many chunks (or documents)."),
    method: str = typer.Option("hybrid", "--method", help="hybrid (default), dense or bm25."),
    alpha: float = typer.Option(0.5, "--alpha", help="Hybrid: weight of dense vs BM25 (1 = dense only)."),
    where: str | None = typer.Option(
        None, "--where", help='Metadata filter as JSON, e.g. {"source": "faq.md"}.'
    ),
    rerank_model: str | None = typer.Option(
        None, "--rerank-model", help="Rerank the candidates with this LLM."
    ),
    candidates: int | None = typer.Option(
        None, "--candidates", min=1, help="Chunks each retriever hands to fusion and reranking (100)."
    ),
    level: str = typer.Option("chunk", "--level", help="chunk (default), or doc: each document once."),
    json_out: bool = JsonOption,
) -> None:
    """Search a knowledge base and print the best chunks (or documents) with their scores: the same
    ranking `honed kb eval` scores for the same settings.

      honed kb search docs "refund policy" --method bm25 -k 10 --level doc
    """
    import warnings

    from honed.rag.index.filters import UnknownFieldWarning
    from honed.rag.index.kb import get_kb
    from honed.rag.retrieve.rank import pool_size

    h = open_honed(require_workspace=True)
    kb = get_kb(h.store, h.settings, name)
    filt: dict[str, Any] | None = None
    if where is not None:
        filt = parse_json_option(where, "--where", '{"source": "faq.md"}')
    reranker = None
    if rerank_model:
        from honed.rag.retrieve.rerank import build_reranker  # imports the evaluators: only when asked for

        reranker = build_reranker({"type": "llm", "model": rerank_model}, h.client, h.settings.root)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnknownFieldWarning)
            hits = kb.search(
                query,
                k=k,
                method=method,  # type: ignore[arg-type]
                alpha=alpha,
                where=filt,
                reranker=reranker,
                candidates=candidates,
                level=level,  # type: ignore[arg-type]
            )
    finally:
        kb.close()
        h.close()
    for warning in caught:
        if issubclass(warning.category, UnknownFieldWarning):
            err_console.print(f"warning: {warning.message}", markup=False, highlight=False, soft_wrap=True)
    if json_out:
        print_json(
            {
                "kb": name,
                "version": kb.version.hash,
                "query": query,
                "method": method,
                "level": level,
                "candidates": pool_size(k, candidates),
                "hits": [hit.to_dict() for hit in hits],
            }
        )
        return
    rows = []
    for hit in hits:
        stages = " ".join(f"{k}={v:.3f}" for k, v in hit.scores.items())
        text = " ".join(hit.chunk.text.split())
        rows.append([hit.rank, hit.chunk.id, f"{hit.score:.4f}", stages, text[:300]])
    print_table(f"{name}: {query}", ["#", "chunk", "score", "stages", "text"], rows, ratios={"text": 4})


app.command("eval")(eval_)
app.command("results")(results)


@app.command("finetune")
def finetune(
    kb_name: str = typer.Argument(..., help="The knowledge base whose documents are the passages."),
    output: str = typer.Option(..., "--output", "-o", help="Name of the new embedder (use as local/NAME)."),
    dataset: str = typer.Option(..., "--dataset", help="Queries with relevance judgments (NAME[@REF])."),
    split: str | None = typer.Option("train", "--split", help="Train on this split only (default train)."),
    query_field: str = typer.Option("query", "--query-field", help="The input holding the query."),
    epochs: int = typer.Option(1, "--epochs", help="Passes over the pairs."),
    batch_size: int = typer.Option(16, "--batch-size", help="Pairs per step (the in-batch negatives)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an embedder of the same name."),
    json_out: bool = JsonOption,
) -> None:
    """Fine-tune the knowledge base's embedder on (query, relevant document) pairs, on the CPU."""
    from honed.experiments.retrieval import training_pairs
    from honed.rag.index.embedders.finetune import finetune_embedder
    from honed.rag.index.kb import get_kb

    h = open_honed(require_workspace=True)
    kb = get_kb(h.store, h.settings, kb_name)
    pairs = training_pairs(h, kb, dataset, split=split, query_field=query_field)
    with progress_bars(disable=json_out, piped_lines=True) as progress:

        def started(steps: int) -> None:
            # Said before the model loads: the first step's bar comes seconds later, the end minutes.
            if not json_out:
                of = f"{dataset} split {split}" if split else dataset
                err_console.print(
                    f"fine-tuning {kb.config.embedder} into local/{output} on {len(pairs):,} (query, "
                    f"document) pairs of {of}: {epochs} epoch(s), {steps} steps of up to {batch_size} "
                    "pairs, on the CPU",
                    markup=False,
                    highlight=False,
                )
            progress("training", 0, steps)

        result = finetune_embedder(
            pairs,
            name=output,
            settings=h.settings,
            base=kb.config.embedder,
            epochs=epochs,
            batch_size=batch_size,
            overwrite=overwrite,
            progress=lambda done, total, loss: progress("training", done, total),
            on_start=started,
        )
    data = {
        "embedder": f"local/{result.name}",
        "path": str(result.path),
        "pairs": len(pairs),
        "steps": result.steps,
        "first_loss": result.losses[0] if result.losses else None,
        "last_loss": result.losses[-1] if result.losses else None,
        "seconds": result.seconds,
    }
    if json_out:
        print_json(data)
    else:
        typer.echo(
            f"trained local/{result.name} on {len(pairs)} pairs in {result.steps} steps "
            f"({result.seconds:.0f} s); loss {data['first_loss']:.3f} -> {data['last_loss']:.3f}"
        )


@app.command("import")
def import_(
    name: str = NameArgument,
    path: Path = typer.Argument(
        ..., help="BEIR: the collection's folder. TREC: the corpus (<DOC> blocks, or JSONL like BEIR's)."
    ),
    fmt: str = typer.Option(..., "--format", metavar="beir|trec", help="The collection's layout."),
    split: list[str] = typer.Option(
        [],
        "--split",
        metavar="SPLIT",
        help="BEIR: read only qrels/SPLIT.tsv (repeatable) and keep the queries it judges (default: every "
        "qrels file, every query). TREC: the split the --qrels file is; only the topics it judges are kept.",
    ),
    topics: Path | None = typer.Option(None, "--topics", help="TREC: the topics file (<top> blocks)."),
    qrels: Path | None = typer.Option(None, "--qrels", help="TREC: the qrels file (`topic 0 docno grade`)."),
    topic_field: str = typer.Option(
        "title", "--topic-field", help="TREC: the query text: title (default), desc or title+desc."
    ),
    dedupe: bool = DedupeOption,
    json_out: bool = JsonOption,
) -> None:
    """Import a test collection: ingest its documents into knowledge base NAME (created if it does not
    exist, with one chunk per document: collections judge whole documents; `honed kb create` first for
    another config) and record its queries with their judgments as the dataset NAME-queries, for
    `honed kb eval`. Every file is read and checked before anything is created or written.

      honed kb import scifact datasets/scifact --format beir --split test
      honed kb import robust docs.trec --format trec --topics topics.txt --qrels qrels.txt --topic-field desc
    """
    from honed.rag.ingest.importing import import_files

    h = open_honed(require_workspace=True)
    with progress_bars(disable=json_out) as progress:
        outcome = import_files(
            h,
            name,
            path,
            fmt=fmt,
            splits=split,
            topics=topics,
            qrels=qrels,
            topic_field=topic_field,
            dedupe=dedupe,
            progress=progress,
        )
    report = outcome.report
    if json_out:
        print_json(outcome.to_dict())
        return
    splits = ", ".join(f"{s} {n}" for s, n in outcome.splits.items())
    typer.echo(
        f"{name}: {outcome.documents} documents ({len(report.added)} added, {len(report.updated)} updated, "
        f"{report.unchanged} unchanged; {report.chunks_embedded} chunks embedded), {outcome.queries} queries "
        f"({outcome.judged} judged, {outcome.judgments} judgments; splits: {splits}); "
        f"version {short(report.version)}"
    )
    typer.echo(f"queries and judgments recorded as dataset {outcome.dataset}")
    if outcome.left_out:
        err_console.print(f"left out: {outcome.left_out} queries no chosen split judges", markup=False)
    for dropped, original in report.duplicates:
        err_console.print(Text(f"duplicate skipped: {dropped} (same text as {original})", style="dim"))
    for warning in outcome.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
