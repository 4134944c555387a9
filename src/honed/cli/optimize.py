"""`honed optimize`: climb a ladder of prompt, model and fine-tune steps and keep a ledger of each step."""

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
    help="The optimisation ladder: run each step on the same dataset version and see what each bought.",
    no_args_is_help=True,
)


@app.command("run")
def run(
    plan: Path = typer.Argument(..., help="Ladder plan (YAML): dataset, evaluators and steps."),
    new: bool = typer.Option(False, "--new", help="Start a new run even if an unfinished one exists."),
    no_cache: bool = NoCacheOption,
    json_out: bool = JsonOption,
) -> None:
    """Run (or resume) every step of a ladder plan and print its ledger; the ledger is stored too.

    Example: honed optimize run ladder.yaml
    """
    from honed.optimize import load_plan, run_ladder

    parsed = load_plan(plan)
    h = open_honed(no_cache=no_cache, require_workspace=True)
    try:
        with progress_bars(disable=json_out) as progress:
            ledger = run_ladder(h, parsed, new=new, progress=progress)
    finally:
        h.close()
    _print(ledger.to_dict(), json_out=json_out)


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


def _print(ledger: dict[str, Any], *, json_out: bool) -> None:
    if json_out:
        print_json(ledger)
        return
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
