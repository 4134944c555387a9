"""How long the statistics of a large comparison take: `honed.evals.stats.many` on 10,000 cases x 10 variants.

Target (the issue): summaries of all 10 variants and comparisons of 9 against the baseline, 3 repeats per
case, 10,000 bootstrap resamples and 10,000 random sign assignments, in under 2 s, with the resampling's
memory bounded (~1 GB at most). Scores are continuous in [0, 1] with pass/fail at 0.5, so McNemar, flaky
cases and the per-case improvements and regressions are all computed too. Rows:

- many: the target, all cells valid;
- many (2% errored): 2% of runs NaN, which adds mask columns to the bootstrap product;
- bootstrap only / sign flips only: the two resampling engines alone, for where the time goes.

Each row is warmed up once and timed `--repeats` times (median). Peak memory is traced (tracemalloc sees
numpy's buffers) over one extra call of `many`. It prints a table and writes bench/results/stats.json;
exits non-zero when the target fails.

    .venv/bin/python bench/stats.py [--cases 10000] [--variants 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from honed.evals.stats import ScoreMatrix, many
from honed.evals.stats._resample import bootstrap_means, sign_flip_pvalues

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "stats.json"
TARGET_S = 2.0
MEMORY_TARGET_MB = 1024.0


def make_variants(n_cases: int, n_variants: int, n_repeats: int, error_rate: float) -> dict[str, ScoreMatrix]:
    rng = np.random.default_rng(0)
    difficulty = rng.random(n_cases)
    ids = [f"case-{i:05d}" for i in range(n_cases)]
    out = {}
    for v in range(n_variants):
        scores = np.clip(difficulty[:, None] + 0.005 * v + rng.normal(0, 0.1, (n_cases, n_repeats)), 0, 1)
        scores[rng.random(scores.shape) < error_rate] = np.nan
        out[f"variant-{v}"] = ScoreMatrix.from_array(scores, ids).with_threshold(0.5)
    return out


def timed(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    fn()  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"median_s": statistics.median(walls), "min_s": min(walls), "cpu_s": statistics.median(cpus)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--variants", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="repeats per case in the data")
    parser.add_argument("--n-boot", type=int, default=10_000)
    parser.add_argument("--n-perm", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per row, after one warm-up")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    options = {"n_boot": args.n_boot, "n_perm": args.n_perm, "seed": 0}
    load_start = os.getloadavg()

    clean = make_variants(args.cases, args.variants, args.runs, 0.0)
    errored = make_variants(args.cases, args.variants, args.runs, 0.02)
    means = np.column_stack([m.case_means() for m in clean.values()])
    diffs = means[:, 1:] - means[:, :1]
    columns = np.column_stack([means, diffs])
    rows = {
        "many": timed(lambda: many(clean, "variant-0", **options), args.repeats),
        "many (2% errored)": timed(lambda: many(errored, "variant-0", **options), args.repeats),
        "bootstrap only": timed(
            lambda: bootstrap_means(columns, ~np.isnan(columns), n_boot=args.n_boot, seed=0), args.repeats
        ),
        "sign flips only": timed(
            lambda: sign_flip_pvalues(diffs, ~np.isnan(diffs), n_perm=args.n_perm, seed=0), args.repeats
        ),
    }
    tracemalloc.start()
    result = many(clean, "variant-0", **options)
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    load_end = os.getloadavg()

    print(
        f"{args.cases} cases x {args.variants} variants x {args.runs} repeats, "
        f"n_boot={args.n_boot}, n_perm={args.n_perm}"
    )
    print(f"{'row':<20} {'median s':>9} {'min s':>7} {'cpu s':>7}")
    for name, row in rows.items():
        print(f"{name:<20} {row['median_s']:>9.3f} {row['min_s']:>7.3f} {row['cpu_s']:>7.3f}")
    print(f"peak traced memory of one many() call: {peak_mb:.0f} MB")
    print(f"load average at start / end: {load_start[0]:.2f} / {load_end[0]:.2f}")
    last = result.comparisons[f"variant-{args.variants - 1}"]
    print(f"example: variant-{args.variants - 1} vs variant-0: {last.message}")

    targets = {
        f"many < {TARGET_S} s": rows["many"]["median_s"] < TARGET_S,
        f"peak memory < {MEMORY_TARGET_MB:.0f} MB": peak_mb < MEMORY_TARGET_MB,
    }
    for name, ok in targets.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    report: dict[str, Any] = {
        "benchmark": "stats",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "numpy": np.__version__,
            "load_average_start_end": [load_start[0], load_end[0]],
        },
        "parameters": {
            "cases": args.cases,
            "variants": args.variants,
            "repeats_per_case": args.runs,
            "n_boot": args.n_boot,
            "n_perm": args.n_perm,
            "timed_calls": args.repeats,
            "statistic": "median",
        },
        "results": rows,
        "peak_traced_memory_mb": peak_mb,
        "targets": targets,
        "all_targets_pass": all(targets.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0 if report["all_targets_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
