"""The tables, as SQLAlchemy Core metadata: the one description of the schema.

Alembic migrations create the tables; this metadata is what the code queries with and what the
schema test compares the migrated database against, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

from honed.secrets import mask

# Stable constraint names: migrations that later alter a constraint must be able to name it, and the
# backends would otherwise invent different names.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: Content hashes are "sha256:" + 64 hex digits; the room to spare admits a longer future algorithm.
HASH_LENGTH = 100


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite has no timezone-aware type and hands back naive values; PostgreSQL hands back the session's
    zone. Normalising here means callers can compare and sort timestamps from either backend.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


objects = Table(
    "objects",
    metadata,
    Column("hash", String(HASH_LENGTH), primary_key=True),
    Column("kind", String(100), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "kind"),
)

response_cache = Table(
    "response_cache",
    metadata,
    Column("key", String(HASH_LENGTH), primary_key=True),
    Column("model", String(300), nullable=False),
    Column("request", JSON, nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "model"),
)

#: A name's history: every version (an `objects` row) recorded under a (kind, name), e.g. prompt "qa".
versions = Table(
    "versions",
    metadata,
    Column("kind", String(100), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("hash", String(HASH_LENGTH), ForeignKey("objects.hash"), primary_key=True),
    Column("note", String(2000), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "kind", "name", "created_at"),
)

#: Movable labels (`production`, `staging`, ...) pointing at one version of a name.
labels = Table(
    "labels",
    metadata,
    Column("kind", String(100), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("label", String(100), primary_key=True),
    Column("hash", String(HASH_LENGTH), ForeignKey("objects.hash"), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: One experiment run: a spec (dataset version x variants x evaluators x repeats) and its progress.
runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=True),
    Column("spec", JSON, nullable=False),
    Column("spec_hash", String(HASH_LENGTH), nullable=False),
    Column("status", String(20), nullable=False),
    Column("budget_usd", Float, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("latency_probe", JSON, nullable=True),  # see honed.experiments.latency
    Column("created_by", String(200), nullable=True),  # who ran it (NULL: before revision 0010)
    Index(None, "spec_hash"),
)

#: One model call of a run: which variant, case and sample, what produced it, and what it cost.
results = Table(
    "results",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("variant", String(100), primary_key=True),
    Column("case_id", String(200), primary_key=True),
    Column("sample_index", Integer, primary_key=True),
    Column("request_key", String(HASH_LENGTH), nullable=False),
    Column("prompt_hash", String(HASH_LENGTH), nullable=True),
    Column("dataset_hash", String(HASH_LENGTH), nullable=False),
    Column("model", String(300), nullable=False),
    Column("params", JSON, nullable=False),
    Column("output", Text, nullable=True),
    Column("parsed", JSON, nullable=True),
    Column("tool_calls", JSON, nullable=True),
    Column("retrieved", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    # Time in the model (the call's own service time); queue_s: time waiting for the endpoint's slot, a
    # batch or retries, apart. A cached row keeps both of the call that produced it; queue_s is None in
    # rows older than revision 0006.
    Column("latency_s", Float, nullable=False),
    Column("queue_s", Float, nullable=True),
    Column("cost_usd", Float, nullable=True),
    Column("cached", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

#: One evaluator's judgment of one result. `error`/`raw` keep a judgment that could not be made.
scores = Table(
    "scores",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("variant", String(100), primary_key=True),
    Column("case_id", String(200), primary_key=True),
    Column("sample_index", Integer, primary_key=True),
    Column("evaluator", String(200), primary_key=True),
    Column("evaluator_version", String(HASH_LENGTH), nullable=False),
    Column("value", Float, nullable=True),
    Column("passed", Boolean, nullable=True),
    Column("reason", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("raw", Text, nullable=True),
    Column("details", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)


#: Embeddings by the hash of (embedder identity, text): float32 bytes, `dim` of them.
embedding_cache = Table(
    "embedding_cache",
    metadata,
    Column("key", String(HASH_LENGTH), primary_key=True),
    Column("model", String(300), nullable=False),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

#: A knowledge base's source documents, as last ingested (text kept, so indexes can be rebuilt from it).
kb_documents = Table(
    "kb_documents",
    metadata,
    Column("kb", String(200), primary_key=True),
    Column("doc_id", String(500), primary_key=True),
    Column("hash", String(HASH_LENGTH), nullable=False),
    Column("text", Text, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: One index over a knowledge base: a chunking + embedding + store config, and what it was built from.
kb_indexes = Table(
    "kb_indexes",
    metadata,
    Column("id", String(HASH_LENGTH), primary_key=True),
    Column("kb", String(200), nullable=False),
    Column("config", JSON, nullable=False),
    Column("content_hash", String(HASH_LENGTH), nullable=True),
    Column("chunks", Integer, nullable=False),
    Column("built_at", UTCDateTime, nullable=True),
    Index(None, "kb"),
)

#: The chunks of an index (text and metadata; the vectors live in the vector store).
kb_chunks = Table(
    "kb_chunks",
    metadata,
    Column(
        "index_id", String(HASH_LENGTH), ForeignKey("kb_indexes.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("chunk_id", String(600), primary_key=True),
    Column("doc_id", String(500), nullable=False),
    Column("position", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("metadata", JSON, nullable=False),
    Index(None, "index_id", "doc_id"),
)


#: One generation, from honed itself (experiments, `honed serve`, the Python API) or a user's application
#: (the ingestion endpoint). `messages`/`inputs` say what went in, `output` what came out.
logs = Table(
    "logs",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("source", String(40), nullable=False),
    Column("model", String(300), nullable=False),
    Column("prompt", String(200), nullable=True),
    Column("prompt_version", String(HASH_LENGTH), nullable=True),
    Column("inputs", JSON, nullable=True),
    Column("messages", JSON, nullable=True),
    Column("output", Text, nullable=True),
    Column("params", JSON, nullable=False),
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    # Time in the model (for an application's own log, the time it measured); queue_s: time waiting apart.
    Column("latency_s", Float, nullable=True),
    Column("queue_s", Float, nullable=True),
    Column("cost_usd", Float, nullable=True),
    Column("error", Text, nullable=True),
    Column("trace_id", String(200), nullable=True),
    Column("session_id", String(200), nullable=True),
    Column("metadata", JSON, nullable=False),
    Index(None, "created_at"),
    Index(None, "prompt", "created_at"),
    Index(None, "model", "created_at"),
    Index(None, "trace_id"),
    Index(None, "session_id"),
)

#: The spans of traces that instrumented applications send (OTLP ingestion, `honed.logs.otlp`): every span
#: of a trace, so the trace is a tree; a generation span also has its log (`log_id`). `kind` is what the
#: span was read as (generation, tool, retrieval, agent, embedding, chain, span); `attributes` keeps what
#: the span carried beyond that (its attributes, events, resource).
spans = Table(
    "spans",
    metadata,
    Column("trace_id", String(32), primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("parent_span_id", String(16), nullable=True),
    Column("name", String(300), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=False),
    Column("status", String(10), nullable=False),  # unset | ok | error
    Column("status_message", Text, nullable=True),
    Column("log_id", String(100), nullable=True),
    Column("attributes", JSON, nullable=False),
    Index(None, "started_at"),
)


#: Explicit feedback (thumbs, rating, correction, comment) and implicit signals (copied, regenerated,
#: edited) on one logged generation. `value` is numeric where the kind has one (thumbs: 1 up / 0 down).
feedback = Table(
    "feedback",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("log_id", String(100), ForeignKey("logs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("value", Float, nullable=True),
    Column("text", Text, nullable=True),
    Column("source", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "log_id"),
)

#: An evaluator's score of a logged generation (online evaluation), one per (log, evaluator).
log_scores = Table(
    "log_scores",
    metadata,
    Column("log_id", String(100), ForeignKey("logs.id", ondelete="CASCADE"), primary_key=True),
    Column("evaluator", String(200), primary_key=True),
    Column("evaluator_version", String(HASH_LENGTH), nullable=False),
    Column("value", Float, nullable=True),
    Column("passed", Boolean, nullable=True),
    Column("reason", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

#: API tokens for `honed serve`: only a hash of the secret is kept; `scopes` is a list (ingest, inference).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("hash", String(HASH_LENGTH), nullable=False, unique=True),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

#: Who changed what and when (web UI and API changes): append-only; `detail` says what changed.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("user", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("kind", String(100), nullable=False),
    Column("name", String(300), nullable=False),
    Column("detail", JSON, nullable=False),
    Index("ix_audit_events_kind_name_at", "kind", "name", "at"),
    Index("ix_audit_events_at", "at"),
)

#: A fine-tuning job: what to train (`spec`), where it stands, the worker running it, and its result.
finetune_jobs = Table(
    "finetune_jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("backend", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("model", String(300), nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("pid", Integer, nullable=True),
    Column("cancel_requested", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: A job's history: status changes, messages, metrics (the loss curve), checkpoints; `seq` orders them.
finetune_events = Table(
    "finetune_events",
    metadata,
    Column("job_id", String(40), ForeignKey("finetune_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("message", Text, nullable=True),
    Column("data", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)


def insert_ignore(table: Table, dialect_name: str) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING in the dialect's own syntax (Core has no portable form)."""
    # Imported here: loading the PostgreSQL dialect costs a SQLite-only user ~50 ms at startup.
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()


