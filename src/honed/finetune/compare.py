"""Did the fine-tune help? The fine-tuned model with a short prompt against the base model with the long one.

The comparison is an ordinary experiment (so `honed experiments show RUN` shows it, and an interrupted one
resumes): two variants, `baseline` (the comparison base) and `candidate`, on the same frozen split of one
pinned dataset version, scored by the same evaluators, one sample per case. On top of the run's paired
analysis it reports what the fine-tune is for: tokens per call (the short prompt's saving), latency per
call (p50/p95) and the cost of 1,000 calls at each model's price.

Latency is measured apart from the quality run: that run sends every call at once, so even a call's time
in the model there is its batch's (the local model batches them). A short probe afterwards
(`honed.experiments.latency`) makes `latency_calls` calls per side one at a time, uncached, after one
warm-up call: the time in the model a single user of each side sees.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Required, TypedDict, Unpack, cast

import numpy as np

from honed.datasets import get_dataset
from honed.errors import InvalidInputError
from honed.experiments import Experiment, RunReport, analyse, parse_spec, resolve, run_experiment
from honed.experiments.latency import latency_probe, summarise
from honed.models.prices import FREE_ENDPOINTS

if TYPE_CHECKING:
    from honed.experiments.runner import Progress
    from honed.workspace import Workspace

__all__ = [
    "BASELINE",
    "CANDIDATE",
    "Comparison",
    "FinetuneCompare",
    "FinetuneComparison",
    "RunOptions",
    "Side",
    "compare_finetune",
    "comparison_experiment",
    "job_models",
    "parse_evaluator",
    "parse_price",
    "run_comparison",
]

BASELINE = "baseline"
CANDIDATE = "candidate"
Price = tuple[float, float]


@dataclass(frozen=True)
class Side:
    """One side's cost profile: tokens and latency per call, and the cost of 1,000 such calls."""

    variant: str
    model: str
    prompt: str
    calls: int
    errors: int
    cached: int
    mean_input_tokens: float | None
    mean_output_tokens: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_calls: int  # how many calls the latency figures come from
    latency_mode: str  # "one at a time" (the probe) or "batched run" (no probe was made)
    price: Price | None  # USD per million (input, output) tokens; None when unknown
    price_source: str  # "override", "table", "notional", "local" (free: runs here), "free", or "unknown"
    cost_per_1k_usd: float | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["price"] = None if self.price is None else {"input": self.price[0], "output": self.price[1]}
        return out


@dataclass(frozen=True)
class FinetuneComparison:
    """The report of `compare_finetune`; `quality` holds, per evaluator, both sides and their paired
    difference (candidate - baseline) with its bootstrap CI and permutation p."""

    run_id: str
    dataset: str
    split: str | None
    n_cases: int
    baseline: Side
    candidate: Side
    quality: dict[str, dict[str, Any]]
    report: RunReport = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dataset": self.dataset,
            "split": self.split,
            "n_cases": self.n_cases,
            "baseline": self.baseline.to_dict(),
            "candidate": self.candidate.to_dict(),
            "quality": self.quality,
        }


def parse_price(text: str) -> tuple[str, Price]:
    """`MODEL=IN,OUT` (USD per million input and output tokens) as (model, (in, out))."""
    model, sep, rest = text.rpartition("=")
    parts = rest.split(",")
    try:
        if not sep or not model or len(parts) != 2:
            raise ValueError
        price = (float(parts[0]), float(parts[1]))
    except ValueError:
        raise InvalidInputError(
            f"--price {text!r} is not MODEL=IN,OUT",
            hint="give USD per million input and output tokens, e.g. --price openai/ft:gpt-4o-mini=0.3,1.2",
        ) from None
    if min(price) < 0:
        raise InvalidInputError(f"--price {text!r}: prices cannot be negative")
    return model, price


def parse_evaluator(text: str) -> dict[str, Any]:
    """An evaluator spec from the command line: a type name (`exact`) or a JSON object."""
    text = text.strip()
    if not text.startswith("{"):
        return {"type": text}
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"--evaluator {text!r} is not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or "type" not in spec:
        raise InvalidInputError(f"--evaluator {text!r} needs a `type`", hint='e.g. {"type": "contains"}')
    return spec


def job_models(h: Workspace, job_id: str) -> tuple[str, str]:
    """(fine-tuned model, base model) of a finished fine-tuning job."""
    from honed.finetune.jobs import get_job

    job = get_job(h, job_id)
    if not job.model:
        raise InvalidInputError(
            f"fine-tuning job {job_id} has no model yet (status {job.status})",
            hint=f"wait for it to finish: honed finetune wait {job_id}",
        )
    return job.model, job.spec.base_model


class Comparison(TypedDict, total=False):
    """What to compare, the keywords of `comparison_experiment` and `compare_finetune`: the dataset
    (NAME[@REF]), each side's model, the baseline's prompt and the candidate's (default: the baseline's),
    the split, the evaluator specs (default: exact) and the run's name."""

    dataset: Required[str]
    candidate_model: Required[str]
    baseline_model: Required[str]
    baseline_prompt: Required[str]
    candidate_prompt: str | None
    split: str | None
    evaluators: Sequence[Mapping[str, Any]]
    name: str | None


class RunOptions(TypedDict, total=False):
    """How to run a comparison, the keywords of `run_comparison` (and `compare_finetune`): `prices`
    overrides per model (USD per million input, output tokens), `new` starts a new run instead of resuming,
    `progress` is told of the calls, `n_boot` is the bootstrap's resamples (default 10,000) and
    `latency_calls` the probe's calls per side (default 10; 0: no probe)."""

    prices: Mapping[str, Price] | None
    new: bool
    progress: Progress | None
    n_boot: int
    latency_calls: int


