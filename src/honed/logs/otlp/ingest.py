"""OTLP traces into honed's store: each generation span a log, every span a row of its trace.

A generation span becomes a log like any other (so `honed logs list`, the web UI, online evaluation rules,
curation and fine-tuning see it): model, messages, output, tool calls, tokens, latency (the span's
duration), cost from honed's price table, trace id, parent span, session and user. Its id is derived from
the trace and span ids, so a batch an exporter sends again is stored once. Every span, generations
included, is a row of `spans`, so a trace is a tree of generations, tool calls, retrievals and agent
steps. What no convention reads (attributes, events, the resource) is kept with the span or its log.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from honed.logs.otlp.conventions import Reading, read_span
from honed.logs.otlp.decode import STATUS_ERROR, Decoded, OtlpSpan, decode_json, decode_protobuf
from honed.logs.record import LogRecord
from honed.models.types import Usage

if TYPE_CHECKING:
    from honed.models.prices import PriceTable
    from honed.store import Store

__all__ = ["BodyError", "Ingested", "decode_body", "ingest_spans", "log_id_of"]

PROTOBUF = "application/x-protobuf"
STATUS = {0: "unset", 1: "ok", 2: "error"}
ROLES = {"system", "user", "assistant", "tool", "developer"}
#: Roles other conventions use, as honed's.
ROLE_ALIASES = {"model": "assistant", "ai": "assistant", "human": "user", "function": "tool"}


class BodyError(ValueError):
    """A body that cannot be read at all (400), or that is too large once decompressed (413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Ingested:
    spans: int = 0
    generations: int = 0
    rejected: list[str] = field(default_factory=list)


def log_id_of(trace_id: str, span_id: str) -> str:
    """The id of a generation span's log."""
    return f"span-{trace_id}-{span_id}"


def decode_body(body: bytes, content_type: str, encoding: str, *, max_bytes: int) -> Decoded:
    """The spans of an OTLP/HTTP request body (gzip or deflate allowed, at most `max_bytes` once
    decompressed); BodyError when it cannot be read."""
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        inflater = zlib.decompressobj(wbits)
        try:
            body = inflater.decompress(body, max_bytes + 1)
        except zlib.error as exc:
            raise BodyError(f"the body is not valid {encoding} ({exc})") from None
        if len(body) > max_bytes or inflater.unconsumed_tail:
            raise BodyError(f"the body is larger than {max_bytes:,} bytes once decompressed", status=413)
    elif encoding not in ("", "identity"):
        raise BodyError(f"unsupported Content-Encoding {encoding!r}: send gzip, deflate or none", 415)
    media = content_type.split(";")[0].strip().lower()
    try:
        if media == PROTOBUF:
            return decode_protobuf(body)
        return decode_json(body)
    except ValueError as exc:
        raise BodyError(str(exc)) from None


def ingest_spans(store: Store, prices: PriceTable, spans: list[OtlpSpan]) -> Ingested:
    """Store `spans` (all in one transaction); spans whose generation is not a valid log are rejected
    with the reason, the others kept."""
    out = Ingested()
    log_rows: list[dict[str, Any]] = []
    span_rows: list[dict[str, Any]] = []
    for span in spans:
        reading = read_span(span)
        log_id = None
        if reading.generation is not None:
            try:
                record = _log(span, reading, prices)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                out.rejected.append(f"span {span.name!r} ({span.span_id}): {where}: {first['msg']}")
                continue
            log_rows.append(record.row())
            log_id = record.id
        span_rows.append(_span_row(span, reading, log_id))
    store.spans.add_trace_parts(log_rows, span_rows)
    out.spans, out.generations = len(span_rows), len(log_rows)
    return out


def _time(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC) if ns > 0 else datetime.now(UTC)


def _error(span: OtlpSpan) -> str | None:
    if span.status_code != STATUS_ERROR:
        return None
    for event in span.events:
        if event.name == "exception":
            kind = event.attributes.get("exception.type")
            message = event.attributes.get("exception.message")
            if kind or message:
                return ": ".join(str(x) for x in (kind, message) if x)
    return span.status_message or "the span ended in an error"


def _kept(span: OtlpSpan, reading: Reading) -> dict[str, Any]:
    """What the span carried beyond what was read: unread attributes, events, resource and scope."""
    kept: dict[str, Any] = {"scope": span.scope, "resource": span.resource}
    if reading.rest:
        kept["attributes"] = reading.rest
    events = [
        {"name": e.name, "time_ns": e.time_ns, "attributes": e.attributes}
        for e in span.events
        if not e.name.startswith("gen_ai.")
    ]
    if events:
        kept["events"] = events
    return kept


def _span_row(span: OtlpSpan, reading: Reading, log_id: str | None) -> dict[str, Any]:
    attributes = dict(reading.metadata)
    if log_id is None:  # a generation's log keeps these
        attributes |= _kept(span, reading)
        if reading.session_id:
            attributes["session_id"] = reading.session_id
        if reading.user_id:
            attributes["user"] = reading.user_id
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name[:300],
        "kind": reading.kind,
        "started_at": _time(span.start_ns),
        "ended_at": _time(span.end_ns or span.start_ns),
        "status": STATUS.get(span.status_code, "unset"),
        "status_message": span.status_message or None,
        "log_id": log_id,
        "attributes": attributes,
    }


def _message(message: dict[str, Any]) -> dict[str, Any]:
    role = str(message.get("role") or "user").lower()
    role = ROLE_ALIASES.get(role, role)
    return {**message, "role": role if role in ROLES else "user"}


def _log(span: OtlpSpan, reading: Reading, prices: PriceTable) -> LogRecord:
    gen = reading.generation
    assert gen is not None
    metadata: dict[str, Any] = {
        **reading.metadata,
        "span_id": span.span_id,
        "otel": {"name": span.name, **_kept(span, reading)},
    }
    if span.parent_span_id:
        metadata["parent_span_id"] = span.parent_span_id
    if gen.tool_calls:
        metadata["tool_calls"] = gen.tool_calls
    if gen.finish_reason:
        metadata["finish_reason"] = gen.finish_reason
    if reading.user_id:
        metadata["user"] = reading.user_id
    service = span.resource.get("service.name")
    if service:
        metadata["service"] = service
    params = dict(gen.params)
    if gen.tools:
        params["tools"] = gen.tools
    cost = None
    if gen.input_tokens is not None or gen.output_tokens is not None:
        usage = Usage(gen.input_tokens or 0, gen.output_tokens or 0)
        cost = prices.cost(gen.model, usage)
        if cost is None and gen.requested is not None:  # a model the price table knows by another name
            cost = prices.cost(gen.requested, usage)
    if gen.requested is not None:
        metadata["requested_model"] = gen.requested
    duration = max(0, span.end_ns - span.start_ns) / 1e9 if span.end_ns else None
    return LogRecord(
        id=log_id_of(span.trace_id, span.span_id),
        created_at=_time(span.start_ns),
        source="app",
        model=gen.model[:300],
        messages=[_message(m) for m in gen.messages] or None,
        inputs=None if gen.messages else {},
        output=gen.output,
        params=params,
        input_tokens=gen.input_tokens,
        output_tokens=gen.output_tokens,
        latency_s=duration,
        cost_usd=cost,
        error=_error(span),
        trace_id=span.trace_id,
        session_id=reading.session_id,
        metadata=metadata,
    )
