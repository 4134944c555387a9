"""Reading logs a page at a time, and a trace as the tree of its spans: what the web UI's log pages show.

A page is keyset-paginated (`store.logs.page`); its cursor travels in a link as `ISO-TIME|LOG-ID`, so a
page costs the same however deep it is and a log written meanwhile never shifts a row onto the next page.

A trace is every span stored for one trace id (OTLP ingestion keeps them all: generations, tool calls,
retrievals, agent steps) and every log with that `trace_id`. A generation span shows its log; a log that
came without spans (the Python API, `/v1/logs`) is a span of its own, named in its metadata as apps write
it: `span_id` (else the log's own id is its span id) and `parent_span_id` (or `parent_id`). A span whose
parent is not in the trace is a root, so a trace whose logs name no parents is a flat list of roots in
time order, and a parent chain that loops is cut where it loops back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from honed.errors import InvalidInputError, NotFoundError
from honed.logs.curate import feedback_summary
from honed.store.logs import LogCursor, LogFilter

if TYPE_CHECKING:
    from honed.store.database import Store

__all__ = ["LogPage", "Span", "TraceTree", "log_page", "parse_cursor", "trace_tree"]

#: Metadata keys naming a log's span and its parent span, most specific first.
SPAN_KEYS = ("span_id",)
PARENT_KEYS = ("parent_span_id", "parent_id")
#: The most spans a trace page shows (a runaway agent loop can log thousands under one trace).
MAX_SPANS = 2000


@dataclass(frozen=True, slots=True)
class LogPage:
    """One page of logs: the rows (newest first), each log's feedback summary (latest thumbs and rating,
    corrected, counts per kind) and score rows by evaluator, and the cursor of the next page."""

    rows: list[dict[str, Any]]
    feedback: dict[str, dict[str, Any]]
    scores: dict[str, dict[str, dict[str, Any]]]
    next: str | None


def format_cursor(cursor: LogCursor) -> str:
    return f"{cursor[0].isoformat()}|{cursor[1]}"


def parse_cursor(text: str | None) -> LogCursor | None:
    """The cursor a page link carries (`format_cursor`), None for the first page."""
    if not text:
        return None
    at, sep, log_id = text.partition("|")
    try:
        if sep and log_id:
            return datetime.fromisoformat(at), log_id
    except ValueError:
        pass
    raise InvalidInputError(f"page cursor {text!r} is malformed", hint="start from the first page")


def log_page(store: Store, where: LogFilter, *, limit: int, after: str | None = None) -> LogPage:
    """Up to `limit` logs matching `where`, after the cursor text of a previous page."""
    rows, cursor = store.logs.page(where, limit=limit, after=parse_cursor(after))
    ids = [r["id"] for r in rows]
    feedback = {i: feedback_summary(f) for i, f in store.logs.feedback_for(ids).items()}
    more = None if cursor is None else format_cursor(cursor)
    return LogPage(rows, feedback, store.logs.scores_for(ids), more)


@dataclass(slots=True)
class Span:
    """One span of a trace, with the spans whose parent it is (in time order): a generation's log, a
    stored span (`row`: a tool call, a retrieval, an agent step), or both for a generation span."""

    log: dict[str, Any] | None
    id: str
    parent: str | None
    #: seconds from the trace's first span to this one's start
    offset_s: float
    row: dict[str, Any] | None = None
    children: list[Span] = field(default_factory=list)

    @property
    def name(self) -> str:
        if self.row is not None:
            return str(self.row["name"])
        return str(self.log["model"]) if self.log is not None else self.id

    @property
    def kind(self) -> str:
        return str(self.row["kind"]) if self.row is not None else "generation"

    @property
    def duration_s(self) -> float | None:
        if self.row is not None:
            return float((self.row["ended_at"] - self.row["started_at"]).total_seconds())
        return None if self.log is None else self.log.get("latency_s")


@dataclass(frozen=True, slots=True)
class TraceTree:
    trace_id: str
    roots: list[Span]
    spans: int
    #: more than MAX_SPANS logs: the tree holds the first MAX_SPANS
    truncated: bool
    started: datetime
    #: from the first log's time to the last one's (latency of the last one included when known)
    duration_s: float


def _meta(log: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    metadata = log.get("metadata") or {}
    for key in keys:
        value = metadata.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def trace_tree(store: Store, trace_id: str) -> TraceTree:
    """The spans and logs of `trace_id` as a tree (see the module docstring); NotFoundError when none."""
    rows = store.spans.for_trace(trace_id, MAX_SPANS + 1)
    logs = store.logs.query(LogFilter(trace_id=trace_id, newest_first=False, limit=MAX_SPANS + 1))
    if not rows and not logs:
        raise NotFoundError(f"no logs in trace {trace_id!r}", hint="see `honed logs list` for trace ids")
    truncated = len(rows) > MAX_SPANS or len(logs) > MAX_SPANS
    by_id = {log["id"]: log for log in logs}
    # (start, span id, parent, log, row), from the stored spans, then the logs no span stands for.
    found: list[tuple[datetime, str, str | None, dict[str, Any] | None, dict[str, Any] | None]] = [
        (r["started_at"], r["span_id"], r["parent_span_id"], by_id.pop(r["log_id"], None), r)
        for r in rows[:MAX_SPANS]
    ]
    for unspanned in list(by_id.values())[: MAX_SPANS - len(found)]:
        own = _meta(unspanned, SPAN_KEYS) or unspanned["id"]
        found.append((unspanned["created_at"], own, _meta(unspanned, PARENT_KEYS), unspanned, None))
    found.sort(key=lambda f: f[0])
    start = found[0][0]
    spans: dict[str, Span] = {}
    for at, span_id, parent, log, row in found:
        if span_id in spans and log is not None:  # two logs claim one span id: the later keeps its own
            span_id = log["id"]
        spans[span_id] = Span(log, span_id, parent, (at - start).total_seconds(), row)
    for span in spans.values():
        if span.parent not in spans or span.parent == span.id:
            span.parent = None
    for span in spans.values():  # cut a loop where it closes, so every span hangs under a root
        seen, node = {span.id}, span
        while node.parent is not None:
            if node.parent in seen:
                node.parent = None
                break
            seen.add(node.parent)
            node = spans[node.parent]
    roots: list[Span] = []
    for span in spans.values():  # in start order, so children and roots come in time order
        (roots if span.parent is None else spans[span.parent].children).append(span)
    end = max(s.offset_s + (s.duration_s or 0.0) for s in spans.values())
    return TraceTree(trace_id, roots, len(spans), truncated, start, end)
