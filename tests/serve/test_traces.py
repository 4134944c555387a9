"""OTLP trace ingestion into `honed serve`'s app on a real socket.

Apps instrumented with the real packages (opentelemetry-instrumentation-openai-v2, openinference-
instrumentation-openai, the Langfuse SDK) run in a separate process (tests/support/otel_app.py), call an
OpenAI-compatible model server on 127.0.0.1 (the stub: OpenAI itself cannot be reached here) and export
to honed; their generations are logs with model, messages, output, tokens and cost, and each trace is a
tree of its spans. Hand-made OTLP/JSON bodies check the older conventions, partial success, gzip, limits
and the answers to bodies that cannot be read.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import honed
from honed.api import Honed
from honed.serve import create_app
from honed.serve.auth import TokenGate
from honed.store.logs import LogFilter
from tests.support.servers import running
from tests.support.stub_openai import stub_openai

ROOT = Path(__file__).resolve().parents[2]
TRACE = "5b8efff798038103d269b633813fc60c"


@pytest.fixture(scope="module")
def model_server() -> Iterator[str]:
    with stub_openai() as stub:
        yield stub.base_url


@pytest.fixture
def served(workspace: Path) -> Iterator[tuple[Honed, str]]:
    h = honed.connect(workspace)
    try:
        with running(create_app(h.client, store=h.store)) as base:
            yield h, base.removesuffix("/v1")
    finally:
        h.close()


def run_app(kind: str, model_url: str, env: dict[str, str]) -> str:
    """The instrumented app in its own process; returns the trace id it printed."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LANGFUSE_", "HONED_"))}
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.otel_app", kind, model_url],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def otel_env(base: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{base}/v1/traces",
        # The current GenAI conventions: messages as span attributes (gen_ai.input/output.messages).
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
    }


def one_trace(h: Honed, trace_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    [log] = h.store.logs.query(LogFilter(trace_id=trace_id))
    return log, h.store.spans.for_trace(trace_id, 100)


@pytest.mark.parametrize("kind", ["openai-v2", "openinference"])
def test_an_instrumented_app_shows_its_generation_and_its_trace(
    served: tuple[Honed, str], model_server: str, kind: str
) -> None:
    h, base = served
    trace_id = run_app(kind, model_server, otel_env(base))
    log, spans = one_trace(h, trace_id)
    # The model the reply named (what ran), priced as the one the request named when the table lacks it.
    assert log["model"] == "openai/stub-model"
    assert [(m["role"], m["content"]) for m in log["messages"]] == [
        ("system", "You answer about the weather."),
        ("user", "Weather in Paris?"),
    ]
    assert log["output"] == "echo: Weather in Paris?"
    assert (log["input_tokens"], log["output_tokens"]) == (7, 3)
    assert log["cost_usd"] == pytest.approx((7 * 0.15 + 3 * 0.60) / 1e6)
    assert log["latency_s"] is not None and log["latency_s"] >= 0
    assert log["params"]["temperature"] == 0.2 and log["params"]["max_tokens"] == 50
    assert log["metadata"]["service"] == f"weather-app-{kind}"
    # One trace: the agent step is the root; the generation and the tool call hang under it.
    by_name = {s["name"]: s for s in spans}
    root = by_name["agent step"]
    assert root["parent_span_id"] is None and root["kind"] == "span"
    assert root["attributes"]["attributes"] == {"app.step": 1}  # unknown attributes kept
    generation = next(s for s in spans if s["log_id"] == log["id"])
    assert generation["kind"] == "generation" and generation["parent_span_id"] == root["span_id"]
    assert log["metadata"]["parent_span_id"] == root["span_id"]
    tool = by_name["execute_tool weather"]
    assert tool["kind"] == "tool" and tool["parent_span_id"] == root["span_id"]
    assert tool["attributes"]["tool"] == "weather"


def test_the_langfuse_sdk_sends_to_honed_with_a_token_as_its_key_pair(
    workspace: Path, model_server: str
) -> None:
    h = honed.connect(workspace)
    token, secret = h.store.tokens.create("pk-lf-weather", ["ingest"])
    try:
        with running(create_app(h.client, store=h.store, gate=TokenGate(h.store))) as base:
            host = base.removesuffix("/v1")
            env = {"LANGFUSE_HOST": host, "LANGFUSE_PUBLIC_KEY": token.name, "LANGFUSE_SECRET_KEY": secret}
            trace_id = run_app("langfuse", model_server, env)
            log, spans = one_trace(h, trace_id)
            assert log["model"] == "gpt-4o-mini" and log["output"] == "echo: Weather in Paris?"
            assert log["messages"][1] == {"role": "user", "content": "Weather in Paris?"}
            assert (log["input_tokens"], log["output_tokens"]) == (7, 3)
            kinds = {s["name"]: s["kind"] for s in spans}
            assert kinds == {"agent step": "span", "llm": "generation", "weather": "tool"}
            root = next(s for s in spans if s["name"] == "agent step")
            assert root["attributes"]["team"] == "weather"
            assert root["attributes"]["input"] == {"question": "Weather in Paris?"}

            # A wrong public key, or a token without the ingest scope, is refused.
            body = _otlp_json([_span("ab" * 8, name="x")])
            wrong = httpx.post(f"{host}/api/public/otel/v1/traces", json=body, auth=("pk-other", secret))
            assert wrong.status_code == 401 and "public key" in wrong.json()["error"]["message"]
            _, reader = h.store.tokens.create("reader", ["inference"])
            refused = httpx.post(
                f"{host}/v1/traces", json=body, headers={"Authorization": f"Bearer {reader}"}
            )
            assert refused.status_code == 403 and "ingest" in refused.json()["error"]["message"]
    finally:
        h.close()


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    return {"stringValue": str(v)}


def _span(
    span_id: str,
    *,
    name: str = "chat",
    parent: str = "",
    attributes: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    trace_id: str = TRACE,
) -> dict[str, Any]:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": "1765000000000000000",
        "endTimeUnixNano": "1765000001500000000",
        "attributes": [{"key": k, "value": _value(v)} for k, v in (attributes or {}).items()],
        "events": events or [],
        "status": {},
    }


