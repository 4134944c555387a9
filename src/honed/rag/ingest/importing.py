"""A test collection imported into a knowledge base: its documents ingested, its queries recorded with
their judgments as the dataset `{kb}-queries`, in the shape `honed kb eval` reads (`inputs.query`,
`context_ids` for the relevant documents, `metadata.qrels` for the graded judgments, a split).

An import checks everything that depends on its input before it writes anything: the files are read
and parsed, the cases built, the names validated, and only then is the knowledge base created (when it
does not exist yet), so a failed import leaves no empty knowledge base behind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Unpack

from honed.errors import ConfigError, InvalidInputError, NotFoundError
from honed.userfiles import validate

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from honed.config import Settings
    from honed.datasets import Case, SplitPlan
    from honed.rag.evaluate.collections import Collection
    from honed.rag.index.kb import IngestReport, KnowledgeBase, Progress
    from honed.rag.ingest.loaders import LoadOptions
    from honed.store import Store
    from honed.workspace import Workspace

__all__ = [
    "Checked",
    "ImportOutcome",
    "check_import",
    "check_kb",
    "import_files",
    "ingest",
    "open_kb",
    "query_cases",
    "read_named_collection",
    "run_import",
]


def query_cases(collection: Collection, *, plan: SplitPlan | None = None) -> list[Case]:
    """The dataset cases of a collection's queries, in its order: `inputs.query`, `context_ids` (the
    documents judged relevant, grade > 0), `metadata.qrels` (every judgment) and the split the collection
    gives; `plan` assigns one to each query that has none."""
    from honed.datasets import Case, assign_splits

    cases: list[Case] = []
    for qid, text in collection.queries.items():
        judged = collection.qrels.get(qid)
        fields = {
            "id": qid,
            "inputs": {"query": text},
            "context_ids": sorted(d for d, g in (judged or {}).items() if g > 0),
            "metadata": {"qrels": dict(judged)} if judged else {},
            "split": collection.splits.get(qid),
        }
        cases.append(
            validate(
                Case,
                fields,
                where=f"query {qid!r} of {collection.name}",
                hint="query ids are at most 200 characters; split names letters, digits, '.', '_', '-'",
            )
        )
    if plan is not None:
        cases, _ = assign_splits(cases, plan)
    return cases


def read_named_collection(name: str, settings: Settings) -> Collection:
    """A SMART test collection of the data folder (`honed.rag.evaluate.collections`), its name checked
    first."""
    from honed.rag.evaluate.collections import COLLECTIONS, load_collection

    if name.strip().lower() not in COLLECTIONS:
        raise InvalidInputError(f"unknown test collection {name!r}", hint=f"known: {', '.join(COLLECTIONS)}")
    if settings.data_dir is None:
        raise ConfigError(
            "no data folder is set, so test collections cannot be found",
            hint="set data_dir in honed.toml or HONED_DATA_DIR to the folder holding cranfield/ and cisi/",
        )
    return load_collection(name, settings.data_dir)


def check_kb(store: Store, name: str, *, create: bool) -> bool:
    """Whether knowledge base `name` exists; an error if it does not and may not be created (or if the
    name is not valid). Cheap: call it before reading any input."""
    from honed.rag.index.kb import KIND, list_kbs
    from honed.store.names import check_name

    if store.names.history(KIND, name):
        return True
    if not create:
        known = ", ".join(n for n, _, _ in list_kbs(store)) or "none yet"
        raise NotFoundError(
            f"no knowledge base {name!r}",
            hint=f"create it with `honed kb create {name}` or pass --create; known: {known}",
        )
    check_name("knowledge base", name)
    return False


def open_kb(
    store: Store, settings: Settings, name: str, *, create: bool, whole_documents: bool = False
) -> KnowledgeBase:
    """Knowledge base `name`, created first if `create` and it does not exist: with the default config,
    or with one chunk per document when `whole_documents` (a test collection judges documents, and is
    indexed whole, as the systems it is compared with index it). An existing one keeps its config."""
    from honed.rag.index.kb import KIND, KnowledgeBaseConfig, create_kb, get_kb
    from honed.rag.ingest.chunking import ChunkingConfig

    if create and not store.names.history(KIND, name):
        config = KnowledgeBaseConfig()
        if whole_documents:
            config = KnowledgeBaseConfig(chunking=ChunkingConfig(strategy="document"))
        create_kb(store, name, config)
    return get_kb(store, settings, name)


@dataclass(frozen=True)
class Checked:
    """An import whose input has been read and checked; nothing is written yet."""

    kb: str
    collection: Collection
    cases: list[Case]
    dataset: str
    source: str
    """What the note of the dataset's version says it came from."""
    warnings: list[str] = field(default_factory=list)
    left_out: int = 0


def check_import(
    kb: str,
    collection: Collection,
    *,
    source: str,
    plan: SplitPlan | None = None,
    warnings: list[str] | None = None,
    left_out: int = 0,
) -> Checked:
    """Build the cases and check the dataset's name: what can fail before the knowledge base is touched."""
    from honed.datasets import KIND
    from honed.store.names import check_name

    dataset = f"{kb}-queries"
    check_name(KIND, dataset)
    cases = query_cases(collection, plan=plan)
    if not cases:
        raise InvalidInputError(f"{source}: no queries to record", hint="the collection needs queries")
    return Checked(kb, collection, cases, dataset, source, list(warnings or []), left_out)


@dataclass(frozen=True)
class ImportOutcome:
    """What an import did: the ingest's report, the dataset version recorded, and the counts."""

    report: IngestReport
    dataset: str
    documents: int
    queries: int
    judged: int
    judgments: int
    splits: dict[str, int]
    """Queries per split; `(none)` counts those without one."""
    warnings: list[str]
    left_out: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kb": self.report.kb,
            "version": self.report.version,
            "dataset": self.dataset,
            "documents": self.documents,
            "queries": self.queries,
            "judged_queries": self.judged,
            "judgments": self.judgments,
            "splits": self.splits,
            "queries_left_out": self.left_out,
            "warnings": self.warnings,
            "ingest": self.report.to_dict(),
        }


