"""Reading an OTLP/HTTP trace export (`ExportTraceServiceRequest`) into plain spans.

Both encodings of the OTLP specification: binary protobuf (`application/x-protobuf`, read with the
`opentelemetry-proto` message classes) and JSON (`application/json`: lowerCamelCase keys, the original
snake_case accepted too, trace and span ids as hex strings, 64-bit integers as decimal strings, enums as
numbers). Attribute values (`AnyValue`) become Python values: strings, bools, ints, floats, lists, dicts,
bytes as hex.

A body that cannot be read at all is a `ValueError` (the route answers 400); a span inside a readable body
that is not valid (an id of the wrong length, all zeros) is left out with its reason, for the route's
`partial_success`, while the others are kept.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Decoded", "OtlpEvent", "OtlpSpan", "decode_json", "decode_protobuf"]

#: Span status codes (opentelemetry.proto.trace.v1.Status.StatusCode).
STATUS_ERROR = 2


@dataclass(frozen=True, slots=True)
class OtlpEvent:
    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OtlpSpan:
    """One span, ids as lowercase hex (`parent_span_id` None for a root)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: tuple[OtlpEvent, ...]
    status_code: int
    status_message: str
    resource: dict[str, Any]
    scope: str


@dataclass(slots=True)
class Decoded:
    spans: list[OtlpSpan] = field(default_factory=list)
    #: why each span left out was left out
    rejected: list[str] = field(default_factory=list)


def _check_ids(trace_id: str, span_id: str, parent: str) -> str | None:
    """Why these ids are invalid, or None."""
    if len(trace_id) != 32 or trace_id == "0" * 32:
        return "its trace_id is not 16 bytes, or is all zeros"
    if len(span_id) != 16 or span_id == "0" * 16:
        return "its span_id is not 8 bytes, or is all zeros"
    if parent and len(parent) != 16:
        return "its parent_span_id is not 8 bytes"
    return None


# -- protobuf ---------------------------------------------------------------------------------------------


def decode_protobuf(body: bytes) -> Decoded:
    """An `ExportTraceServiceRequest` in binary protobuf; ValueError when it does not parse."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    try:
        request = ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise ValueError(f"the body is not an OTLP ExportTraceServiceRequest in protobuf ({exc})") from None
    out = Decoded()
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
                parent = span.parent_span_id.hex()
                why = _check_ids(trace_id, span_id, parent)
                if why is not None:
                    out.rejected.append(f"span {span.name!r}: {why}")
                    continue
                out.spans.append(
                    OtlpSpan(
                        trace_id=trace_id,
                        span_id=span_id,
                        parent_span_id=parent or None,
                        name=span.name,
                        kind=int(span.kind),
                        start_ns=int(span.start_time_unix_nano),
                        end_ns=int(span.end_time_unix_nano),
                        attributes=_pb_attributes(span.attributes),
                        events=tuple(
                            OtlpEvent(e.name, int(e.time_unix_nano), _pb_attributes(e.attributes))
                            for e in span.events
                        ),
                        status_code=int(span.status.code),
                        status_message=span.status.message,
                        resource=resource,
                        scope=scope,
                    )
                )
    return out


def _pb_attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in pairs}


def _pb_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _pb_attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return bytes(value.bytes_value).hex()
    return getattr(value, which)


# -- JSON -------------------------------------------------------------------------------------------------


def decode_json(body: bytes) -> Decoded:
    """An `ExportTraceServiceRequest` in OTLP/JSON; ValueError when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("the body is not an OTLP ExportTraceServiceRequest (a JSON object)")
    out = Decoded()
    for resource_spans in _list(data, "resourceSpans", "resource_spans"):
        resource = _json_attributes(_get(_get(resource_spans, "resource") or {}, "attributes"))
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            scope = str(_get(_get(scope_spans, "scope") or {}, "name") or "")
            for i, span in enumerate(_list(scope_spans, "spans")):
                try:
                    decoded = _json_span(span, resource, scope)
                except (TypeError, ValueError, AttributeError) as exc:
                    out.rejected.append(f"span {i} of scope {scope!r}: {exc}")
                    continue
                if isinstance(decoded, str):
                    out.rejected.append(decoded)
                else:
                    out.spans.append(decoded)
    return out


def _json_span(span: Any, resource: dict[str, Any], scope: str) -> OtlpSpan | str:
    if not isinstance(span, dict):
        raise TypeError("a span is a JSON object")
    name = str(span.get("name") or "")
    trace_id = str(_get(span, "traceId", "trace_id") or "").lower()
    span_id = str(_get(span, "spanId", "span_id") or "").lower()
    parent = str(_get(span, "parentSpanId", "parent_span_id") or "").lower()
    why = _check_ids(trace_id, span_id, parent)
    if why is None and not all(c in "0123456789abcdef" for c in trace_id + span_id + parent):
        why = "its ids are not hex"
    if why is not None:
        return f"span {name!r}: {why}"
    status = _get(span, "status") or {}
    return OtlpSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent or None,
        name=name,
        kind=_int(_get(span, "kind")),
        start_ns=_int(_get(span, "startTimeUnixNano", "start_time_unix_nano")),
        end_ns=_int(_get(span, "endTimeUnixNano", "end_time_unix_nano")),
        attributes=_json_attributes(_get(span, "attributes")),
        events=tuple(
            OtlpEvent(
                str(_get(e, "name") or ""),
                _int(_get(e, "timeUnixNano", "time_unix_nano")),
                _json_attributes(_get(e, "attributes")),
            )
            for e in _list(span, "events")
        ),
        status_code=_int(_get(status, "code")),
        status_message=str(_get(status, "message") or ""),
        resource=resource,
        scope=scope,
    )


def _get(obj: Any, *keys: str) -> Any:
    if not isinstance(obj, dict):
        return None
    for key in keys:
        if key in obj:
            return obj[key]
    return None


def _list(obj: Any, *keys: str) -> list[Any]:
    found = _get(obj, *keys)
    if found is None:
        return []
    if not isinstance(found, list):
        raise ValueError(f"{keys[0]} must be a JSON list")
    return found


def _int(value: Any) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, not {value!r}")
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        # Enums may be sent by name (SPAN_KIND_CLIENT, STATUS_CODE_ERROR): the tail names the number.
        return _ENUM_NAMES.get(value.rsplit("_", 1)[-1].upper(), 0)
    return int(value)


_ENUM_NAMES = {"UNSET": 0, "UNSPECIFIED": 0, "INTERNAL": 1, "OK": 1, "SERVER": 2, "ERROR": 2, "CLIENT": 3}
_ENUM_NAMES |= {"PRODUCER": 4, "CONSUMER": 5}


def _json_attributes(pairs: Any) -> dict[str, Any]:
    if pairs is None:
        return {}
    if not isinstance(pairs, list):
        raise ValueError("attributes must be a JSON list of {key, value}")
    out: dict[str, Any] = {}
    for kv in pairs:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            out[kv["key"]] = _json_value(kv.get("value"))
    return out


def _json_value(value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        return None
    for key, item in value.items():
        if key in ("stringValue", "string_value"):
            return str(item)
        if key in ("boolValue", "bool_value"):
            return bool(item)
        if key in ("intValue", "int_value"):
            return int(item)
        if key in ("doubleValue", "double_value"):
            return float(item)
        if key in ("arrayValue", "array_value"):
            return [_json_value(v) for v in (item or {}).get("values", [])]
        if key in ("kvlistValue", "kvlist_value"):
            return _json_attributes((item or {}).get("values", []))
        if key in ("bytesValue", "bytes_value"):
            return base64.b64decode(item).hex()
    return None
