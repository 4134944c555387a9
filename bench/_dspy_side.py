"""DSPy's side of bench/optimize_vs_dspy.py: compile one optimiser, run the result on test, print JSON.

Runs in its own virtual environment (bench/.venv-dspy, dspy pinned there), never in the project's. The
program is the plainest faithful port of the example's prompt: `dspy.Predict` of a signature
question -> answer whose instructions are the start prompt's system message, the default ChatAdapter (its
JSON-adapter fallback off, so each prediction is one call), the student model over the OpenAI-compatible
base URL the bench gives, at temperature 0. The metric is the example's primary evaluator, `json_valid`
(the whole output parses as JSON), applied to the program's output (its `answer` field); the bench checks
the test outputs again with honed's own evaluator. DSPy's response cache is memory-only, so the process
starts with an empty one, as honed's side starts with a fresh workspace.

Budgets, counted at the gateway (requests that reach the server):
- `bfsrs`: BootstrapFewShotWithRandomSearch (3 bootstrapped, 3 labelled demos at most), run seed by seed
  in its own order (-3 zero-shot, -2 labels only, -1 unshuffled, then random seeds) through its own
  `restrict`, keeping the first best as it does; before each seed the gateway's count is checked and the
  search stops when the seed's worst case (the whole train split bootstrapped and dev evaluated) would
  overrun the budget.
- `gepa`: dspy.GEPA (the student as its reflection LM, with 300 tokens, as honed's proposer), with
  a stopper that ends it when a further iteration with a full dev evaluation might overrun the budget
  (max_metric_calls, which counts evaluations DSPy's cache answers too, is set far above it).

    bench/.venv-dspy/bin/python bench/_dspy_side.py --optimizer bfsrs --data splits.json --base-url URL ...
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm fetches prices from GitHub otherwise

import dspy

HERE = Path(__file__).resolve().parent
INSTRUCTIONS = 'Answer the question. Reply with only a JSON object of the form {"answer": "..."}.'


def _checks() -> Any:
    spec = importlib.util.spec_from_file_location(
        "checks", HERE.parent / "examples" / "optimize" / "checks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


answer_correct = _checks().answer_correct


class QA(dspy.Signature):
    """Answer the question. Reply with only a JSON object of the form {"answer": "..."}."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField()


def json_valid(output: str | None) -> tuple[bool, str]:
    """honed's `json_valid` (honed.evals.evaluators.structured.JsonValid, no fence): the whole output."""
    if output is None:
        return False, "no output (the program failed)"
    try:
        value = json.loads(output)
    except json.JSONDecodeError as exc:
        return False, f"output is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    return True, f"output is valid JSON ({type(value).__name__})"


def metric(
    gold: dspy.Example,
    pred: dspy.Prediction,
    trace: Any = None,
    pred_name: str | None = None,
    pred_trace: Any = None,
) -> Any:
    """The primary check; with GEPA's `pred_name` also its reason as feedback (as honed's GEPA gets)."""
    ok, why = json_valid(pred.get("answer"))
    if pred_name is not None:
        return dspy.Prediction(score=float(ok), feedback=why)
    return float(ok)


