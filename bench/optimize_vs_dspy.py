"""honed's prompt search against DSPy's optimisers: same task, student, splits, server and call budget.

The task is examples/optimize's: NQ-open questions answered as one JSON object, scored by the search's
primary evaluator `valid_json` (the whole output parses as JSON; `correct`, the example's gold-answer
check, is reported beside it). The splits are the example's hashed ones (~36 train, ~40 dev, ~80 test).

- honed: `optimize_prompt` of examples/optimize/search.yaml (few-shot candidates, then GEPA's reflective
  instructions; chosen on dev, start vs chosen judged on test), in this process, in a fresh workspace whose
  student is an OpenAI-compatible endpoint at the gateway below, with the whole budget (its test verdict
  included).
- DSPy (bench/_dspy_side.py, in its own virtual environment bench/.venv-dspy with dspy 3.4.1, created on
  first use): `dspy.Predict` of question -> answer with the start prompt's instructions, compiled by
  BootstrapFewShotWithRandomSearch and by dspy.GEPA on train (demonstrations, reflection) and dev
  (selection), each with the budget less one pass over test, then run on test.

Every model call of both goes through one counting gateway (bench/_gateway.py): requests that reach the
server are counted per phase, and distinct request bodies beside them. Each side starts with an empty
response cache (honed a fresh workspace, DSPy a memory-only cache in a new process), so a request it
repeats is answered by its own cache and never reaches the server; "calls" are the requests the server
got. Behind the gateway is either (a) `honed serve` with the local model (SmolLM2-135M-Instruct), or (b) a
deterministic stub model whose replies follow the format more often with demonstrations and with better
instructions (see `_gateway.stub_reply`), so that optimisation has something to find.

Per optimiser: test `valid_json` with a bootstrap CI, calls, wall time; honed's own verdict (start vs
chosen on test, which DSPy does not give); and honed vs each DSPy program paired on the same test cases
(honed.evals.stats.compare: bootstrap CI of the difference, sign-flip permutation p). Target, per DSPy
optimiser and server: honed's test score not significantly below DSPy's, at no more calls. Prints the
tables, writes bench/results/optimize_vs_dspy.json and exits non-zero when a target fails.

    .venv/bin/python bench/optimize_vs_dspy.py --quick         # the stub only, budget 400 (~1-2 min)
    .venv/bin/python bench/optimize_vs_dspy.py                 # the stub, then the local model, budget 600
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from honed.api import connect
from honed.config import init_workspace
from honed.datasets import get_dataset
from honed.evals.evaluators.base import EvalInput
from honed.evals.evaluators.registry import build_evaluator
from honed.evals.stats import ScoreMatrix, compare, summary
from honed.optimize.prompt import load_search, optimize_prompt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "optimize"
RESULTS = HERE / "results" / "optimize_vs_dspy.json"
DSPY_VENV = HERE / ".venv-dspy"
DSPY_PIN = "dspy==3.4.1"
BIN = Path(sys.executable).parent
MODEL = "smollm2-135m-instruct"
OPTIMISERS = ("bfsrs", "gepa")
SPLITS = "train=0.01,dev=0.011,test=0.022,rest=0.957"
NAMES = {
    "honed": "honed optimize prompt",
    "bfsrs": "DSPy BootstrapFewShotWithRandomSearch",
    "gepa": "DSPy GEPA",
}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- processes: the gateway, honed serve, the DSPy environment -----------------------------------------


class Gateway:
    """bench/_gateway.py in a child process: a stub model, or a counting proxy to `upstream`."""

    def __init__(self, upstream: str | None, delay_s: float) -> None:
        argv = [sys.executable, str(HERE / "_gateway.py"), f"--delay-s={delay_s}"]
        if upstream:
            argv.append(f"--upstream={upstream}")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise SystemExit(f"the gateway did not start (said {line!r})")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.base_url = f"{self.url}/v1"

    def phase(self, name: str) -> None:
        body = json.dumps({"phase": name}).encode()
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/_phase", data=body), timeout=10).read()

    def stats(self) -> dict[str, dict[str, int]]:
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as r:
            return dict(json.loads(r.read())["phases"])

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def honed_serve(folder: Path, env: dict[str, str]) -> Iterator[str]:
    """`honed serve` with the local model, loaded, in a workspace of its own; yields its base URL."""
    from tests.support.stub_openai import free_port

    init_workspace(folder)
    port = free_port()
    log = (folder / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "honed"), "serve", "--port", str(port)], cwd=folder, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"honed serve exited: {(folder / 'serve.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("honed serve did not answer within 300 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def dspy_python() -> Path:
    """The DSPy environment's interpreter, the environment created (dspy pinned) when missing."""
    python = DSPY_VENV / "bin" / "python"
    if not python.exists():
        say(f"creating {DSPY_VENV} with {DSPY_PIN} (once)")
        subprocess.run([sys.executable, "-m", "venv", str(DSPY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", DSPY_PIN], check=True)
    return python


# -- the honed side --------------------------------------------------------------------------------


def workspace(folder: Path, base_url: str, args: argparse.Namespace, env: dict[str, str]) -> Path:
    """A fresh workspace like the example's: its prompt pushed, the NQ-open splits imported, the search
    spec with the bench endpoint as student and the budget. Returns the spec's path."""
    init_workspace(folder)
    for name in ("checks.py", "prompts"):
        src = EXAMPLE / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, folder / name)
    (folder / "honed.toml").write_text(
        f'default_model = "bench/{MODEL}"\ncache = true\n'
        f'[endpoints.bench]\nprovider = "openai"\nbase_url = "{base_url}"\n'
        # A slow local batch must not time out into a retry (litellm, under DSPy, waits far longer).
        f"max_concurrency = {args.threads}\ntimeout_s = 600\n",
        encoding="utf-8",
    )
    spec = yaml.safe_load((EXAMPLE / "search.yaml").read_text(encoding="utf-8"))
    spec["student"] = f"bench/{MODEL}"
    spec["budget"] = {"calls": args.budget}
    (folder / "search.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    honed = str(BIN / "honed")

    def run(*argv: str) -> None:
        subprocess.run([honed, *argv], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)

    run("prompts", "push", "prompts/qa-start.yaml", "--note", "instructions only")
    # The example's splits (run.sh) by default: ~36 train, ~40 dev, ~80 test questions of the real file.
    run(
        *("datasets", "import", "nq-search", str(args.data / "nq_open" / "NQ-open.dev.jsonl")),
        *("--input", "question", "--reference", "answer", "--seed", "0"),
        *("--split-ratios", args.split_ratios),
    )
    return folder / "search.yaml"


def export_splits(folder: Path, out: Path) -> dict[str, int]:
    with connect(folder) as h:
        dataset = get_dataset(h.store, "nq-search@latest")
        splits = {
            s: [
                {"id": c.id, "question": c.inputs["question"], "reference": list(c.reference)}
                for c in sorted(dataset.split(s), key=lambda c: c.id)
            ]
            for s in ("train", "dev", "test")
        }
    out.write_text(json.dumps(splits), encoding="utf-8")
    return {s: len(v) for s, v in splits.items()}


def run_honed(folder: Path, spec_path: Path, gw: Gateway) -> dict[str, Any]:
    spec = load_search(spec_path)
    with connect(folder) as h:
        gw.phase("honed")
        t0 = time.perf_counter()
        result = optimize_prompt(h, spec, notify=lambda m: say(f"  honed: {m}"))
        wall = time.perf_counter() - t0
        gw.phase("none")
        per_case: dict[str, dict[str, Any]] = {}
        for s in h.store.runs.scores(result.test_run):
            if s["variant"] == "chosen" and s["sample_index"] == 0:
                value = None if s["value"] is None or s.get("error") else float(s["value"])
                per_case.setdefault(s["case_id"], {})[s["evaluator"]] = value
    r = result.to_dict()
    return {
        "wall_s": wall,
        "ledger_calls": r["calls"],
        "phases": r["phases"],
        "start": r["start"],
        "chosen": {k: r["best"][k] for k in ("version", "change", "dev", "test")},
        "verdict": r["diff"],
        "stopped": r["budget"]["stopped"],
        "candidates": len(r["candidates"]),
        "test": per_case,
    }


# -- the DSPy side ---------------------------------------------------------------------------------


def run_dspy(
    optimiser: str, splits: Path, gw: Gateway, budget: int, threads: int, max_tokens: int, out: Path
) -> dict[str, Any]:
    argv = [str(dspy_python()), str(HERE / "_dspy_side.py"), "--optimizer", optimiser]
    argv += ["--data", str(splits), "--base-url", gw.base_url, "--gateway", gw.url, "--model", MODEL]
    argv += ["--budget", str(budget), "--threads", str(threads), "--max-tokens", str(max_tokens)]
    argv += ["--out", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HONED_", "OPENAI_"))}
    env["DSPY_CACHEDIR"] = str(out.parent / f"dspy-cache-{optimiser}")  # never the user's ~/.dspy_cache
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    process_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"DSPy ({optimiser}) failed:\n{proc.stderr[-4000:]}")
    body: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    body["process_s"] = process_s
    # The same outputs scored by honed's own evaluator: the numbers compared are honed's.
    evaluator = build_evaluator({"type": "json_valid", "name": "valid_json"})
    for row in body["test"]:
        ok = row["answer"] is not None and bool(evaluator(EvalInput(output=row["answer"])).value)
        row["honed_valid_json"] = ok
    body["metric_disagreements"] = sum(r["honed_valid_json"] != r["valid_json"] for r in body["test"])
    return body


# -- one server: both sides, the statistics, the targets -----------------------------------------------


def matrix(scores: dict[str, float | None]) -> ScoreMatrix:
    ids = sorted(scores)
    values = np.array([np.nan if scores[i] is None else scores[i] for i in ids], dtype=np.float64)
    return ScoreMatrix(values[:, None], tuple(ids))


def interval(ci: Any) -> list[float] | None:
    return None if ci is None else [round(ci.low, 4), round(ci.high, 4)]


def measure(
    target: str, upstream: str | None, args: argparse.Namespace, env: dict[str, str], tmp: Path
) -> dict[str, Any]:
    budget = args.budget
    gw = Gateway(upstream, args.stub_delay_s)
    try:
        if upstream is not None:  # one call to warm the model up, counted apart
            gw.phase("warm-up")
            body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
            request = urllib.request.Request(
                f"{gw.base_url}/chat/completions", data=json.dumps(body).encode()
            )
            request.add_header("Content-Type", "application/json")
            urllib.request.urlopen(request, timeout=300).read()
        folder = tmp / f"{target}-honed"
        spec = workspace(folder, gw.base_url, args, env)
        splits_file = tmp / f"{target}-splits.json"
        sizes = export_splits(folder, splits_file)
        say(f"[{target}] splits {sizes}; budget {budget} calls; honed ...")
        honed = run_honed(folder, spec, gw)
        partial = args.out.with_suffix(".partial.json")  # what a run stopped half-way leaves
        done: dict[str, Any] = {"server": target, "splits": sizes, "budget": budget, "honed": honed}
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(done, indent=1, default=str), encoding="utf-8")
        t = honed["chosen"]["test"]
        say(f"[{target}] honed: test {t['mean']:.3f}, {gw.stats().get('honed', {})}, {honed['wall_s']:.0f} s")
        dspy_runs = {}
        for name in args.optimisers:
            say(f"[{target}] DSPy {name} (compile budget {budget - sizes['test']}) ...")
            dspy_runs[name] = run_dspy(
                name,
                splits_file,
                gw,
                budget - sizes["test"],
                args.threads,
                args.dspy_max_tokens,
                tmp / f"{target}-{name}.json",
            )
            d = dspy_runs[name]
            done[name] = d
            partial.write_text(json.dumps(done, indent=1, default=str), encoding="utf-8")
            valid = sum(r["honed_valid_json"] for r in d["test"]) / len(d["test"])
            say(
                f"[{target}] DSPy {name}: test {valid:.3f}, "
                f"{d['compile_s'] + d['test_s']:.0f} s, {gw.stats()}"
            )
        counts = gw.stats()
    finally:
        gw.stop()

    test_ids = sorted(honed["test"])
    rows: dict[str, dict[str, Any]] = {}
    scores: dict[str, dict[str, float | None]] = {}
    scores["honed"] = {i: honed["test"][i].get("valid_json") for i in test_ids}
    correct = {"honed": [honed["test"][i].get("correct") for i in test_ids]}
    rows["honed"] = {
        "calls": counts.get("honed", {}).get("requests", 0),
        "distinct": counts.get("honed", {}).get("distinct", 0),
        "ledger_calls": honed["ledger_calls"],
        "calls_test": honed["phases"].get("test", {}).get("calls"),
        "wall_s": round(honed["wall_s"], 2),
        "program": f"{honed['chosen']['version']}: {honed['chosen']['change']}",
    }
    for name, d in dspy_runs.items():
        by_id = {r["id"]: r for r in d["test"]}
        scores[name] = {i: float(by_id[i]["honed_valid_json"]) for i in test_ids}
        correct[name] = [float(by_id[i]["correct"]) for i in test_ids]
        c, t = counts.get(f"dspy-{name}:compile", {}), counts.get(f"dspy-{name}:test", {})
        rows[name] = {
            "calls": c.get("requests", 0) + t.get("requests", 0),
            "distinct": c.get("distinct", 0) + t.get("distinct", 0),
            "calls_compile": c.get("requests", 0),
            "calls_test": t.get("requests", 0),
            "wall_s": round(d["compile_s"] + d["test_s"], 2),
            "compile_s": round(d["compile_s"], 2),
            "test_s": round(d["test_s"], 2),
            "program": f"{d['program']['demos']} demos; instructions {d['program']['instructions']!r}",
            "search": d["search"],
            "adapter_failures": sum(r["error"] is not None for r in d["test"]),
            "metric_disagreements": d["metric_disagreements"],
        }
    for name in rows:
        s = summary(matrix(scores[name]), n_boot=args.n_boot, seed=0)
        cs = summary(np.array(correct[name], dtype=np.float64), n_boot=args.n_boot, seed=0)
        rows[name].update(
            test_mean=s.mean,
            test_ci=interval(s.ci),
            test_n=s.n_scored,
            correct_mean=cs.mean,
            correct_ci=interval(cs.ci),
        )
    comparisons, targets = {}, {}
    for name in dspy_runs:
        cmp = compare(
            matrix(scores[name]), matrix(scores["honed"]), n_boot=args.n_boot, n_perm=args.n_boot, seed=0
        )
        comparisons[name] = {
            "honed_minus_dspy": cmp.mean_diff,
            "ci": interval(cmp.ci),
            "p": cmp.p_value,
            "verdict": cmp.verdict,
            "n": cmp.n_used,
        }
        not_below = cmp.verdict != "worse"
        fewer = rows["honed"]["calls"] <= rows[name]["calls"]
        targets[f"{target}: honed not significantly below {NAMES[name]}, at no more calls"] = (
            not_below and fewer
        )
    return {
        "server": target,
        "splits": sizes,
        "budget": budget,
        "rows": rows,
        "honed_verdict": honed["verdict"],
        "honed_start_test": honed["start"]["test"],
        "honed_stopped": honed["stopped"],
        "comparisons": comparisons,
        "gateway": counts,
        "targets": targets,
    }


def report(r: dict[str, Any]) -> None:
    s = r["splits"]
    print(
        f"\n{r['server']}: NQ-open, train {s['train']} / dev {s['dev']} / test {s['test']}, "
        f"budget {r['budget']} calls, primary valid_json"
    )
    header = f"{'optimiser':<40} {'test valid_json [95% CI]':>26} {'correct':>8} {'calls':>6} {'wall s':>8}"
    print(header)
    print("-" * len(header))
    for name, row in r["rows"].items():
        ci = row["test_ci"] or [float("nan"), float("nan")]
        mean = float("nan") if row["test_mean"] is None else row["test_mean"]
        print(
            f"{NAMES[name]:<40} {mean:>8.3f} [{ci[0]:.3f}, {ci[1]:.3f}]    "
            f"{row['correct_mean']:>8.3f} {row['calls']:>6} {row['wall_s']:>8.1f}"
        )
    for name, row in r["rows"].items():
        extra = (
            f"{row['calls_test']} of them the start and chosen on test (ledger {row['ledger_calls']})"
            if name == "honed"
            else f"compile {row['calls_compile']} + test {row['calls_test']}; "
            f"{row['adapter_failures']} test replies DSPy's adapter could not parse"
        )
        print(f"  {name}: {row['program'][:110]}\n    calls: {extra}")
    v = r["honed_verdict"]
    start = r["honed_start_test"]["mean"]
    ci = v["ci"] or [float("nan"), float("nan")]
    print(
        f"honed's verdict (chosen vs start on test, n={v['cases']}): start {start:.3f}, "
        f"diff {v['mean']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}], p {v['p']:.3g}: {v['verdict']}"
    )
    for name, c in r["comparisons"].items():
        ci = c["ci"] or [float("nan"), float("nan")]
        ratio = r["rows"]["honed"]["calls"] / max(1, r["rows"][name]["calls"])
        print(
            f"honed - {NAMES[name]} on the same {c['n']} test cases: {c['honed_minus_dspy']:+.3f} "
            f"[{ci[0]:+.3f}, {ci[1]:+.3f}], p {c['p']:.3g}: honed {c['verdict']}; calls ratio {ratio:.2f}"
        )
    for name, ok in r["targets"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the stub only, budget 400")
    parser.add_argument("--servers", default=None, help="stub,local (default both; --quick: stub)")
    parser.add_argument("--budget", type=int, default=None, help="calls per optimiser (600; --quick 400)")
    parser.add_argument("--optimisers", default=",".join(OPTIMISERS), help="DSPy's: bfsrs,gepa")
    parser.add_argument("--threads", type=int, default=8, help="concurrent calls, both sides")
    parser.add_argument("--dspy-max-tokens", type=int, default=40, help="24 + room for DSPy's field markers")
    parser.add_argument("--stub-delay-s", type=float, default=0.02)
    parser.add_argument(
        "--split-ratios",
        default=SPLITS,
        help=f"the dataset import's (default the example's, {SPLITS}); smaller splits, shorter runs",
    )
    parser.add_argument("--n-boot", type=int, default=10_000)
    parser.add_argument("--data", type=Path, default=None, help="default: HONED_DATA_DIR or ../shared/data")
    parser.add_argument("--keep", type=Path, default=None, help="keep the workspaces in this folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.budget = args.budget or (400 if args.quick else 600)
    args.optimisers = [o for o in args.optimisers.split(",") if o]
    servers = (args.servers or ("stub" if args.quick else "stub,local")).split(",")
    args.data = (
        args.data or Path(os.environ.get("HONED_DATA_DIR", ROOT.parent / "shared" / "data"))
    ).resolve()
    if not (args.data / "nq_open" / "NQ-open.dev.jsonl").exists():
        raise SystemExit(f"no NQ-open data in {args.data}: set HONED_DATA_DIR or --data")
    # Both sides configured here only: no HONED_* setting of the caller's leaks into the workspaces.
    for k in [k for k in os.environ if k.startswith("HONED_")]:
        del os.environ[k]
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env = dict(os.environ)
    dspy_python()
    sys.path.insert(0, str(ROOT))  # tests.support.stub_openai.free_port

    load = os.getloadavg()[0]
    results = []
    keep = args.keep.resolve() if args.keep else None
    with tempfile.TemporaryDirectory(prefix="honed-vs-dspy-") as scratch:
        tmp = keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        for server in servers:
            t0 = time.perf_counter()
            if server == "stub":
                r = measure("stub", None, args, env, tmp)
            else:
                with honed_serve(tmp / "serve", env) as upstream:
                    r = measure("local", upstream, args, env, tmp)
            r["elapsed_s"] = round(time.perf_counter() - t0, 1)
            report(r)
            results.append(r)
    targets = {k: v for r in results for k, v in r["targets"].items()}
    body = {
        "benchmark": "optimize_vs_dspy",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_start": round(load, 2),
        },
        "parameters": {
            "budget": args.budget,
            "split_ratios": args.split_ratios,
            "optimisers": args.optimisers,
            "threads": args.threads,
            "dspy": DSPY_PIN,
            "dspy_max_tokens": args.dspy_max_tokens,
            "stub_delay_s": args.stub_delay_s,
            "calls": "requests that reached the server, counted at the gateway; each side's own cache "
            "(fresh at the start) answers its repeats",
        },
        "results": results,
        "targets": targets,
        "all_targets_pass": all(targets.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(body, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0 if body["all_targets_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
