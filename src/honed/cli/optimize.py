"""`honed optimize`: diagnose context vs behaviour, climb a ladder of steps, and report what each bought."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from honed.cli.common import (
    JsonOption,
    NoCacheOption,
    console,
    fmt_latency,
    open_honed,
    print_json,
    print_table,
    progress_bars,
)

app = typer.Typer(
    help="The optimisation loop: diagnose the gap, run each step on the same dataset version, see what each "
    "bought.",
    no_args_is_help=True,
)

ReportOption = typer.Option(
    None, "--report", "-o", help="Also write the self-contained HTML report (ladder chart, costs, failures)."
)


@app.command("run")
def run(
    plan: Path = typer.Argument(..., help="Ladder plan (YAML): dataset, evaluators, diagnose and steps."),
    new: bool = typer.Option(False, "--new", help="Start a new run even if an unfinished one exists."),
    report: Path | None = ReportOption,
    until: str | None = typer.Option(
        None, "--until", help="Climb only up to this step (e.g. on an endpoint that cannot fine-tune)."
    ),
    no_cache: bool = NoCacheOption,
    json_out: bool = JsonOption,
) -> None:
    """Run (or resume) the diagnosis and every step of a ladder plan and print its ledger; it is stored.

    Examples:
      honed optimize run ladder.yaml --report ladder.html
      HONED_DEFAULT_MODEL=vllm/llama-3.1-8b honed optimize run ladder.yaml --until rag   # elsewhere
    """
    from honed.optimize import load_plan, run_ladder, up_to

    parsed = load_plan(plan)
    if until is not None:
        parsed = up_to(parsed, until)
    h = open_honed(no_cache=no_cache, require_workspace=True)
    try:
        with progress_bars(disable=json_out) as progress:
            ledger = run_ladder(h, parsed, new=new, progress=progress, notify=_notify(json_out))
    finally:
        h.close()
    body = ledger.to_dict()
    _write_report(body, report)
    _print(body, json_out=json_out)


@app.command("diagnose")
def diagnose(
    plan: Path = typer.Argument(..., help="Ladder plan (YAML) with a `diagnose:` section."),
    new: bool = typer.Option(False, "--new", help="Start a new run even if an unfinished one exists."),
    no_cache: bool = NoCacheOption,
    json_out: bool = JsonOption,
) -> None:
    """Run only the plan's diagnosis: which axis (context or behaviour) holds the prompt back, and what to
    try next, with the measured effects behind it.

    Example: honed optimize diagnose ladder.yaml
    """
    from honed.optimize import diagnose_plan, load_plan

    parsed = load_plan(plan)
    h = open_honed(no_cache=no_cache, require_workspace=True)
    try:
        with progress_bars(disable=json_out) as progress:
            result = diagnose_plan(h, parsed, new=new, progress=progress).to_dict()
    finally:
        h.close()
    if json_out:
        print_json(result)
    else:
        _print_diagnosis(result)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="The plan's name (its `name:`, or its file's stem)."),
    ref: str | None = typer.Option(None, "--version", help="An earlier ledger: vN, a label or a hash."),
    json_out: bool = JsonOption,
) -> None:
    """Print the last stored ledger of a ladder.

    Example: honed optimize show catalogue-ladder --json
    """
    from honed.optimize import stored_ledger

    h = open_honed(require_workspace=True)
    try:
        body = stored_ledger(h, name, ref)
    finally:
        h.close()
    _print(body, json_out=json_out)


@app.command("report")
def report_(
    name: str = typer.Argument(..., help="The plan's name (its `name:`, or its file's stem)."),
    output: Path = typer.Option(..., "--output", "-o", help="The HTML file to write."),
    ref: str | None = typer.Option(None, "--version", help="An earlier ledger: vN, a label or a hash."),
) -> None:
    """Write a stored ladder's self-contained HTML report.

    Example: honed optimize report catalogue-ladder -o ladder.html
    """
    from honed.optimize import stored_ledger

    h = open_honed(require_workspace=True)
    try:
        body = stored_ledger(h, name, ref)
    finally:
        h.close()
    _write_report(body, output)


def _notify(quiet: bool) -> Any:
    def say(message: str) -> None:
        if not quiet:
            console.print(message, markup=False, highlight=False)

    return say


def _write_report(ledger: dict[str, Any], path: Path | None) -> None:
    if path is None:
        return
    from honed.optimize.report import write_ladder_html

    typer.echo(f"report written to {write_ladder_html(ledger, path)}", err=True)


def _print(ledger: dict[str, Any], *, json_out: bool) -> None:
    if json_out:
        print_json(ledger)
        return
    if ledger.get("diagnosis"):
        _print_diagnosis(ledger["diagnosis"])
        console.print()
    primary = ledger["primary"]
    console.print(
        f"ladder {ledger['name']} · dataset {ledger['dataset']}, split {ledger['split'] or 'all'} "
        f"({ledger['n_cases']} cases) · run {ledger['run_id']} ({ledger['run_status']})",
        markup=False,
        highlight=False,
    )
    columns = ["step", *ledger["evaluators"], f"Δ {primary} vs previous", "p", "verdict"]
    columns += ["in tok", "out tok", "latency", "cost/1k"]
    rows = []
    for s in ledger["steps"]:
        delta = (s["vs_previous"] or {}).get(primary)
        rows.append(
            [
                s["id"],
                *(_mean(s["quality"][ev]) for ev in ledger["evaluators"]),
                "" if delta is None else _diff(delta),
                "" if delta is None or delta["p_value"] is None else f"{delta['p_value']:.3g}",
                "(start)" if delta is None else delta["verdict"],
                _num(s["mean_input_tokens"]),
                _num(s["mean_output_tokens"]),
                "-" if s["latency_p50_s"] is None else fmt_latency(s["latency_p50_s"]),
                _cost(s["cost_per_1k_usd"]),
            ]
        )
    print_table(None, columns, rows)
    if any(s.get("failures") for s in ledger["steps"]):
        from honed.optimize.failures import CATEGORIES

        print_table(
            "why results failed (per step)",
            ["step", *CATEGORIES],
            [
                [s["id"], *((s.get("failures") or {}).get(c, "-") for c in CATEGORIES)]
                for s in ledger["steps"]
            ],
        )
    last = ledger["steps"][-1].get("vs_first")
    if last and last.get(primary):
        d = last[primary]
        console.print(
            f"{ledger['steps'][-1]['id']} vs {ledger['steps'][0]['id']} on {primary}: {_diff(d)} "
            f"(p {d['p_value']:.3g}, {d['verdict']})"
            if d["p_value"] is not None
            else f"{ledger['steps'][-1]['id']} vs {ledger['steps'][0]['id']} on {primary}: no paired cases",
            markup=False,
            highlight=False,
        )


def _print_diagnosis(d: dict[str, Any]) -> None:
    console.print(
        f"diagnosis of {d['prompt']} on {d['model']} · {d['n_cases']} cases · run {d['run_id']}: "
        f"axis = {d['axis'].upper()}",
        markup=False,
        highlight=False,
    )
    evaluators = list(d["ablations"][0]["quality"]) if d["ablations"] else []
    print_table(
        None,
        ["ablation", *evaluators],
        [[a["id"], *(_mean(a["quality"][ev]) for ev in evaluators)] for a in d["ablations"]],
    )
    print_table(
        None,
        ["effect", "evaluator", "change", "Δ [95% CI]", "p", "verdict"],
        [
            [
                e["name"],
                e["evaluator"],
                f"{e['variant']} vs {e['against']}",
                _diff(e),
                "-" if e["p_value"] is None else f"{e['p_value']:.3g}",
                e["verdict"],
            ]
            for e in d["effects"]
        ],
    )
    console.print(d["summary"], markup=False, highlight=False)
    for i, r in enumerate(d["recommendation"], 1):
        console.print(f"next {i}: {r['technique']} — {r['why']}", markup=False, highlight=False)


def _mean(q: dict[str, Any]) -> str:
    if q["mean"] is None:
        return "-"
    ci = q["ci"]
    return f"{q['mean']:.3f}" + ("" if ci is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]")


def _diff(d: dict[str, Any]) -> str:
    if d["diff"] is None:
        return "-"
    ci = d["ci"]
    return f"{d['diff']:+.3f}" + ("" if ci is None else f" [{ci[0]:+.3f}, {ci[1]:+.3f}]")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cost(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"
