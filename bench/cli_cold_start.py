"""How long a `honed` command takes from a cold process, as a user starts it.

Every row is a whole process (`python -c "...run()"`, exactly what the `honed` console script does), timed
from start to exit, in a fresh workspace with a three-document knowledge base (the default embedder,
all-MiniLM-L6-v2) and one cached answer of the local model. Each row runs once to warm the disk cache,
then `--repeats` times (median):

- `python -c pass`: the interpreter alone, the floor every row is also shown against;
- `honed --help`;
- `kb search --method bm25`;
- `kb search --method dense` with a new query each run (the model is loaded in the process), with the
  query's embedding cached (no model needed), and with a new query while `honed serve` runs for the
  workspace (the server embeds it);
- `models run` answered by the response cache; and, for reference, a new call while `honed serve` runs.

With `--baseline-src DIR` (the `src` folder's parent of another checkout, e.g. one made with
`git worktree add /tmp/honed-before HEAD`) every row also runs that code in a workspace of its own, the
two alternating run by run, and the table shows the ratio now / before (a served row's baseline is the
same search or call without a server, which is all older code can do). Targets (the issue, on an idle
machine): `--help` under 1 s, a BM25 search under 1.5 s, a dense search (cached query, or a server
running) and a cached `models run` under 3 s. It prints a table, writes bench/results/cli_cold_start.json
and exits non-zero when a target fails.

    .venv/bin/python bench/cli_cold_start.py [--repeats 5] [--baseline-src /tmp/honed-before]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "cli_cold_start.json"
RUN = "import sys; sys.argv = ['honed', *sys.argv[1:]]; from honed.cli.main import run; run()"
MODEL = "local/smollm2-135m-instruct"
PROMPT = "What is the capital of France?"
QUERY = "how long do returns take"
DOCS = {
    "returns.md": "---\ncategory: policy\n---\n# Returns\n\nReturns are accepted for 30 days.\n",
    "shipping.md": "# Shipping\n\nStandard shipping takes five working days; express arrives the next day.\n",
    "warranty.md": "# Warranty\n\nEvery device carries a two-year warranty against defects.\n",
}
_fresh = itertools.count()


@dataclass
class Side:
    """One version of honed: where its code is (None: this checkout) and its workspace."""

    name: str
    src: Path | None
    root: Path
    serve: subprocess.Popen[bytes] | None = None
    times: dict[str, list[float]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_") or k == "HONED_MODEL_CACHE"}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="120")
        if self.src is not None:
            env["PYTHONPATH"] = str(self.src / "src")
        return env

    def honed(self, *args: str, check: bool = True) -> float:
        """Run `honed ARGS` in the workspace; its wall time in seconds."""
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", RUN, *args],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            timeout=600,
        )
        took = time.perf_counter() - start
        if check and done.returncode != 0:
            raise SystemExit(f"{self.name}: honed {' '.join(args)} failed:\n{done.stderr.decode()[-2000:]}")
        return took


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(side: Side) -> None:
    """A workspace with the knowledge base ingested, the answer cached and the query's embedding cached."""
    side.root.mkdir(parents=True)
    side.honed("init", ".")
    docs = side.root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    side.honed("kb", "create", "docs")
    side.honed("kb", "ingest", "docs", "docs")
    side.honed("models", "run", MODEL, PROMPT, "--max-tokens", "16")
    side.honed("kb", "search", "docs", QUERY, "--method", "dense")


