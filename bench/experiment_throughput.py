"""How fast honed runs a whole experiment, against a bare HTTP client and promptfoo, on one stub server.

A stub OpenAI-compatible server (bench/_stub_server.py, its own process) answers every chat call after a
fixed delay, so N calls at concurrency C ideally take N / C * delay; what a client spends per call on this
machine's CPU decides how close it gets. Against that one server this script runs:

- bare-aiohttp: the same rendered messages posted as JSON at the same concurrency, replies parsed (the
  floor of this machine: no templates, no rows, no scoring);
- honed: `run_experiment` of 2 prompt versions x `--cases` cases (a `{{ question }}` template each), the
  `exact` evaluator, the response cache off, on SQLite in a temporary workspace. Timed are the call phase
  (from the start of the run until every call has finished, rows written in batches as they go) and the
  whole run (plus the final writes, scoring and the run's status); then `analyse()` on the finished run;
- promptfoo: `npx promptfoo eval` (a pinned version, installed with npm into bench/results/.promptfoo on
  first use) with its `openai:chat` provider pointed at the stub, the same prompts and cases, an `equals`
  assertion (like `exact`), cache, telemetry, update checks, sharing and its result database off. Its rate
  is taken from its own evaluation duration (Node's start-up and config loading excluded, which favours
  it). If npm cannot install it, the row says why and is skipped; no number is ever made up.

Targets (the issue): honed's call phase within 1.5x the bare client's time for the same calls, and honed's
whole run at least 5x promptfoo's calls per second. It prints a table and writes
bench/results/experiment_throughput.json; exits non-zero when a target fails.

    .venv/bin/python bench/experiment_throughput.py [--cases 10000] [--concurrency 128] [--no-promptfoo]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from call_overhead import StubProcess  # bench/ is on sys.path when this runs as a script
from honed.api import Honed
from honed.config import init_workspace, load_settings
from honed.datasets import Case, record_cases
from honed.experiments import analyse, parse_spec, resolve, run_experiment
from honed.prompts import Prompt, push

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "experiment_throughput.json"
PROMPTFOO_DIR = HERE / "results" / ".promptfoo"  # bench/results/ is git-ignored
PROMPTFOO_VERSION = "0.121.20"  # the newest that still runs on Node.js 20
MODEL = "stub-model"
PARAMS: dict[str, Any] = {"temperature": 0, "max_tokens": 16}
REPLY = "The answer is 42."  # what the stub answers to everything
SYSTEMS = ("You answer in one short sentence.", "Answer with the number only.")
USER = "Question: {{ question }}"
TARGET_X_BARE = 1.5
TARGET_X_PROMPTFOO = 5.0
ANALYSE_TARGET_S = 2.0


@dataclass
class Row:
    mode: str
    calls: int
    wall_s: float | None
    cpu_s: float | None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def calls_per_s(self) -> float | None:
        return self.calls / self.wall_s if self.wall_s else None


# -- the cases ---------------------------------------------------------------------------------------


def questions(n: int) -> list[tuple[str, str, str]]:
    """(id, question, reference): half the references match the stub's reply, so scores vary."""
    return [(f"c{i:05d}", f"what is {i} times seven?", REPLY if i % 2 == 0 else str(i * 7)) for i in range(n)]