def _otlp_json(spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "hand-made"}}]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
            }
        ]
    }


OLDER = {
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.prompt.0.role": "user",
    "gen_ai.prompt.0.content": "What is 2+2?",
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "",
    "gen_ai.completion.0.tool_calls.0.id": "call_1",
    "gen_ai.completion.0.tool_calls.0.name": "add",
    "gen_ai.completion.0.tool_calls.0.arguments": '{"a": 2, "b": 2}',
    "gen_ai.usage.prompt_tokens": 12,
    "gen_ai.usage.completion_tokens": 5,
    "custom.flag": True,
}


def test_older_conventions_partial_success_and_resending(served: tuple[Honed, str]) -> None:
    h, base = served
    events = [
        {"name": "gen_ai.user.message", "attributes": [{"key": "content", "value": {"stringValue": "Hi!"}}]},
        {
            "name": "gen_ai.choice",
            "attributes": [
                {"key": "finish_reason", "value": {"stringValue": "stop"}},
                {"key": "message", "value": {"stringValue": '{"role": "assistant", "content": "Hello."}'}},
            ],
        },
    ]
    spans = [
        _span("a1" * 8, attributes=OLDER),
        _span("b2" * 8, name="chat events", attributes={"gen_ai.operation.name": "chat"}, events=events),
        _span("00" * 8, name="bad ids"),  # an all-zero span id: rejected, the others kept
    ]
    body = json.dumps(_otlp_json(spans)).encode()
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    reply = httpx.post(f"{base}/v1/traces", content=gzip.compress(body), headers=headers)
    assert reply.status_code == 200, reply.text
    partial = reply.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "bad ids" in partial["errorMessage"]
    logs = {log["id"].split("-")[-1]: log for log in h.store.logs.query(LogFilter(trace_id=TRACE))}
    older, evented = logs["a1" * 8], logs["b2" * 8]
    assert older["model"] == "openai/gpt-4o" and older["messages"] == [
        {"role": "user", "content": "What is 2+2?"}
    ]
    assert older["metadata"]["tool_calls"] == [
        {"id": "call_1", "name": "add", "arguments": '{"a": 2, "b": 2}'}
    ]
    assert (older["input_tokens"], older["output_tokens"]) == (12, 5)
    assert older["cost_usd"] == pytest.approx((12 * 2.5 + 5 * 10.0) / 1e6)
    assert older["latency_s"] == pytest.approx(1.5)
    assert older["metadata"]["otel"]["attributes"] == {"custom.flag": True}  # unknown, kept
    assert evented["messages"] == [{"role": "user", "content": "Hi!"}] and evented["output"] == "Hello."
    assert evented["metadata"]["finish_reason"] == "stop"

    # An exporter's retry of the same batch stores nothing twice.
    again = httpx.post(f"{base}/v1/traces", content=gzip.compress(body), headers=headers)
    assert again.status_code == 200
    assert len(h.store.logs.query(LogFilter(trace_id=TRACE))) == 2
    assert len(h.store.spans.for_trace(TRACE, 10)) == 2


