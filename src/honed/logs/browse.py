"""Reading logs a page at a time, and a trace as the tree of its spans: what the web UI's log pages show.

A page is keyset-paginated (`store.logs.page`); its cursor travels in a link as `ISO-TIME|LOG-ID`, so a
page costs the same however deep it is and a log written meanwhile never shifts a row onto the next page.

A trace is every log with one `trace_id`. Logs carry their span ids in their metadata, as OTLP ingestion
and instrumented apps write them: `span_id` (else the log's own id is its span id) and `parent_span_id`
(or `parent_id`). A span whose parent is not in the trace is a root, so a trace whose logs name no parents
is a flat list of roots in time order, and a parent chain that loops is cut where it loops back.
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
    """One log in a trace, with the spans whose parent it is (in time order)."""

    log: dict[str, Any]
    id: str
    parent: str | None
    #: seconds from the trace's first log to this one's
    offset_s: float
    children: list[Span] = field(default_factory=list)


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
    """The logs of `trace_id` as a tree of spans (see the module docstring); NotFoundError when none."""
    rows = store.logs.query(LogFilter(trace_id=trace_id, newest_first=False, limit=MAX_SPANS + 1))
    if not rows:
        raise NotFoundError(f"no logs in trace {trace_id!r}", hint="see `honed logs list` for trace ids")
    truncated = len(rows) > MAX_SPANS
    rows = rows[:MAX_SPANS]
    start = rows[0]["created_at"]
    spans: dict[str, Span] = {}
    for log in rows:
        span_id = _meta(log, SPAN_KEYS) or log["id"]
        if span_id in spans:  # two logs claim one span id: the later one keeps its own id
            span_id = log["id"]
        offset = (log["created_at"] - start).total_seconds()
        spans[span_id] = Span(log, span_id, _meta(log, PARENT_KEYS), offset)
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
    for span in spans.values():  # rows are oldest first, so children and roots come in time order
        (roots if span.parent is None else spans[span.parent].children).append(span)
    end = max((s.offset_s + (s.log.get("latency_s") or 0.0)) for s in spans.values())
    return TraceTree(trace_id, roots, len(spans), truncated, start, end)
