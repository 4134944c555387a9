"""What honed's call layer costs per call, against the SDK and against a bare HTTP client.

A stub OpenAI-compatible server (bench/_stub_server.py, its own process) answers every chat call after a
fixed delay, so the ideal time of N calls at concurrency C is N / C * delay. On a small machine the client's
CPU per call, not the network, decides how close to that ideal a client gets. In one run, against the same
server, this script times:

- bare-httpx / bare-aiohttp: post the JSON body, read the JSON reply (the floor of this machine);
- sdk-loop: `openai.AsyncOpenAI(...).chat.completions.create` under a semaphore;
- honed: `ModelClient.complete_many` (its default transport, aiohttp) with the cache off, then with it on
  (a cold pass that calls and writes the cache, and a warm pass served from it), and with
  `transport = "sdk"` for information.

Each mode is warmed up once, then timed `--repeats` times (modes interleaved, so drift hits all alike); the
median counts. It prints a table and writes bench/results/call_overhead.json with the targets' pass/fail.

    .venv/bin/python bench/call_overhead.py [--calls 2000] [--concurrency 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai

from honed.config import init_workspace, load_settings
from honed.models.client import ModelClient
from honed.models.types import ChatRequest
from honed.store import Store

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "call_overhead.json"
MODEL = "bench-model"
PARAMS = {"temperature": 0.0, "max_tokens": 16}


@dataclass
class Mode:
    name: str
    run: Callable[[int], Awaitable[int]]  # (pass number) -> calls that failed
    note: str = ""
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)


# -- the stub server ---------------------------------------------------------------------------------


class StubProcess:
    """bench/_stub_server.py in a child process: started on a free port, stopped at the end."""

    def __init__(self, delay_s: float, max_requests: int, max_seconds: float) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_stub_server.py"),
                "--port=0",
                f"--delay-s={delay_s}",
                f"--max-requests={max_requests}",
                f"--max-seconds={max_seconds}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the server prints READY <port> once it listens
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the stub server did not start (said {line!r})")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the server exits when its stdin closes
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the clients -------------------------------------------------------------------------------------


def messages(tag: str, i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": f"Question {tag}-{i}: what is six times seven?"},
    ]


async def bare_httpx(base_url: str, n: int, concurrency: int, client: httpx.AsyncClient, tag: str) -> int:
    sem = asyncio.Semaphore(concurrency)
    url = f"{base_url}/chat/completions"
    headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}

    async def one(i: int) -> bool:
        async with sem:
            body = json.dumps({"model": MODEL, "messages": messages(tag, i), **PARAMS})
            r = await client.post(url, content=body, headers=headers)
            data = r.json()
            return r.status_code == 200 and bool(data["choices"][0]["message"]["content"])

    return sum(not ok for ok in await asyncio.gather(*(one(i) for i in range(n))))


async def bare_aiohttp(
    base_url: str, n: int, concurrency: int, session: aiohttp.ClientSession, tag: str
) -> int:
    sem = asyncio.Semaphore(concurrency)
    url = f"{base_url}/chat/completions"
    headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}

    async def one(i: int) -> bool:
        async with sem:
            body = json.dumps({"model": MODEL, "messages": messages(tag, i), **PARAMS})
            async with session.post(url, data=body, headers=headers) as r:
                data = json.loads(await r.read())
                return r.status == 200 and bool(data["choices"][0]["message"]["content"])

    return sum(not ok for ok in await asyncio.gather(*(one(i) for i in range(n))))


async def sdk_loop(n: int, concurrency: int, client: openai.AsyncOpenAI, tag: str) -> int:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> bool:
        async with sem:
            r = await client.chat.completions.create(
                model=MODEL,
                messages=messages(tag, i),  # type: ignore[arg-type]
                temperature=PARAMS["temperature"],
                max_tokens=int(PARAMS["max_tokens"]),
            )
            return bool(r.choices[0].message.content)

    return sum(not ok for ok in await asyncio.gather(*(one(i) for i in range(n))))


def honed_requests(endpoint: str, n: int, tag: str) -> list[ChatRequest]:
    return [ChatRequest.of(f"{endpoint}/{MODEL}", messages(tag, i), PARAMS) for i in range(n)]  # type: ignore[arg-type]


async def honed_pass(client: ModelClient, requests: list[ChatRequest], expect_cached: bool | None) -> int:
    out = await client.complete_many(requests)
    bad = 0
    for c in out:
        wrong_source = (
            expect_cached is not None and not isinstance(c, Exception) and c.cached != expect_cached
        )
        if isinstance(c, Exception) or not c.text or wrong_source:
            bad += 1
    return bad


def workspace(folder: Path, base_url: str, concurrency: int) -> ModelClient:
    init_workspace(folder)
    (folder / "honed.toml").write_text(
        "cache = true\n"
        f'[endpoints.bench]\nprovider = "openai"\nbase_url = "{base_url}"\nmax_concurrency = {concurrency}\n'
        f'[endpoints.bench_sdk]\nprovider = "openai"\nbase_url = "{base_url}"\n'
        f'max_concurrency = {concurrency}\ntransport = "sdk"\n',
        encoding="utf-8",
    )
    settings = load_settings(start=folder, env={})
    return ModelClient(settings, store=Store.open(settings.resolved_database_url()), use_cache=True)


# -- the run -----------------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, base_url: str, folder: Path) -> list[Mode]:
    n, conc = args.calls, args.concurrency
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
    http = httpx.AsyncClient(limits=limits, timeout=60)
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=60)
    cached_client = workspace(folder, base_url, conc)
    # The same settings and store, the cache off: the per-call path without the store.
    uncached_client = ModelClient(cached_client.settings, store=cached_client.store, use_cache=False)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    last_cold: list[list[ChatRequest]] = []

    async def cold(p: int) -> int:
        reqs = honed_requests("bench", n, f"cold{p}")  # new content each pass, so nothing is cached yet
        last_cold[:] = [reqs]
        return await honed_pass(cached_client, reqs, expect_cached=False)

    modes = [
        Mode("bare-httpx", lambda p: bare_httpx(base_url, n, conc, http, f"h{p}"), "httpx.AsyncClient, JSON"),
        Mode("bare-aiohttp", lambda p: bare_aiohttp(base_url, n, conc, session, f"a{p}"), "aiohttp, JSON"),
        Mode("sdk-loop", lambda p: sdk_loop(n, conc, sdk, f"s{p}"), "openai.AsyncOpenAI, max_retries=0"),
        Mode(
            "honed",
            lambda p: honed_pass(uncached_client, honed_requests("bench", n, f"u{p}"), expect_cached=None),
            "complete_many, cache off, transport aiohttp",
        ),
        Mode("honed-cache-cold", cold, "cache on, first pass: calls + cache writes"),
        Mode(
            "honed-cache-warm",
            lambda p: honed_pass(cached_client, last_cold[0], expect_cached=True),
            "cache on, second pass: all served from the cache",
        ),
        Mode(
            "honed-sdk",
            lambda p: honed_pass(
                uncached_client, honed_requests("bench_sdk", n, f"k{p}"), expect_cached=None
            ),
            "cache off, transport sdk (for information)",
        ),
    ]
    try:
        for p in range(args.repeats + 1):  # pass 0 warms up (connections, imports, first cache writes)
            for mode in modes:
                # Every mode builds its own inputs inside the timed region (honed's ChatRequests too),
                # except the warm cache pass, which replays the cold pass's list.
                c0, t0 = time.process_time(), time.perf_counter()
                failed = await mode.run(p)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                if failed:
                    raise RuntimeError(f"{mode.name}: {failed} of {n} calls failed")
                if p > 0:
                    mode.walls.append(wall)
                    mode.cpus.append(cpu)
                print(f"  pass {p} {mode.name:<18} {wall:7.3f} s  cpu {cpu:6.3f} s", file=sys.stderr)
    finally:
        await http.aclose()
        await sdk.close()
        await session.close()
        await cached_client.aclose()
        await uncached_client.aclose()
        if cached_client.store is not None:
            cached_client.store.close()
    return modes


def report(args: argparse.Namespace, modes: list[Mode]) -> dict[str, Any]:
    n, conc, delay = args.calls, args.concurrency, args.delay_s
    ideal = n / conc * delay
    med = {m.name: statistics.median(m.walls) for m in modes}
    # The floor is the fastest bare client: httpx's own pool can be far slower than the wire allows.
    floor = min((m for m in med if m.startswith("bare-")), key=med.__getitem__)
    bare = med[floor]
    rows = []
    for m in modes:
        wall = med[m.name]
        rows.append(
            {
                "mode": m.name,
                "note": m.note,
                "wall_s": round(wall, 4),
                "wall_s_runs": [round(w, 4) for w in m.walls],
                "x_ideal": round(wall / ideal, 3),
                "x_bare": round(wall / bare, 3),
                "calls_per_s": round(n / wall, 1),
                "cpu_s": round(statistics.median(m.cpus), 4),
                "cpu_ms_per_call": round(statistics.median(m.cpus) / n * 1000, 3),
            }
        )
    targets = {
        "honed <= sdk-loop": med["honed"] <= med["sdk-loop"],
        f"honed <= 1.3 x {floor}": med["honed"] <= 1.3 * bare,
        "honed-cache-warm < 0.5 s": med["honed-cache-warm"] < 0.5,
    }

    columns = ("wall s", 8), ("x ideal", 8), ("x bare", 7), ("calls/s", 8), ("cpu s", 7), ("cpu ms/call", 11)
    header = f"{'mode':<18} " + " ".join(f"{name:>{width}}" for name, width in columns)
    print(f"\n{n} calls, concurrency {conc}, server delay {delay * 1000:g} ms: ideal {ideal:.3f} s")
    print(f"median of {args.repeats} runs; x bare = vs {floor}, the fastest bare client (the floor);")
    print("cpu = this client process (time.process_time), the stub server not included\n")
    print(header)
    print("-" * len(header))
    print(f"{'ideal':<18} {ideal:8.3f} {1.0:8.2f} {ideal / bare:7.2f} {n / ideal:8.0f}")
    for r in rows:
        print(
            f"{r['mode']:<18} {r['wall_s']:8.3f} {r['x_ideal']:8.2f} {r['x_bare']:7.2f} "
            f"{r['calls_per_s']:8.0f} {r['cpu_s']:7.3f} {r['cpu_ms_per_call']:11.3f}"
        )
    print()
    for name, ok in targets.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")

    def version(pkg: str) -> str | None:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "benchmark": "call_overhead",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "packages": {p: version(p) for p in ("honed", "httpx", "openai", "aiohttp")},
        },
        "parameters": {
            "calls": n,
            "concurrency": conc,
            "server_delay_s": delay,
            "repeats": args.repeats,
            "statistic": "median",
            "ideal_s": ideal,
            "floor": floor,
        },
        "results": rows,
        "targets": targets,
        "all_targets_pass": all(targets.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay-s", type=float, default=0.05, help="the stub server's answer delay")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per mode, after one warm-up")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    # Bounded: every mode but the warm cache calls the server once per request, per pass.
    max_requests = args.calls * (args.repeats + 1) * 8
    stub = StubProcess(args.delay_s, max_requests=max_requests, max_seconds=1200)
    try:
        with tempfile.TemporaryDirectory(prefix="honed-bench-") as tmp:
            modes = asyncio.run(measure(args, stub.base_url, Path(tmp)))
    finally:
        stub.stop()
    result = report(args, modes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0 if result["all_targets_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
