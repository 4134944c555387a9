"""OTLP/HTTP trace ingestion: `POST /v1/traces`, and Langfuse's `POST /api/public/otel/v1/traces`.

An application instrumented with OpenTelemetry (the OpenAI instrumentation, OpenInference, OpenLLMetry)
sets `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://HOST:PORT/v1/traces`; one using the Langfuse SDK points its
host at this server (its public/secret key pair: the secret key is a honed API token with the `ingest`
scope, the public key that token's name; see `honed.serve.auth`). Off loopback both need the `ingest`
scope, as `/v1/logs` does.

As the OTLP specification says: the body is protobuf (`application/x-protobuf`) or JSON, optionally gzip
(or deflate) encoded; the answer is an `ExportTraceServiceResponse` in the request's encoding, with a
`partial_success` that counts and explains the spans that could not be read (the others are kept); a
body that cannot be read is a 400 with a `Status` message and nothing is stored. The decompressed body is
limited to four times `max_body_bytes` (a small gzip bomb is still refused).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from honed.logs.otlp import BodyError, Ingested, decode_body, ingest_spans
from honed.serve.guard import accepts
from honed.serve.responses import HttpError

if TYPE_CHECKING:
    from honed.models.prices import PriceTable
    from honed.store import Store

PROTOBUF = "application/x-protobuf"
PATHS = ("/v1/traces", "/api/public/otel/v1/traces")
#: google.rpc.Code INVALID_ARGUMENT, the code OTLP's Status uses for a body it cannot read.
INVALID_ARGUMENT = 3
#: How far a compressed body may grow: OTLP batches compress ~5-10x; a bomb grows by far more.
INFLATE_FACTOR = 4


def traces_router(store: Store | None, prices: PriceTable, *, max_body_bytes: int) -> APIRouter:
    router = APIRouter()

    async def post_traces(request: Request) -> Response:
        if store is None:
            raise HttpError(
                "this server has no database, so it cannot keep traces",
                status=503,
                kind="server_error",
                hint="run `honed serve` inside a honed workspace (`honed init`) or set HONED_DATABASE_URL",
            )
        content_type = request.headers.get("content-type", "")
        protobuf = content_type.split(";")[0].strip().lower() == PROTOBUF
        body = await request.body()
        try:
            decoded = await run_in_threadpool(
                decode_body,
                body,
                content_type,
                request.headers.get("content-encoding", ""),
                max_bytes=INFLATE_FACTOR * max_body_bytes,
            )
        except BodyError as exc:
            return _status(str(exc), exc.status, protobuf)
        result = await run_in_threadpool(ingest_spans, store, prices, decoded.spans)
        result.rejected[:0] = decoded.rejected
        return _answer(result, protobuf)

    for path in PATHS:
        router.add_api_route(path, post_traces, methods=["POST"], openapi_extra=accepts(PROTOBUF))
    return router


def _answer(result: Ingested, protobuf: bool) -> Response:
    rejected = len(result.rejected)
    message = ""
    if rejected:
        shown = "; ".join(result.rejected[:3])
        message = f"{rejected} span(s) rejected: {shown}" + (" ..." if rejected > 3 else "")
    if protobuf:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        answer = ExportTraceServiceResponse()
        if rejected:
            answer.partial_success.rejected_spans = rejected
            answer.partial_success.error_message = message
        return Response(answer.SerializeToString(), media_type=PROTOBUF)
    content: dict[str, Any] = {}
    if rejected:
        # OTLP/JSON: 64-bit integers are strings.
        content["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
    return JSONResponse(content)


def _status(message: str, status: int, protobuf: bool) -> Response:
    """OTLP's error body, a google.rpc.Status, in the request's encoding."""
    if protobuf:
        from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]  # ships no stubs

        body = Status(code=INVALID_ARGUMENT, message=message).SerializeToString()
        return Response(body, status_code=status, media_type=PROTOBUF)
    return JSONResponse({"code": INVALID_ARGUMENT, "message": message}, status_code=status)