def _insert(table: Table, dialect: str) -> Any:
    """The dialect's own INSERT (PostgreSQL's or SQLite's: both have ON CONFLICT, with one API)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


@functools.cache
def upsert(table: Table, key: tuple[str, ...], dialect: str) -> Insert:
    """INSERT ... ON CONFLICT (key) DO UPDATE of every other column, in the dialect's own syntax.

    Built once per (table, key, dialect): statements are immutable, and building this one (a proxy of
    every column) took most of a small batch's write time, which a run's calls wait for."""
    insert = _insert(table, dialect)
    cols = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in key}
    return insert.on_conflict_do_update(index_elements=list(key), set_=cols)  # type: ignore[no-any-return]


@functools.cache
def insert_new(table: Table, key: tuple[str, ...], dialect: str) -> Insert:
    """INSERT ... ON CONFLICT (key) DO NOTHING, in the dialect's own syntax: rows already stored stay."""
    return _insert(table, dialect).on_conflict_do_nothing(index_elements=list(key))  # type: ignore[no-any-return]


def mask_errors(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` with their `error` text masked (`honed.secrets.mask`): every table that stores an error
    (results, scores, logs, log scores, jobs) writes through this, since an error may quote a key that a
    server echoed or a URL with its password."""
    return [{**r, "error": mask(r["error"])} if r.get("error") else dict(r) for r in rows]


#: A review (annotation) queue: items chosen from a run (all its results, or its regressions) or from logs
#: (a filter), to be labelled by people; see `honed.experiments.queues`. `source` says how the items were
#: chosen.
review_queues = Table(
    "review_queues",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # run | logs
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), nullable=True),
    Column("source", JSON, nullable=False),
    Column("scale", String(20), nullable=False),  # pass_fail | 1-5: what the human score's value is
    Column("assignee", String(200), nullable=True),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "created_at"),
)

#: The items of a queue, in review order: a run's result (variant, case, sample) or a log, with the input,
#: output and reference copied when the queue was made (a queue page reads one row, not the run).
review_items = Table(
    "review_items",
    metadata,
    Column("queue_id", String(40), ForeignKey("review_queues.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("variant", String(100), nullable=True),
    Column("case_id", String(200), nullable=True),
    Column("sample_index", Integer, nullable=True),
    Column("log_id", String(100), nullable=True),
    Column("input", JSON, nullable=True),
    Column("output", Text, nullable=True),
    Column("reference", JSON, nullable=True),
)

#: Labels as events, append-only but for `undone_at`: each row is a reviewer's whole label of an item after
#: a change (pass/fail, rating, correction, comment); a reviewer's current label of an item is their latest
#: row not undone. Two reviewers never write the same row, so concurrent labelling loses nothing.
review_labels = Table(
    "review_labels",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("queue_id", String(40), ForeignKey("review_queues.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("passed", Boolean, nullable=True),
    Column("rating", Integer, nullable=True),
    Column("correction", Text, nullable=True),
    Column("comment", Text, nullable=True),
    Column(
        "feedback_ids", JSON, nullable=False
    ),  # the log feedback rows this label added (undo removes them)
    Column("at", UTCDateTime, nullable=False),
    Column("undone_at", UTCDateTime, nullable=True),
    Index(None, "queue_id", "position"),
    Index(None, "queue_id", "reviewer", "at"),
)