def rendered(system: str, question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": f"Question: {question}"}]


# -- the bare client ---------------------------------------------------------------------------------


async def bare_aiohttp(base_url: str, cases: list[tuple[str, str, str]], concurrency: int) -> tuple[int, int]:
    """Every (system, case) call, bodies built inside the timed region; returns (calls, failures)."""
    url = f"{base_url}/chat/completions"
    headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(system: str, question: str) -> bool:
            async with sem:
                body = json.dumps({"model": MODEL, "messages": rendered(system, question), **PARAMS})
                async with session.post(url, data=body, headers=headers) as r:
                    data = json.loads(await r.read())
                    return r.status == 200 and bool(data["choices"][0]["message"]["content"])

        oks = await asyncio.gather(*(one(s, q) for s in SYSTEMS for _, q, _ in cases))
    return len(oks), sum(not ok for ok in oks)


def time_bare(base_url: str, cases: list[tuple[str, str, str]], concurrency: int) -> Row:
    c0, t0 = time.process_time(), time.perf_counter()
    calls, failed = asyncio.run(bare_aiohttp(base_url, cases, concurrency))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if failed:
        raise RuntimeError(f"bare-aiohttp: {failed} of {calls} calls failed")
    return Row("bare-aiohttp", calls, wall, cpu, "aiohttp, JSON bodies of the rendered messages")


# -- honed -------------------------------------------------------------------------------------------


def workspace(folder: Path, base_url: str, concurrency: int, cases: list[tuple[str, str, str]]) -> Path:
    init_workspace(folder)
    (folder / "honed.toml").write_text(
        f'[endpoints.bench]\nprovider = "openai"\nbase_url = "{base_url}"\nmax_concurrency = {concurrency}\n',
        encoding="utf-8",
    )
    h = Honed(load_settings(start=folder, env={}))
    try:
        for system in SYSTEMS:
            prompt = Prompt.model_validate(
                {
                    "name": "qa",
                    "model": f"bench/{MODEL}",
                    "params": PARAMS,
                    "messages": [{"role": "system", "content": system}, {"role": "user", "content": USER}],
                }
            )
            push(h.store, [prompt])
        record_cases(h.store, "bench", [Case(id=i, inputs={"question": q}, reference=r) for i, q, r in cases])
        # A small one for the warm-up run: imports, compiled statements, the connection pool.
        record_cases(
            h.store, "warmup", [Case(id=i, inputs={"question": q}, reference=r) for i, q, r in cases[:500]]
        )
    finally:
        h.close()
    return folder


def spec(dataset: str) -> dict[str, Any]:
    return {
        "name": f"throughput-{dataset}",
        "dataset": dataset,
        "variants": [{"prompt": "qa@v1"}, {"prompt": "qa@v2"}],
        "evaluators": [{"type": "exact"}],
    }


class Phases:
    """The progress callback: notes when the last call finished and when scoring started."""

    def __init__(self) -> None:
        self.calls_done: tuple[float, float] | None = None  # (perf_counter, process_time)

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase == "calls" and done == total and self.calls_done is None:
            self.calls_done = (time.perf_counter(), time.process_time())


def time_honed(folder: Path, dataset: str) -> tuple[Row, Row, Row, Row]:
    """(resolve, call phase, whole run, analyse) for one new run of `dataset`."""
    h = Honed(load_settings(start=folder, env={}), use_cache=False)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        exp = resolve(h, parse_spec(spec(dataset)))
        resolve_row = Row(
            "honed resolve", 0, time.perf_counter() - t0, time.process_time() - c0, "resolve(): pin the spec"
        )
        calls = len(exp.variants) * len(exp.cases) * exp.spec.repeats
        phases = Phases()
        c0, t0 = time.process_time(), time.perf_counter()
        run = run_experiment(h, exp, new=True, progress=phases)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if phases.calls_done is None:
            raise RuntimeError("honed: the calls phase never reported its end")
        call_wall, call_cpu = phases.calls_done[0] - t0, phases.calls_done[1] - c0
        results = h.store.runs.results(run.id)
        errors = [r["error"] for r in results if r["error"] is not None]
        scores = h.store.runs.scores(run.id)
        if run.status != "completed" or len(results) != calls or errors or len(scores) != calls:
            raise RuntimeError(
                f"honed: run {run.id} is {run.status} with {len(results)} of {calls} results, "
                f"{len(scores)} scores, errors: {errors[:3]}"
            )
        c0, t0 = time.process_time(), time.perf_counter()
        report = analyse(h.store, run.id)
        stats_wall, stats_cpu = time.perf_counter() - t0, time.process_time() - c0
        means = {v: s.mean for v, s in report.stats["exact"].summaries.items()}
    finally:
        h.close()
    return (
        resolve_row,
        Row("honed calls", calls, call_wall, call_cpu, "run_experiment until the last call finished"),
        Row("honed run", calls, wall, cpu, "the whole run_experiment: calls, writes, scoring, status"),
        Row(
            "honed analyse",
            calls,
            stats_wall,
            stats_cpu,
            "analyse(): rows -> matrices -> stats",
            {"means": means},
        ),
    )


def time_analyse_synthetic(folder: Path, n_cases: int, n_variants: int) -> Row:
    """analyse() at the issue's scale for the statistics (10,000 cases x 10 variants), on result and
    score rows written straight to the store (a run of that size would take 100,000 calls)."""
    import numpy as np

    h = Honed(load_settings(start=folder, env={}))
    try:
        variants = [f"variant-{k}" for k in range(n_variants)]
        body = {
            "name": "synthetic",
            "variants": [{"id": v} for v in variants],
            "evaluators": [{"name": "exact"}],
            "repeats": 1,
        }
        run = h.store.runs.create(body, f"synthetic-{n_cases}x{n_variants}", name="synthetic")
        rng = np.random.default_rng(0)
        for k, v in enumerate(variants):
            passed = rng.random(n_cases) < 0.4 + 0.01 * k
            common = {"run_id": run.id, "variant": v, "sample_index": 0}
            h.store.runs.put_results(
                [
                    {
                        **common,
                        "case_id": f"c{i:05d}",
                        "request_key": "synthetic",
                        "prompt_hash": None,
                        "dataset_hash": "synthetic",
                        "model": f"bench/{MODEL}",
                        "params": PARAMS,
                        "output": REPLY,
                        "parsed": None,
                        "error": None,
                        "input_tokens": 12,
                        "output_tokens": 6,
                        "latency_s": 0.05,
                        "cost_usd": 0.0,
                        "cached": False,
                    }
                    for i in range(n_cases)
                ]
            )
            h.store.runs.put_scores(
                [
                    {
                        **common,
                        "case_id": f"c{i:05d}",
                        "evaluator": "exact",
                        "evaluator_version": "synthetic",
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
        # The statistics' libraries are imported once per process, wherever the first import happens to
        # land; this figure is the work of analysing, so they are imported before the clock starts.
        import scipy.stats  # noqa: F401

        c0, t0 = time.process_time(), time.perf_counter()
        analyse(h.store, run.id)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        h.close()
    note = f"analyse() of {n_cases} cases x {n_variants} variants x 1 evaluator, rows written directly"
    return Row(f"analyse x{n_variants}", n_cases * n_variants, wall, cpu, note)


# -- promptfoo ---------------------------------------------------------------------------------------


def promptfoo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PROMPTFOO_"))}
    env.update(
        {
            "PROMPTFOO_DISABLE_TELEMETRY": "1",
            "PROMPTFOO_DISABLE_UPDATE": "1",
            "PROMPTFOO_CACHE_ENABLED": "false",
            "PROMPTFOO_DISABLE_SHARING": "1",
            "PROMPTFOO_CONFIG_DIR": str(PROMPTFOO_DIR / "home"),  # never ~/.promptfoo
            "NO_UPDATE_NOTIFIER": "1",
            "npm_config_update_notifier": "false",
        }
    )
    return env


def install_promptfoo(version: str) -> str | None:
    """Install the pinned promptfoo unless it is there; returns why it cannot run, or None."""
    installed = PROMPTFOO_DIR / "node_modules" / "promptfoo" / "package.json"
    if installed.is_file() and json.loads(installed.read_text(encoding="utf-8")).get("version") == version:
        return None
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return "node/npm not found on PATH"
    PROMPTFOO_DIR.mkdir(parents=True, exist_ok=True)
    manifest = PROMPTFOO_DIR / "package.json"
    if not manifest.exists():
        manifest.write_text('{"name": "honed-bench-promptfoo", "private": true}\n', encoding="utf-8")
    print(f"installing promptfoo@{version} into {PROMPTFOO_DIR} (once) ...", file=sys.stderr)
    try:
        proc = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", f"promptfoo@{version}"],
            cwd=PROMPTFOO_DIR,
            env=promptfoo_env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        return "npm install took over 15 minutes"
    if proc.returncode != 0 or not installed.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return f"npm install failed (exit {proc.returncode}): {' | '.join(tail)}"
    return None


def promptfoo_config(folder: Path, base_url: str, cases: list[tuple[str, str, str]]) -> Path:
    tests = folder / "tests.csv"
    with tests.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "reference"])
        writer.writerows((q, r) for _, q, r in cases)
    config = {
        "description": "honed bench: experiment throughput",
        "prompts": [{"id": f"file://prompt{i}.json", "label": f"v{i}"} for i in range(1, len(SYSTEMS) + 1)],
        "providers": [
            {
                "id": f"openai:chat:{MODEL}",
                "config": {"apiBaseUrl": base_url, "apiKey": "x", **PARAMS},
            }
        ],
        "defaultTest": {"assert": [{"type": "equals", "value": "{{ reference }}"}]},
        "tests": f"file://{tests.name}",
    }
    for i, system in enumerate(SYSTEMS, 1):
        # A chat prompt in promptfoo's JSON-messages form: the same two messages honed sends.
        messages = [{"role": "system", "content": system}, {"role": "user", "content": USER}]
        (folder / f"prompt{i}.json").write_text(json.dumps(messages), encoding="utf-8")
    path = folder / "promptfooconfig.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def run_promptfoo(
    folder: Path, base_url: str, cases: list[tuple[str, str, str]], concurrency: int, max_s: float
) -> Row | str:
    """One `promptfoo eval`; a Row, or why it gave no number (a timeout: the caller may try fewer)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = promptfoo_config(folder, base_url, cases)
    out = folder / "output.json"
    log = folder / "promptfoo.log"
    npx = shutil.which("npx")
    if npx is None:
        return "npx not found on PATH"
    cmd = [
        npx, "--no-install", "promptfoo", "eval", "-c", str(config), "-j", str(concurrency),
        "--no-cache", "--no-write", "--no-table", "--no-share", "--no-progress-bar", "-o", str(out),
    ]  # fmt: skip
    calls = len(cases) * len(SYSTEMS)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("w", encoding="utf-8") as f:
        proc = subprocess.Popen(
            cmd, cwd=PROMPTFOO_DIR, env=promptfoo_env(), stdout=f, stderr=subprocess.STDOUT
        )
        try:
            code = proc.wait(timeout=max_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return f"timeout: {calls} calls took over {max_s:.0f} s"
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tail = " | ".join(log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:])
    if not out.is_file():
        return f"promptfoo eval exited {code} without output: {tail}"
    stats = json.loads(out.read_text(encoding="utf-8"))["results"]["stats"]
    made = stats["successes"] + stats["failures"] + stats["errors"]
    if stats["errors"] or made != calls:
        return f"promptfoo eval: {stats['errors']} errors, {made} of {calls} results: {tail}"
    eval_s = stats.get("durationMs", wall * 1000) / 1000
    return Row(
        "promptfoo",
        calls,
        eval_s,
        cpu,
        f"promptfoo@{PROMPTFOO_VERSION}, its own eval duration (process: {wall:.1f} s)",
        {"process_wall_s": round(wall, 3), "passed": stats["successes"], "failed": stats["failures"]},
    )


def time_promptfoo(
    args: argparse.Namespace, base_url: str, cases: list[tuple[str, str, str]], folder: Path
) -> tuple[Row | None, str]:
    if args.no_promptfoo:
        return None, "skipped: --no-promptfoo"
    why = install_promptfoo(args.promptfoo_version)
    if why is not None:
        return None, f"skipped: {why}"
    got = run_promptfoo(folder / "promptfoo", base_url, cases, args.concurrency, args.promptfoo_max_s)
    if isinstance(got, str) and got.startswith("timeout"):
        print(f"  promptfoo: {got}; trying half the calls", file=sys.stderr)
        half = cases[: len(cases) // 2]
        again = run_promptfoo(
            folder / "promptfoo-half", base_url, half, args.concurrency, args.promptfoo_max_s
        )
        if isinstance(again, Row):
            again.note += f"; {got}, so run on {again.calls} calls (compare calls/s)"
        got = again
    if isinstance(got, str):
        return None, f"skipped: {got}"
    return got, ""


# -- the run -----------------------------------------------------------------------------------------


def version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    return subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000, help="cases; each runs with 2 prompt versions")
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--delay-s", type=float, default=0.05, help="the stub server's answer delay")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of bare and honed (median)")
    parser.add_argument(
        "--analyse-variants", type=int, default=10, help="variants of the synthetic analyse() row (0: skip)"
    )
    parser.add_argument("--no-promptfoo", action="store_true", help="skip promptfoo")
    parser.add_argument("--promptfoo-version", default=PROMPTFOO_VERSION)
    parser.add_argument(
        "--promptfoo-max-s", type=float, default=180.0, help="past this, promptfoo is run on half the calls"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not 1 <= args.cases <= 100_000 or not 1 <= args.repeats <= 5 or not 0 <= args.analyse_variants <= 20:
        parser.error("--cases must be 1..100000, --repeats 1..5 and --analyse-variants 0..20")

    cases = questions(args.cases)
    calls = args.cases * len(SYSTEMS)
    # Bounded: warm-ups, bare and honed runs, promptfoo (twice at most), with room to spare.
    max_requests = 2 * (calls * (2 * args.repeats + 3) + 2_000)
    stub = StubProcess(args.delay_s, max_requests=max_requests, max_seconds=1800)
    honed_rows: dict[str, list[Row]] = {}
    bare_rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory(prefix="honed-bench-") as tmp:
            folder = workspace(Path(tmp) / "ws", stub.base_url, args.concurrency, cases)
            # Warm up both clients once on 1,000 calls (imports, first connections, compiled statements).
            time_bare(stub.base_url, cases[:500], args.concurrency)
            time_honed(folder, "warmup")
            for p in range(args.repeats):
                bare_rows.append(time_bare(stub.base_url, cases, args.concurrency))
                for row in time_honed(folder, "bench"):
                    honed_rows.setdefault(row.mode, []).append(row)
                walls = [
                    bare_rows[-1].wall_s,
                    *(honed_rows[m][-1].wall_s for m in ("honed calls", "honed run")),
                ]
                print(f"  pass {p + 1}: bare, honed calls, honed run: {walls} s", file=sys.stderr)
            synthetic = None
            if args.analyse_variants:
                synthetic = time_analyse_synthetic(folder, args.cases, args.analyse_variants)
            pf, pf_skipped = time_promptfoo(args, stub.base_url, cases, Path(tmp))
    finally:
        stub.stop()

    def med(rows: list[Row]) -> Row:
        ordered = sorted(rows, key=lambda r: r.wall_s or 0.0)
        return ordered[(len(ordered) - 1) // 2]

    bare = med(bare_rows)
    honed_calls, honed_run = med(honed_rows["honed calls"]), med(honed_rows["honed run"])
    resolved, analysed = med(honed_rows["honed resolve"]), med(honed_rows["honed analyse"])
    others = [resolved, analysed] + ([synthetic] if synthetic is not None else [])
    rows = [bare, honed_calls, honed_run] + ([pf] if pf is not None else [])
    ideal = calls / args.concurrency * args.delay_s
    assert bare.wall_s is not None and honed_calls.wall_s is not None and honed_run.calls_per_s is not None

    x_bare = honed_calls.wall_s / bare.wall_s
    targets: dict[str, bool | None] = {
        f"honed calls <= {TARGET_X_BARE} x bare-aiohttp": x_bare <= TARGET_X_BARE
    }
    vs_promptfoo = None
    if pf is not None and pf.calls_per_s:
        vs_promptfoo = honed_run.calls_per_s / pf.calls_per_s
        targets[f"honed run calls/s >= {TARGET_X_PROMPTFOO} x promptfoo"] = vs_promptfoo >= TARGET_X_PROMPTFOO
    else:
        targets[f"honed run calls/s >= {TARGET_X_PROMPTFOO} x promptfoo"] = None  # not measured

    print(
        f"\n{args.cases} cases x {len(SYSTEMS)} variants = {calls} calls, concurrency {args.concurrency}, "
        f"server delay {args.delay_s * 1000:g} ms: ideal {ideal:.2f} s ({calls / ideal:.0f} calls/s)"
    )
    print(f"median of {args.repeats} run(s); cpu = time.process_time of this process (promptfoo: its own)\n")
    header = (
        f"{'mode':<14} {'calls':>6} {'wall s':>8} {'calls/s':>8} {'x ideal':>8} {'x bare':>7} {'cpu s':>7}"
    )
    print(header)
    print("-" * len(header))
    print(f"{'ideal':<14} {calls:>6} {ideal:8.2f} {calls / ideal:8.0f} {1.0:8.2f} {ideal / bare.wall_s:7.2f}")
    out_rows = []
    for r in rows:
        assert r.wall_s is not None and r.calls_per_s is not None
        # Per call, so that a promptfoo run on fewer calls still compares.
        xi = r.wall_s / (r.calls / args.concurrency * args.delay_s)
        xb = (r.wall_s / r.calls) / (bare.wall_s / bare.calls)
        cpu = f"{r.cpu_s:7.2f}" if r.cpu_s is not None else f"{'':>7}"
        print(f"{r.mode:<14} {r.calls:>6} {r.wall_s:8.2f} {r.calls_per_s:8.0f} {xi:8.2f} {xb:7.2f} {cpu}")
        out_rows.append(
            {
                "mode": r.mode,
                "note": r.note,
                "calls": r.calls,
                "wall_s": round(r.wall_s, 4),
                "calls_per_s": round(r.calls_per_s, 1),
                "x_ideal": round(xi, 3),
                "x_bare": round(xb, 3),
                "cpu_s": None if r.cpu_s is None else round(r.cpu_s, 3),
                **r.extra,
            }
        )
    for r in others:
        assert r.wall_s is not None and r.cpu_s is not None
        print(f"{r.mode:<14} {'':>6} {r.wall_s:8.2f} {'':>8} {'':>8} {'':>7} {r.cpu_s:7.2f}")
        out_rows.append(
            {
                "mode": r.mode,
                "note": r.note,
                "wall_s": round(r.wall_s, 4),
                "cpu_s": round(r.cpu_s, 3),
                **r.extra,
            }
        )
    print()
    for r in (*rows, *others):
        if r.note:
            print(f"  {r.mode}: {r.note}")
    if pf_skipped:
        print(f"  promptfoo: {pf_skipped}")
    print()
    print(f"  honed calls / bare-aiohttp = {x_bare:.2f}x (target <= {TARGET_X_BARE}x)")
    if vs_promptfoo is not None:
        print(f"  honed run / promptfoo calls/s = {vs_promptfoo:.1f}x (target >= {TARGET_X_PROMPTFOO}x)")
    for name, ok in targets.items():
        print(f"  {'SKIP' if ok is None else 'PASS' if ok else 'FAIL'}  {name}")
    info: dict[str, bool] = {}
    if synthetic is not None and synthetic.wall_s is not None:
        # The target for the statistics; most of it is honed.evals.stats (see bench/stats.py).
        name = f"analyse() of {args.cases} cases x {args.analyse_variants} variants < {ANALYSE_TARGET_S:g} s"
        info[name] = synthetic.wall_s < ANALYSE_TARGET_S
        print(f"  {'PASS' if info[name] else 'FAIL'}  {name} (for information: see bench/stats.py)")

    result = {
        "benchmark": "experiment_throughput",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "node": node_version(),
            "packages": {p: version(p) for p in ("honed", "aiohttp", "sqlalchemy", "jinja2", "numpy")},
            "promptfoo": None if pf is None else args.promptfoo_version,
        },
        "parameters": {
            "cases": args.cases,
            "variants": len(SYSTEMS),
            "calls": calls,
            "concurrency": args.concurrency,
            "server_delay_s": args.delay_s,
            "repeats": args.repeats,
            "ideal_s": ideal,
            "evaluator": "exact",
            "cache": False,
            "store": "sqlite",
        },
        "results": out_rows,
        "promptfoo_skipped": pf_skipped or None,
        "ratios": {
            "honed_calls_x_bare": round(x_bare, 3),
            "honed_run_calls_per_s_x_promptfoo": None if vs_promptfoo is None else round(vs_promptfoo, 2),
        },
        "targets": targets,
        "skipped_targets": [name for name, ok in targets.items() if ok is None],
        "all_measured_targets_pass": all(ok is not False for ok in targets.values()),
        "information": info,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0 if result["all_measured_targets_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
