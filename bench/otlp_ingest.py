"""How fast `honed serve` takes traces: OTLP generation spans per second over HTTP, beside `/v1/logs`.

A real `honed serve` process (no model loaded) listens on 127.0.0.1; this process sends it N generation
spans as an OpenTelemetry exporter does: protobuf `ExportTraceServiceRequest`s of 512 spans (the
BatchSpanProcessor's default batch), one request at a time, each span in the current GenAI conventions
(system and user messages, the output, model, usage, parameters; a trace of 4 spans per request id).
The baseline in the same run is `/v1/logs` with the same generations as honed's own JSON records, 512 a
request. Both count until the last response, i.e. until the rows are committed.

Target (issue 19): at least 5,000 generation spans/s into SQLite on this 2-core machine. PostgreSQL too:
`--postgres-url URL`, or a throwaway server from Debian's postgresql binaries (skipped, saying why, when
neither is possible). Prints a table, writes bench/results/otlp_ingest.json, exits non-zero when the
target fails.

    .venv/bin/python bench/otlp_ingest.py [--spans 20000] [--postgres-url URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for tests.support (free_port) and bench.log_ingest (postgres)

from bench.log_ingest import postgres  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)
from tests.support.stub_openai import free_port  # noqa: E402

from honed.config import init_workspace  # noqa: E402

RESULTS = HERE / "results" / "otlp_ingest.json"
TARGET_SPANS_PER_S = 5_000
BATCH = 512
HONED = str(Path(sys.executable).parent / "honed")
T0 = 1_765_000_000_000_000_000


def span_attributes(i: int) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 200,
        "gen_ai.usage.input_tokens": 41,
        "gen_ai.usage.output_tokens": 14,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "system", "parts": [{"type": "text", "content": "You help an online bookshop."}]},
                {"role": "user", "parts": [{"type": "text", "content": f"Is 'Dune' in paperback? (#{i})"}]},
            ]
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "Yes, it ships in two days."}]}]
        ),
    }


def otlp_batches(n: int) -> list[bytes]:
    out = []
    for start in range(0, n, BATCH):
        request = ExportTraceServiceRequest()
        scope = request.resource_spans.add()
        service = scope.resource.attributes.add()
        service.key, service.value.string_value = "service.name", "bookshop"
        spans = scope.scope_spans.add()
        spans.scope.name = "opentelemetry.instrumentation.openai_v2"
        for i in range(start, min(n, start + BATCH)):
            span = spans.spans.add()
            span.trace_id = (i // 4 + 1).to_bytes(16, "big")
            span.span_id = (i + 1).to_bytes(8, "big")
            span.name, span.kind = "chat gpt-4o-mini", 3
            span.start_time_unix_nano, span.end_time_unix_nano = T0 + i * 1000, T0 + i * 1000 + 420_000_000
            for key, value in span_attributes(i).items():
                kv = span.attributes.add()
                kv.key = key
                if isinstance(value, str):
                    kv.value.string_value = value
                elif isinstance(value, float):
                    kv.value.double_value = value
                elif isinstance(value, int):
                    kv.value.int_value = value
                else:
                    kv.value.array_value.values.add().string_value = value[0]
        out.append(request.SerializeToString())
    return out


def log_batches(n: int) -> list[bytes]:
    out = []
    for start in range(0, n, BATCH):
        logs = [
            {
                "model": "openai/gpt-4o-mini-2024-07-18",
                "messages": [
                    {"role": "system", "content": "You help an online bookshop."},
                    {"role": "user", "content": f"Is 'Dune' in paperback? (#{i})"},
                ],
                "output": "Yes, it ships in two days.",
                "params": {"temperature": 0.2, "max_tokens": 200},
                "input_tokens": 41,
                "output_tokens": 14,
                "latency_s": 0.42,
                "trace_id": f"{i // 4 + 1:032x}",
                "metadata": {"span_id": f"{i + 1:016x}", "service": "bookshop"},
            }
            for i in range(start, min(n, start + BATCH))
        ]
        out.append(json.dumps({"logs": logs}).encode())
    return out


def serve(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [HONED, "serve", "--no-warm", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"honed serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"{base}/v1/models", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("honed serve did not start within 60 s")
        time.sleep(0.2)


def send(base: str, path: str, bodies: list[bytes], content_type: str) -> dict[str, Any]:
    with httpx.Client(timeout=120) as http:
        http.post(f"{base}{path}", content=bodies[-1], headers={"Content-Type": content_type})  # warm-up
        started = time.perf_counter()
        for body in bodies[:-1]:
            reply = http.post(f"{base}{path}", content=body, headers={"Content-Type": content_type})
            if reply.status_code != 200 or b"rejected" in reply.content:
                raise SystemExit(f"{path} answered {reply.status_code}: {reply.text[:300]}")
        wall = time.perf_counter() - started
    timed = (len(bodies) - 1) * BATCH  # every batch holds BATCH records; the warm-up one is not timed
    return {"records": timed, "wall_s": round(wall, 3), "per_s": round(timed / wall, 1)}


def measure(env: dict[str, str], otlp: list[bytes], logs: list[bytes]) -> dict[str, Any]:
    out = {}
    for name, path, bodies, kind in (
        ("OTLP /v1/traces (protobuf)", "/v1/traces", otlp, "application/x-protobuf"),
        ("honed /v1/logs (JSON)", "/v1/logs", logs, "application/json"),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            root = init_workspace(Path(tmp) / "ws")
            proc, base = serve(root, env)
            try:
                out[name] = send(base, path, bodies, kind)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=20_480)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    n = max(BATCH * 2, args.spans // BATCH * BATCH)
    otlp, logs = otlp_batches(n), log_batches(n)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_")}
    results: dict[str, dict[str, Any]] = {}
    for name, r in measure(env, otlp, logs).items():
        results[f"{name} -> SQLite"] = r
    if not args.no_postgres:
        with postgres(args.postgres_url) as (url, note):
            if url is None:
                results["PostgreSQL"] = {"skipped": note}
            else:
                for name, r in measure({**env, "HONED_DATABASE_URL": url}, otlp, logs).items():
                    results[f"{name} -> PostgreSQL"] = {**r, "note": note}
    rate = results["OTLP /v1/traces (protobuf) -> SQLite"]["per_s"]
    passed = rate >= TARGET_SPANS_PER_S
    print(f"{'path':<46} {'records':>8} {'wall s':>8} {'per s':>9} {'vs /v1/logs':>12}")
    for name, r in results.items():
        if "skipped" in r:
            print(f"{name:<46} skipped: {r['skipped']}")
            continue
        base = results[name.replace("OTLP /v1/traces (protobuf)", "honed /v1/logs (JSON)")]["per_s"]
        ratio = r["per_s"] / base
        print(f"{name:<46} {r['records']:>8} {r['wall_s']:>8.2f} {r['per_s']:>9,.0f} {ratio:>11.2f}x")
    print(f"target: >= {TARGET_SPANS_PER_S:,} generation spans/s into SQLite: {'PASS' if passed else 'FAIL'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "spans": n,
                "batch": BATCH,
                "results": results,
                "target_spans_per_s": TARGET_SPANS_PER_S,
                "passed": passed,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