def run_import(
    store: Store,
    kb: KnowledgeBase,
    checked: Checked,
    *,
    dedupe: bool = False,
    progress: Progress | None = None,
) -> ImportOutcome:
    """Ingest the checked collection's documents into `kb` and record its queries as a dataset."""
    from honed.datasets import record_cases
    from honed.datasets.case import UNASSIGNED

    coll = checked.collection
    report = kb.ingest_documents(coll.documents, dedupe=dedupe, progress=progress)
    result = record_cases(
        store, checked.dataset, checked.cases, note=f"queries and judgments of {checked.source}"
    )
    judged = [c for c in checked.cases if c.metadata.get("qrels")]
    return ImportOutcome(
        report,
        result.dataset.ref,
        len(coll.documents) - len(report.duplicates),
        len(checked.cases),
        len(judged),
        sum(len(c.metadata["qrels"]) for c in judged),
        dict(sorted(Counter(c.split or UNASSIGNED for c in checked.cases).items())),
        checked.warnings,
        checked.left_out,
    )


def ingest(
    h: Workspace,
    name: str,
    *,
    paths: Sequence[str] = (),
    collection: str | None = None,
    create: bool = False,
    prune: bool = False,
    dedupe: bool = False,
    progress: Progress | None = None,
    **load: Unpack[LoadOptions],
) -> tuple[IngestReport, str | None]:
    """`honed kb ingest`: documents from `paths` (or the test collection `collection` with its queries,
    or, with neither, the stored documents again, e.g. after a config change) into knowledge base `name`.
    Everything that depends on the input is read and checked before `create` creates the knowledge base,
    so a failed ingest leaves none behind. `load` says how `paths` are read (`LoadOptions`). Returns the
    ingest's report and the dataset recorded (for a collection)."""
    from honed.rag.ingest.loaders import LoadResult, load_documents

    exists = check_kb(h.store, name, create=create)
    if collection is not None and paths:
        raise InvalidInputError("give PATHS or --collection, not both")
    checked = None
    loaded: LoadResult | None = None
    if collection is not None:
        from honed.datasets import SplitPlan
        from honed.experiments.retrieval import COLLECTION_SPLITS

        coll = read_named_collection(collection, h.settings)
        checked = check_import(name, coll, source=collection, plan=SplitPlan(ratios=COLLECTION_SPLITS))
    elif paths:
        loaded = load_documents(paths, **load)
    elif not exists or h.store.kb.document_count(name) == 0:
        raise InvalidInputError("nothing to ingest", hint=f"honed kb ingest {name} PATH...")
    elif dedupe:
        raise InvalidInputError("--dedupe needs PATHS or --collection", hint=f"honed kb ingest {name} PATH")
    kb = open_kb(h.store, h.settings, name, create=create)
    try:
        if checked is not None:
            outcome = run_import(h.store, kb, checked, dedupe=dedupe, progress=progress)
            return outcome.report, outcome.dataset
        if loaded is not None:
            report = kb.ingest_documents(loaded.documents, prune=prune, dedupe=dedupe, progress=progress)
            return report.with_load(loaded), None
        # No paths: bring the index up to date with the stored documents (after `kb config`).
        return kb.ingest_documents(kb.documents(), progress=progress), None
    finally:
        kb.close()


def import_files(
    h: Workspace,
    name: str,
    path: Path,
    *,
    fmt: str,
    splits: Sequence[str] = (),
    topics: Path | None = None,
    qrels: Path | None = None,
    topic_field: str = "title",
    dedupe: bool = False,
    progress: Progress | None = None,
) -> ImportOutcome:
    """`honed kb import`: a BEIR folder (`fmt="beir"`) or TREC files (`"trec"`: `path` is the corpus) as
    knowledge base `name` (created with one chunk per document if it does not exist) plus the judged
    dataset `{name}-queries`. Every file is read and checked before anything is created or written."""
    from honed.rag.evaluate.formats import TOPIC_FIELDS, load_beir, load_trec

    if fmt not in ("beir", "trec"):
        raise InvalidInputError(f"unknown format {fmt!r}", hint="--format beir or --format trec")
    if fmt == "beir" and (topics is not None or qrels is not None):
        raise InvalidInputError(
            "--topics and --qrels are for --format trec", hint="a BEIR folder holds its queries and qrels"
        )
    if fmt == "trec" and (topics is None or qrels is None):
        raise InvalidInputError("trec needs --topics FILE and --qrels FILE", hint="PATH is its corpus")
    if fmt == "trec" and len(splits) > 1:
        raise InvalidInputError("--format trec takes one --split", hint="it names the split --qrels is")
    if topic_field not in TOPIC_FIELDS:
        raise InvalidInputError(f"unknown --topic-field {topic_field!r}", hint=", ".join(TOPIC_FIELDS))
    check_kb(h.store, name, create=True)
    if fmt == "beir":
        loaded = load_beir(path, splits=list(splits) or None)
    else:
        assert topics is not None and qrels is not None
        loaded = load_trec(path, topics, qrels, topic_field=topic_field, split=splits[0] if splits else None)
    checked = check_import(
        name, loaded.collection, source=str(path), warnings=loaded.warnings, left_out=loaded.left_out
    )
    kb = open_kb(h.store, h.settings, name, create=True, whole_documents=True)
    try:
        return run_import(h.store, kb, checked, dedupe=dedupe, progress=progress)
    finally:
        kb.close()