def start_serve(side: Side) -> None:
    port = free_port()
    side.serve = subprocess.Popen(
        [sys.executable, "-c", RUN, "serve", "--port", str(port)],
        cwd=side.root,
        env=side.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/honed/status", timeout=1):
                break
        except OSError:
            time.sleep(0.3)
    else:
        raise SystemExit("honed serve did not start")
    # Its embedder loads in the background: wait for it, so the first timed search is not the load.
    side.honed("kb", "search", "docs", "warming the server's embedder", "--method", "dense")


def stop_serve(side: Side) -> None:
    if side.serve is not None:
        side.serve.send_signal(signal.SIGTERM)
        side.serve.wait(timeout=60)
        side.serve = None


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    target_s: float | None
    served: bool = False  # needs `honed serve` running (on this checkout; a baseline runs without)

    def args(self) -> list[str]:
        fresh = f"{QUERY} (variant {next(_fresh)})"
        return {
            "floor": [],
            "help": ["--help"],
            "bm25": ["kb", "search", "docs", QUERY, "--method", "bm25"],
            "dense_new": ["kb", "search", "docs", fresh, "--method", "dense"],
            "dense_cached": ["kb", "search", "docs", QUERY, "--method", "dense"],
            "dense_served": ["kb", "search", "docs", fresh, "--method", "dense"],
            "run_cached": ["models", "run", MODEL, PROMPT, "--max-tokens", "16"],
            "run_served": ["models", "run", MODEL, PROMPT, "--max-tokens", "16", "--no-cache"],
        }[self.key]


ROWS = (
    Row("floor", "python -c pass (the floor)", None),
    Row("help", "honed --help", 1.0),
    Row("bm25", "kb search --method bm25", 1.5),
    Row("dense_new", "kb search --method dense, new query", None),
    Row("dense_cached", "kb search --method dense, cached query", 3.0),
    Row("dense_served", "kb search --method dense, new query, honed serve up", 3.0, served=True),
    Row("run_cached", "models run, cached answer", 3.0),
    Row("run_served", "models run --no-cache, honed serve up", None, served=True),
)


def time_row(row: Row, sides: list[Side], repeats: int) -> None:
    for rep in range(repeats + 1):  # the first round warms the disk cache and is not counted
        for side in sides:
            if row.key == "floor":
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", "pass"], env=side.env(), check=True)
                took = time.perf_counter() - start
            else:
                took = side.honed(*row.args())
            if rep:
                side.times.setdefault(row.key, []).append(took)


def summary(values: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row, after one warm-up")
    parser.add_argument("--baseline-src", type=Path, default=None, help="another checkout to compare with")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="honed-cold-") as tmp:
        sides = [Side("now", None, Path(tmp) / "now")]
        if args.baseline_src is not None:
            sides.append(Side("before", args.baseline_src.resolve(), Path(tmp) / "before"))
        for side in sides:
            print(f"setting up {side.name} (ingest, one model call)...", flush=True)
            setup(side)
        for row in ROWS:
            if row.served:
                start_serve(sides[0])
            try:
                time_row(row, sides, args.repeats)
            finally:
                stop_serve(sides[0])
    load_end = os.getloadavg()

    floor = statistics.median(sides[0].times["floor"])
    results: list[dict[str, Any]] = []
    failed = []
    header = f"{'command':<56} {'now s':>7} {'x floor':>8}"
    if len(sides) > 1:
        header += f" {'before s':>9} {'now/before':>11}"
    print(header + f" {'target':>8}")
    for row in ROWS:
        now = summary(sides[0].times[row.key])
        entry: dict[str, Any] = {"row": row.key, "command": row.label, "now": now, "target_s": row.target_s}
        line = f"{row.label:<56} {now['median_s']:7.2f} {now['median_s'] / floor:8.1f}"
        if len(sides) > 1:
            before = summary(sides[1].times[row.key])
            entry["before"] = before
            entry["ratio_now_before"] = now["median_s"] / before["median_s"]
            line += f" {before['median_s']:9.2f} {entry['ratio_now_before']:11.2f}"
        verdict = ""
        if row.target_s is not None:
            entry["pass"] = now["median_s"] < row.target_s
            verdict = f"{'PASS' if entry['pass'] else 'FAIL'} <{row.target_s:g}"
            if not entry["pass"]:
                failed.append(row.label)
        print(line + f" {verdict:>8}")
        results.append(entry)
    print(
        f"load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end ({os.cpu_count()} CPUs)"
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "cli_cold_start",
                "repeats": args.repeats,
                "baseline_src": str(args.baseline_src) if args.baseline_src else None,
                "rows": results,
                "failed": failed,
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average_start": load_start,
                    "load_average_end": load_end,
                },
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
