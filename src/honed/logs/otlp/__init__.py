"""OpenTelemetry traces in: OTLP/HTTP bodies decoded (`decode`), read in the GenAI, OpenInference and
Langfuse conventions (`conventions`), and stored as logs and spans (`ingest`). `honed serve` routes
`POST /v1/traces` and Langfuse's `/api/public/otel/v1/traces` here."""

from honed.logs.otlp.decode import Decoded, OtlpEvent, OtlpSpan
from honed.logs.otlp.ingest import BodyError, Ingested, decode_body, ingest_spans, log_id_of

__all__ = [
    "BodyError",
    "Decoded",
    "Ingested",
    "OtlpEvent",
    "OtlpSpan",
    "decode_body",
    "ingest_spans",
    "log_id_of",
]