class FinetuneCompare(Comparison, RunOptions, total=False):
    """The keywords of `compare_finetune`: what to compare and how to run it."""


def comparison_experiment(h: Workspace, **what: Unpack[Comparison]) -> Experiment:
    """The comparison as a resolved experiment: the dataset pinned, the split (default: `test` when the
    dataset has one, else every case: an eval set kept apart needs no split), prompts and evaluators
    checked, before any call is made."""
    evaluators = what.get("evaluators", ({"type": "exact"},))
    baseline_prompt = what["baseline_prompt"]
    if not evaluators:
        raise InvalidInputError("no evaluators given", hint="e.g. --evaluator exact")
    pinned = get_dataset(h.store, what["dataset"])  # the version as of now: every side sees the same cases
    split = what.get("split")
    if split is None and "test" in pinned.split_counts():
        split = "test"
    spec = parse_spec(
        {
            "name": what.get("name") or f"finetune-compare-{pinned.name}",
            "dataset": pinned.ref,
            "split": split,
            "repeats": 1,
            "variants": [
                {"id": BASELINE, "prompt": baseline_prompt, "model": what["baseline_model"]},
                {
                    "id": CANDIDATE,
                    "prompt": what.get("candidate_prompt") or baseline_prompt,
                    "model": what["candidate_model"],
                },
            ],
            "evaluators": [dict(e) for e in evaluators],
        },
        source="finetune compare",
    )
    return resolve(h, spec)


def run_comparison(h: Workspace, exp: Experiment, **options: Unpack[RunOptions]) -> FinetuneComparison:
    """Run (or resume) a `comparison_experiment` and report quality, tokens, latency and cost per side."""
    prices, latency_calls = options.get("prices"), options.get("latency_calls", 10)
    run = run_experiment(
        h, exp, new=options.get("new", False), progress=options.get("progress"), latency_calls=0
    )
    report = analyse(h.store, run.id, baseline=BASELINE, n_boot=options.get("n_boot", 10_000))
    rows = h.store.runs.results(run.id)
    probe = latency_probe(h, exp, latency_calls, run_id=run.id) if latency_calls > 0 else {}
    sides = {
        v.id: _side(h, v.id, v.model, v.describe()["prompt"], rows, dict(prices or {}), probe.get(v.id))
        for v in exp.variants
    }
    return FinetuneComparison(
        run_id=run.id,
        dataset=exp.dataset.ref,
        split=exp.spec.split,
        n_cases=len(exp.cases),
        baseline=sides[BASELINE],
        candidate=sides[CANDIDATE],
        quality=_quality(report),
        report=report,
    )


def compare_finetune(h: Workspace, **given: Unpack[FinetuneCompare]) -> FinetuneComparison:
    """The fine-tuned model (candidate) against the base (baseline) on one frozen split: see the module.
    Takes the keywords of `comparison_experiment` (`Comparison`) and of `run_comparison` (`RunOptions`)."""
    run_keys = RunOptions.__optional_keys__
    what = cast(Comparison, {k: v for k, v in given.items() if k not in run_keys})
    options = cast(RunOptions, {k: v for k, v in given.items() if k in run_keys})
    return run_comparison(h, comparison_experiment(h, **what), **options)


def _quality(report: RunReport) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for ev, result in report.stats.items():
        sides = {v: result.summaries[v].brief() for v in (BASELINE, CANDIDATE)}
        # "diff_ci", not "ci": beside the two sides' own CIs, the name says whose interval it is.
        diff = result.comparisons[CANDIDATE].brief(("diff", "diff_ci", "p_value", "cases", "verdict"))
        out[ev] = {**sides, **diff}
    return out


def _side(
    h: Workspace,
    variant: str,
    model: str,
    prompt: str,
    rows: list[dict[str, Any]],
    prices: dict[str, Price],
    probed: list[float] | None = None,
) -> Side:
    mine = [r for r in rows if r["variant"] == variant]
    answered = [r for r in mine if r["output"] is not None]  # calls that returned text cost tokens
    price, source = _price(h, model, prices)
    mean_in = float(np.mean([r["input_tokens"] for r in answered])) if answered else None
    mean_out = float(np.mean([r["output_tokens"] for r in answered])) if answered else None
    # Without a probe: a cached row keeps the latency of the call that produced it, still a per-call latency.
    measured = probed if probed else [r["latency_s"] for r in answered]
    found = summarise(measured)
    p50, p95 = (found.p50_s, found.p95_s) if found is not None else (None, None)
    cost = None
    if price is not None and mean_in is not None and mean_out is not None:
        cost = (mean_in * price[0] + mean_out * price[1]) / 1_000_000 * 1000
    return Side(
        variant=variant,
        model=model,
        prompt=prompt,
        calls=len(mine),
        errors=sum(1 for r in mine if r["error"] is not None),
        cached=sum(1 for r in answered if r["cached"]),
        mean_input_tokens=mean_in,
        mean_output_tokens=mean_out,
        latency_p50_s=p50,
        latency_p95_s=p95,
        latency_calls=len(measured),
        latency_mode="one at a time" if probed else "batched run",
        price=price,
        price_source=source,
        cost_per_1k_usd=cost,
    )


def _price(h: Workspace, model: str, overrides: dict[str, Price]) -> tuple[Price | None, str]:
    if model in overrides:
        return overrides[model], "override"
    found = h.client.prices.price(model)
    endpoint = model.partition("/")[0]
    notional = h.client.prices.notional(model)
    if notional is not None and found in (None, (0.0, 0.0)):
        return notional, "notional"  # `notional = true` in honed.toml: shown, never charged
    if found is None:
        return None, "unknown"
    if endpoint in FREE_ENDPOINTS and found == (0.0, 0.0):
        return found, "local" if endpoint == "local" else "free"
    return found, "table"
