"""How fast the web UI's main pages answer at real sizes, over HTTP from a real server on 127.0.0.1.

Targets (issue 18): the page of an experiment with 10,000 cases x 2 variants answers in under 300 ms on
SQLite (p50 and p95 reported; the target is on p95), and the log list over 1,000,000 logs in under 300 ms
on PostgreSQL (`--logs N`; `--postgres-url URL`, or a throwaway server started from Debian's postgresql
binaries as the tests do; without either, those rows are skipped and the output says why). The logs are
written with COPY; the first analysis of the run and the first log page are warm-ups, not timed.

The run is written straight to the store (result and score rows, and the dataset version its spec pins):
20,000 calls would take hours, and what is measured is the page, not the run. The first request of each
page is a warm-up (imports, the first analysis); each page is then fetched `--repeats` times.

As a baseline in the same run, the bare server answers `/static/honed.css` (routing, middleware and a
file), so a page's figure can be read as "the page's own work" on top of it.

    .venv/bin/python bench/ui_pages.py [--cases 10000] [--repeats 20] [--logs 1000000] [--postgres-url URL]

Writes bench/results/ui_pages.json; exits non-zero when a target that was measured is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from honed.api import Honed
from honed.config import init_workspace, load_settings
from honed.datasets import Case, record_cases
from honed.serve import create_app

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ui_pages.json"
TARGET_MS = 300.0


def synthetic_run(h: Honed, n_cases: int) -> str:
    """A finished run of 2 variants over `n_cases` cases, one evaluator, written straight to the store."""
    cases = [
        Case(id=f"c{i:05d}", inputs={"question": f"question {i}"}, reference=f"answer {i}")
        for i in range(n_cases)
    ]
    version = record_cases(h.store, "bench", cases).dataset
    variants = ["baseline", "candidate"]
    spec = {
        "name": "bench",
        "dataset": {"ref": f"bench@v{version.number}", "hash": version.hash},
        "variants": [{"id": v, "prompt": v, "model": "bench/m", "params": {}} for v in variants],
        "evaluators": [{"name": "exact", "spec": {"type": "exact"}, "version": "bench"}],
        "repeats": 1,
        "split": None,
        "budget_usd": None,
    }
    run = h.store.runs.create(spec, f"bench-{n_cases}", name="bench")
    rng = np.random.default_rng(0)
    for k, variant in enumerate(variants):
        passed = rng.random(n_cases) < 0.5 + 0.05 * k
        common = {"run_id": run.id, "variant": variant, "sample_index": 0}
        h.store.runs.put_results(
            [
                {
                    **common,
                    "case_id": f"c{i:05d}",
                    "request_key": "bench",
                    "prompt_hash": None,
                    "dataset_hash": version.hash,
                    "model": "bench/m",
                    "params": {},
                    "output": f"answer {i}" if ok else "no idea",
                    "parsed": None,
                    "error": None,
                    "input_tokens": 12,
                    "output_tokens": 6,
                    "latency_s": 0.05,
                    "cost_usd": 0.0,
                    "cached": False,
                }
                for i, ok in enumerate(passed)
            ]
        )
        h.store.runs.put_scores(
            [
                {
                    **common,
                    "case_id": f"c{i:05d}",
                    "evaluator": "exact",
                    "evaluator_version": "bench",
                    "value": float(ok),
                    "passed": bool(ok),
                    "reason": None,
                    "error": None,
                    "raw": None,
                    "details": None,
                }
                for i, ok in enumerate(passed)
            ]
        )
    h.store.runs.set_status(run.id, "completed")
    return run.id


def fill_logs(url: str, n: int) -> None:
    """`n` logs in the PostgreSQL store at `url`, written with COPY (minutes of inserts otherwise): 20
    prompts, 5 models, a tenth with feedback-free errors, timestamps over the last 30 days."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    now = time.time()
    rng = np.random.default_rng(0)
    ages = rng.random(n) * 30 * 86400
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        columns = "id, created_at, source, model, prompt, messages, output, params, input_tokens, "
        columns += "output_tokens, latency_s, cost_usd, error, metadata"
        with cur.copy(f"COPY logs ({columns}) FROM STDIN") as copy:
            for i in range(n):
                at = datetime.fromtimestamp(now - ages[i], UTC)
                failed = i % 10 == 0
                copy.write_row(
                    (
                        f"log-{i:07d}",
                        at,
                        "app",
                        f"local/model-{i % 5}",
                        f"prompt-{i % 20}",
                        json.dumps([{"role": "user", "content": f"question {i}"}]),
                        None if failed else f"answer {i}",
                        "{}",
                        12,
                        None if failed else 6,
                        0.05,
                        0.0,
                        "timeout" if failed else None,
                        "{}",
                    )
                )
        conn.commit()
        conn.execute("ANALYZE logs")


