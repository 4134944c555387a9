"""`honed finetune compare`: the fine-tuned model with its short prompt against the base with the long one.

The command function is registered on the `finetune` group by `honed.cli.finetune`.
"""

from __future__ import annotations

import typer

from honed.cli.common import (
    JsonOption,
    NoCacheOption,
    console,
    err_console,
    fmt_latency,
    open_honed,
    print_json,
    print_table,
    progress_bars,
)
from honed.errors import InvalidInputError
from honed.finetune.compare import (
    FinetuneComparison,
    Side,
    comparison_experiment,
    job_models,
    parse_evaluator,
    parse_price,
    run_comparison,
)


def compare(
    dataset: str = typer.Option(
        ..., "--dataset", "-d", help="Dataset NAME or NAME@vN holding the frozen test cases (pinned on use)."
    ),
    baseline_prompt: str = typer.Option(
        ..., "--baseline-prompt", help="The long prompt the base model runs with (NAME@vN or a YAML file)."
    ),
    candidate_prompt: str | None = typer.Option(
        None, "--candidate-prompt", help="The short prompt of the fine-tuned model (default: the baseline's)."
    ),
    candidate: str | None = typer.Option(None, "--candidate", help="The fine-tuned model reference."),
    job: str | None = typer.Option(
        None, "--job", help="Take the fine-tuned model (and the default base model) from this finished job."
    ),
    baseline: str | None = typer.Option(
        None, "--baseline", help="The base model (default: the base model of --job)."
    ),
    split: str | None = typer.Option(
        None, "--split", help="The split both sides run on (default: test if the dataset has one, else all)."
    ),
    evaluators: list[str] | None = typer.Option(
        None,
        "--evaluator",
        "-e",
        metavar="TYPE|JSON",
        help="Evaluator type or JSON spec, repeatable (default: exact), e.g. -e contains.",
    ),
    prices: list[str] | None = typer.Option(
        None,
        "--price",
        metavar="MODEL=IN,OUT",
        help="MODEL=IN,OUT: USD per million input/output tokens, over the price table.",
    ),
    latency_calls: int = typer.Option(
        10, "--latency-calls", min=0, help="Calls per side timed one at a time for latency (0: skip)."
    ),
    new: bool = typer.Option(False, "--new", help="Start a new run even if an unfinished one exists."),
    no_cache: bool = NoCacheOption,
    json_out: bool = JsonOption,
) -> None:
    """Did the fine-tune help? Quality with CIs and a paired test, tokens, latency and cost per 1,000 calls.

    Example: honed finetune compare --job 7c1e --dataset support@v3 --baseline-prompt support@v1
    --candidate-prompt support-short@v1
    """
    if (candidate is None) == (job is None):
        raise InvalidInputError("give the fine-tuned model as --candidate MODEL or --job ID (one of them)")
    overrides = dict(parse_price(p) for p in prices or [])
    specs = [parse_evaluator(e) for e in evaluators or ["exact"]]
    h = open_honed(no_cache=no_cache, require_workspace=True)
    try:
        base_model = baseline
        if job is not None:
            candidate, job_base = job_models(h, job)
            base_model = base_model or job_base
        if not base_model:
            raise InvalidInputError("no base model to compare against", hint="give --baseline MODEL")
        assert candidate is not None
        exp = comparison_experiment(
            h,
            dataset=dataset,
            candidate_model=candidate,
            baseline_model=base_model,
            baseline_prompt=baseline_prompt,
            candidate_prompt=candidate_prompt,
            split=split,
            evaluators=specs,
        )
        with progress_bars(disable=json_out) as progress:
            result = run_comparison(
                h, exp, prices=overrides, new=new, progress=progress, latency_calls=latency_calls
            )
    finally:
        h.close()
    if json_out:
        print_json(result.to_dict())
        return
    _print(result)


def fmt_cost_per_1k(side: Side) -> str:
    if side.price_source in ("local", "free"):
        return f"$0.00 ({side.price_source})"
    if side.cost_per_1k_usd is None:
        if side.price is None:
            return "unknown (give --price MODEL=IN,OUT)"
        return "-"  # every call failed: nothing to average
    cost = side.cost_per_1k_usd
    shown = f"${cost:,.2f}" if cost >= 1 else f"${cost:.4f}"
    return f"{shown} (notional price)" if side.price_source == "notional" else shown


def _interval(ci: list[float] | None, pct: bool = False) -> str:
    if ci is None:
        return ""
    return f"[{ci[0]:.1%}, {ci[1]:.1%}]" if pct else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _mean(side: dict[str, object]) -> str:
    mean = side["mean"]
    ci = side["ci"]
    if not isinstance(mean, float):
        return "-"
    return f"{mean:.3f} {_interval(ci if isinstance(ci, list) else None)}"


def _print(result: FinetuneComparison) -> None:
    b, c = result.baseline, result.candidate
    console.print(
        f"fine-tune comparison · dataset {result.dataset}, split {result.split or 'all'} "
        f"({result.n_cases} cases) · run {result.run_id}",
        markup=False,
        highlight=False,
    )
    # The sides' models and prompts once, each on a line of its own: a fine-tuned model's name is long
    # and is copied into other commands, so no table column may break it over lines.
    for side in (b, c):
        console.print(
            f"  {side.variant:<9}  {side.model}  with prompt {side.prompt}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    rows = []
    for ev, q in result.quality.items():
        diff = q["diff"]
        rows.append(
            (
                ev,
                _mean(q["baseline"]),
                _mean(q["candidate"]),
                "-" if diff is None else f"{diff:+.3f} {_interval(q['diff_ci'])}",
                "-" if q["p_value"] is None else f"{q['p_value']:.3g}",
                q["cases"],
                q["verdict"],
            )
        )
    print_table(
        "quality: candidate vs baseline, 95% bootstrap CIs",
        ["evaluator", "baseline", "candidate", "difference", "p (perm.)", "cases", "verdict"],
        rows,
    )
    side_rows = []
    for side in (b, c):
        side_rows.append(
            (
                side.variant,
                "-" if side.mean_input_tokens is None else f"{side.mean_input_tokens:.1f}",
                "-" if side.mean_output_tokens is None else f"{side.mean_output_tokens:.1f}",
                "-" if side.latency_p50_s is None else fmt_latency(side.latency_p50_s),
                "-" if side.latency_p95_s is None else fmt_latency(side.latency_p95_s),
                fmt_cost_per_1k(side),
                side.errors,
            )
        )
    timing = (
        f"latency: time in the model of {c.latency_calls} calls made one at a time"
        if c.latency_mode == "one at a time"
        else "latency: time in the model within the batched run (queued time apart)"
    )
    print_table(
        f"per call (tokens are means; {timing}; cost of 1,000 calls at the price per million tokens)",
        ["side", "in tok", "out tok", "p50", "p95", "cost / 1k calls", "errors"],
        side_rows,
    )
    err_console.print(f"[dim]details: honed experiments show {result.run_id}[/dim]")