def test_protobuf_in_protobuf_out_and_unreadable_bodies(served: tuple[Honed, str]) -> None:
    from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    h, base = served
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes.fromhex("c3" * 16), bytes.fromhex("d4" * 8), "chat"
    span.start_time_unix_nano, span.end_time_unix_nano = 1_765_000_000_000_000_000, 1_765_000_000_250_000_000
    attribute = span.attributes.add()
    attribute.key, attribute.value.string_value = "gen_ai.request.model", "gpt-4o-mini"
    protobuf = {"Content-Type": "application/x-protobuf"}
    reply = httpx.post(f"{base}/v1/traces", content=request.SerializeToString(), headers=protobuf)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(reply.content).HasField("partial_success")
    [log] = h.store.logs.query(LogFilter(trace_id="c3" * 16))
    assert log["model"] == "gpt-4o-mini" and log["latency_s"] == pytest.approx(0.25)

    garbage = httpx.post(f"{base}/v1/traces", content=b"\xff\x00 not protobuf", headers=protobuf)
    assert garbage.status_code == 400
    assert "not an OTLP ExportTraceServiceRequest" in Status.FromString(garbage.content).message
    not_json = httpx.post(f"{base}/v1/traces", content=b"{oops", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["message"]
    bomb = gzip.compress(b"{" + b" " * (40 * 1024 * 1024) + b"}")  # 40 MB of spaces in 40 KB
    too_big = httpx.post(
        f"{base}/v1/traces",
        content=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert too_big.status_code == 413 and "decompressed" in too_big.json()["message"]
    text = httpx.post(f"{base}/v1/traces", content=b"hello", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    assert len(h.store.logs.query()) == 1  # nothing from the refused bodies


def test_online_evaluation_rules_score_ingested_generations(served: tuple[Honed, str]) -> None:
    import time

    from honed.config import OnlineEvalRule
    from honed.logs.online import OnlineEvaluation

    h, base = served
    online = OnlineEvaluation(
        h.settings, [OnlineEvalRule(evaluator={"type": "contains", "strings": ["Hello"]})], interval_s=60
    )
    now = time.time_ns()
    span = _span("e5" * 8, trace_id="e5" * 16, attributes={"gen_ai.request.model": "gpt-4o-mini"})
    span["events"] = [
        {
            "name": "gen_ai.choice",
            "attributes": [{"key": "message", "value": {"stringValue": '{"content": "Hello there."}'}}],
        }
    ]
    span["startTimeUnixNano"], span["endTimeUnixNano"] = str(now), str(now + 300_000_000)
    assert httpx.post(f"{base}/v1/traces", json=_otlp_json([span])).status_code == 200
    [result] = online.run_once()
    assert result.scored == 1 and result.mean == 1.0
    scores = h.store.logs.scores_for([f"span-{'e5' * 16}-{'e5' * 8}"])
    assert scores[f"span-{'e5' * 16}-{'e5' * 8}"]["contains"]["passed"] is True