class Server:
    """The app on a real socket on 127.0.0.1, in a thread."""

    def __init__(self, h: Honed) -> None:
        app = create_app(h.client, store=h.store, workspace=h)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def timed(http: httpx.Client, path: str, repeats: int) -> dict[str, Any]:
    first = http.get(path)
    assert first.status_code == 200, (path, first.status_code, first.text[:300])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        response = http.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
    times.sort()
    return {
        "path": path,
        "first_ms": None,
        "p50_ms": statistics.median(times),
        "p95_ms": times[max(0, round(0.95 * len(times)) - 1)],
        "bytes": len(first.content),
    }


def log_pages(n: int, repeats: int, url: str | None) -> list[dict[str, Any]]:
    """The log list over `n` logs in PostgreSQL: the first page, a filtered one, and a page deep in."""
    sys.path.insert(0, str(HERE))
    from log_ingest import postgres

    out: list[dict[str, Any]] = []
    with postgres(url) as (found, note), tempfile.TemporaryDirectory() as tmp:
        if found is None:
            print(f"log list: skipped ({note})")
            return out
        root = init_workspace(Path(tmp))
        h = Honed(load_settings(start=root, env={"HONED_DATABASE_URL": found}))
        try:
            h.store  # noqa: B018 - creates the schema
            t0 = time.perf_counter()
            fill_logs(found, n)
            print(f"wrote {n} logs to PostgreSQL in {time.perf_counter() - t0:.1f} s ({note})")
            with Server(h) as base, httpx.Client(base_url=base, timeout=120) as http:
                first = http.get("/logs")
                assert first.status_code == 200, first.text[:300]
                deep = "/logs"
                for _ in range(20):  # follow "next" 20 pages in: a cursor deep in the list
                    found_next = re.search(r'href="(/logs\?[^"]*after=[^"]+)"', http.get(deep).text)
                    if found_next is None:
                        break
                    deep = found_next.group(1).replace("&amp;", "&")
                pages = {
                    f"log list ({n:,} logs, PostgreSQL)": "/logs",
                    "log list, one prompt": "/logs?prompt=prompt-7",
                    "log list, errors only": "/logs?errors=only",
                    "log list, 20 pages in": deep,
                }
                for name, path in pages.items():
                    out.append({"page": name, **timed(http, path, repeats), "target_ms": TARGET_MS})
        finally:
            h.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--logs", type=int, default=1_000_000, help="logs in PostgreSQL (0: skip)")
    parser.add_argument("--postgres-url", default=None, help="default: a throwaway server")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = init_workspace(Path(tmp))
        h = Honed(load_settings(start=root, env={}))
        try:
            t0 = time.perf_counter()
            run_id = synthetic_run(h, args.cases)
            print(f"wrote a run of {args.cases} cases x 2 variants in {time.perf_counter() - t0:.1f} s")
            with Server(h) as base, httpx.Client(base_url=base, timeout=120) as http:
                pages = {
                    "baseline: a static file": "/static/honed.css",
                    "experiments list": "/experiments",
                    f"run page ({args.cases} x 2)": f"/experiments/{run_id}",
                    "run page, regressions": f"/experiments/{run_id}?show=regressions",
                    "run page, text search": f"/experiments/{run_id}?q=question%209999",
                    "run page, a deep page": f"/experiments/{run_id}?offset={args.cases // 2}",
                    "case page": f"/experiments/{run_id}/cases/c00042",
                }
                for name, path in pages.items():
                    row = {"page": name, **timed(http, path, args.repeats)}
                    row["target_ms"] = TARGET_MS if name.startswith("run page") else None
                    rows.append(row)
        finally:
            h.close()
    if args.logs:
        rows += log_pages(args.logs, args.repeats, args.postgres_url)
    print(f"{'page':34} {'p50 ms':>9} {'p95 ms':>9} {'KiB':>7}  target")
    failed = False
    for row in rows:
        target = row["target_ms"]
        ok = target is None or row["p95_ms"] <= target
        failed |= not ok
        mark = "" if target is None else f"p95 <= {target:.0f} ms: {'PASS' if ok else 'FAIL'}"
        print(
            f"{row['page']:34} {row['p50_ms']:9.1f} {row['p95_ms']:9.1f} {row['bytes'] / 1024:7.1f}  {mark}"
        )
    base = rows[0]["p50_ms"]
    for row in rows[1:]:
        row["vs_static_file"] = row["p50_ms"] / base if base else None
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {
                    "platform": platform.platform(),
                    "python": sys.version.split()[0],
                    "cpus": os.cpu_count(),
                },
                "cases": args.cases,
                "repeats": args.repeats,
                "rows": rows,
                "passed": not failed,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