class Gateway:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def phase(self, name: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/_phase", data=json.dumps({"phase": name}).encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=10).read()

    def requests(self, name: str) -> int:
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as r:
            stats = json.loads(r.read())
        return int(stats["phases"].get(name, {}).get("requests", 0))


def examples(cases: list[dict[str, Any]]) -> list[dspy.Example]:
    # A labelled demonstration's reply is honed's `target`, '{"answer": "{{ reference[0] }}"}'.
    return [
        dspy.Example(
            id=c["id"],
            question=c["question"],
            reference=c["reference"],
            answer=f'{{"answer": "{c["reference"][0]}"}}',
        ).with_inputs("question")
        for c in cases
    ]


def compile_bfsrs(
    train: list[dspy.Example], dev: list[dspy.Example], budget: int, threads: int, gw: Gateway, phase: str
) -> tuple[dspy.Module, dict[str, Any]]:
    best, best_score, seeds = None, None, []
    seed = -3
    while seed < 1000:
        used = gw.requests(phase)
        worst = len(dev) + (0 if seed < -1 else len(train))
        if used + worst > budget:
            break
        optimizer = dspy.BootstrapFewShotWithRandomSearch(
            metric=metric,
            max_bootstrapped_demos=3,
            max_labeled_demos=3,
            num_candidate_programs=max(seed + 1, 1),
            num_threads=threads,
            max_errors=10**6,
        )
        program = optimizer.compile(dspy.Predict(QA), trainset=train, valset=dev, restrict=[seed])
        score = float(program.candidate_programs[0]["score"])
        seeds.append({"seed": seed, "dev": score, "calls_after": gw.requests(phase)})
        if best_score is None or score > best_score:  # BFSRS keeps the first of equal scores
            best, best_score = program, score
        seed += 1
    assert best is not None, "the budget cannot pay for one candidate"
    return best, {"seeds": seeds, "dev_best": best_score}


class GatewayStopper:
    """Stop GEPA when one more iteration (two minibatches, a reflection, a full dev evaluation, a
    merge's subsample) might overrun the budget."""

    def __init__(self, gw: Gateway, phase: str, budget: int, room: int) -> None:
        self.gw, self.phase, self.budget, self.room = gw, phase, budget, room

    def __call__(self, gepa_state: Any) -> bool:
        return self.gw.requests(self.phase) + self.room > self.budget


def compile_gepa(
    train: list[dspy.Example],
    dev: list[dspy.Example],
    budget: int,
    threads: int,
    gw: Gateway,
    phase: str,
    reflection_lm: dspy.LM,
) -> tuple[dspy.Module, dict[str, Any]]:
    room = len(dev) + 2 * 3 + 1 + 5
    optimizer = dspy.GEPA(
        metric=metric,
        # GEPA counts metric calls, cached ones too; the server's count (the stopper) is the real cap.
        max_metric_calls=10 * budget,
        reflection_lm=reflection_lm,
        reflection_minibatch_size=3,
        num_threads=threads,
        seed=0,
        track_stats=True,
        gepa_kwargs={"stop_callbacks": [GatewayStopper(gw, phase, budget, room)]},
    )
    program = optimizer.compile(dspy.Predict(QA), trainset=train, valset=dev)
    details = getattr(program, "detailed_results", None)
    info: dict[str, Any] = {}
    if details is not None:
        info = {
            "candidates": len(details.candidates),
            "dev_best": float(max(details.val_aggregate_scores)),
            "metric_calls": details.total_metric_calls,
        }
    return program, info


def evaluate(program: dspy.Module, test: list[dspy.Example], threads: int) -> list[dict[str, Any]]:
    from concurrent.futures import ThreadPoolExecutor

    def one(example: dspy.Example) -> dict[str, Any]:
        try:
            answer, error = program(question=example.question).get("answer"), None
        except Exception as exc:  # a reply the adapter cannot parse: the program has no output
            answer, error = None, f"{type(exc).__name__}: {str(exc)[:200]}"
        ok, why = json_valid(answer)
        correct = answer_correct(answer, example.reference)[0] if answer is not None else False
        return {
            "id": example.id,
            "answer": answer,
            "error": error,
            "valid_json": ok,
            "reason": why,
            "correct": correct,
        }

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, test))


def describe(program: dspy.Module) -> dict[str, Any]:
    [(_, predictor)] = program.named_predictors()
    return {"instructions": predictor.signature.instructions, "demos": len(predictor.demos)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--optimizer", choices=["bfsrs", "gepa"], required=True)
    parser.add_argument("--data", type=Path, required=True, help="the splits: {train, dev, test: [case]}")
    parser.add_argument("--base-url", required=True, help="the OpenAI-compatible base URL (the gateway)")
    parser.add_argument("--gateway", required=True, help="the gateway's control URL")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--budget", type=int, required=True, help="calls for compiling")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=40)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)
    lm = dspy.LM(
        f"openai/{args.model}",
        api_base=args.base_url,
        api_key="none",
        temperature=0.0,
        max_tokens=args.max_tokens,
        num_retries=0,
    )
    # The reflection LM is the student too, with room to write instructions: honed's proposer's 300 tokens.
    reflection_lm = lm.copy(max_tokens=300)
    dspy.configure(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False), max_errors=10**6)
    data = json.loads(args.data.read_text(encoding="utf-8"))
    train, dev, test = (examples(data[s]) for s in ("train", "dev", "test"))
    gw = Gateway(args.gateway)
    compile_phase, test_phase = f"dspy-{args.optimizer}:compile", f"dspy-{args.optimizer}:test"

    gw.phase(compile_phase)
    t0 = time.perf_counter()
    if args.optimizer == "bfsrs":
        program, info = compile_bfsrs(train, dev, args.budget, args.threads, gw, compile_phase)
    else:
        program, info = compile_gepa(train, dev, args.budget, args.threads, gw, compile_phase, reflection_lm)
    compile_s = time.perf_counter() - t0
    gw.phase(test_phase)
    t0 = time.perf_counter()
    rows = evaluate(program, test, args.threads)
    test_s = time.perf_counter() - t0
    gw.phase("none")
    out = {
        "optimizer": args.optimizer,
        "dspy": dspy.__version__,
        "compile_s": compile_s,
        "test_s": test_s,
        "program": describe(program),
        "search": info,
        "test": rows,
    }
    args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
