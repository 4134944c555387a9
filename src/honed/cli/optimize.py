"""`honed optimize`: diagnose context vs behaviour, climb a ladder of steps, and report what each bought."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from honed.cli.common import (
    VERDICT_LEGEND,
    JsonOption,
    NoCacheOption,
    WideOption,
    console,
    fmt_latency,
    open_honed,
    print_json,
    print_table,
    progress_bars,
    verdict_mark,
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
    latency_calls: int | None = typer.Option(
        None,
        "--latency-calls",
        min=0,
        help="Calls per step timed one at a time for its latency (default: the plan's latency_calls, 5; "
        "0: the run's own calls, which share batches).",
    ),
    no_cache: bool = NoCacheOption,
    wide: bool = WideOption,
    json_out: bool = JsonOption,
) -> None:
    """Run (or resume) the diagnosis and every step of a ladder plan and print its ledger; it is stored.

    Examples:
      honed optimize run ladder.yaml --report ladder.html
      HONED_DEFAULT_MODEL=vllm/llama-3.1-8b honed optimize run ladder.yaml --until rag   # elsewhere
    """
    from dataclasses import replace

    from honed.optimize import load_plan, run_ladder, up_to

    parsed = load_plan(plan)
    if until is not None:
        parsed = up_to(parsed, until)
    if latency_calls is not None:
        parsed = replace(parsed, latency_calls=latency_calls)
    h = open_honed(no_cache=no_cache, require_workspace=True)
    try:
        with progress_bars(disable=json_out) as progress:
            ledger = run_ladder(h, parsed, new=new, progress=progress, notify=_notify(json_out))
    finally:
        h.close()
    body = ledger.to_dict()
    _write_report(body, report)
    _print(body, json_out=json_out, wide=wide)


@app.command("prompt")
def prompt(
    spec: Path = typer.Argument(
        ..., help="Search spec (YAML): start prompt, dataset splits, budget, strategies."
    ),
    report: Path | None = typer.Option(
        None, "--report", "-o", help="Also write the self-contained HTML report (dev score per candidate)."
    ),
    no_cache: bool = NoCacheOption,
    json_out: bool = JsonOption,
) -> None:
    """Search few-shot and instruction candidates under a budget, choose on dev, judge start vs chosen on
    test. Every call is cached and every trial is an experiment: after Ctrl-C or a kill, the same command
    continues without repeating a call. A budget too small for the search stops it before any call.

    Examples:
      honed optimize prompt search.yaml --report search.html
      honed optimize prompt search.yaml --json | jq .diff
    """
    from honed.optimize.prompt import load_search, optimize_prompt
    from honed.optimize.prompt.report import write_search_html

    parsed = load_search(spec)
    h = open_honed(no_cache=no_cache, require_workspace=True)
    try:
        with progress_bars(disable=json_out) as progress:
            result = optimize_prompt(h, parsed, progress=progress, notify=_notify(json_out)).to_dict()
    finally:
        h.close()
    if report is not None:
        typer.echo(f"report written to {write_search_html(result, report)}", err=True)
    if json_out:
        print_json(result)
    else:
        _print_search(result)


def _print_search(r: dict[str, Any]) -> None:
    """The candidates, the verdict and the spend, in tables that fit 100 columns."""
    primary = r["primary"]
    splits = ", ".join(f"{k} {v['cases']}" for k, v in r["splits"].items())
    _say(f"prompt search {r['name']} · {r['dataset']} ({splits}) · student {r['student']}")
    chosen = r["best"]["version"]
    print_table(
        f"candidates, in search order: dev {primary} [95% CI]",
        ["#", "version", "change", f"dev {primary}", "prompt tok"],
        [
            [
                ("* " if c["version"] == chosen else "") + str(c["order"]),
                c["version"],
                c["change"],
                _mean(c.get("dev"), 2),
                _num(c.get("prompt_tokens")),
            ]
            for c in r["candidates"]
        ],
        no_wrap={"#", "version", f"dev {primary}"},
        ratios={"change": 3},
    )
    d = r["diff"]
    print_table(
        f"on test ({r['splits']['test']['cases']} cases, never seen by the search): {primary} [95% CI]",
        ["", "version", "test", "dev"],
        [
            ["start", r["start"]["version"], _mean(r["start"]["test"], 2), _mean(r["start"].get("dev"), 2)],
            ["chosen", chosen, _mean(r["best"]["test"], 2), _mean(r["best"].get("dev"), 2)],
        ],
        no_wrap={"version"},
    )
    diff = {"diff": d["mean"], "ci": d["ci"]}
    p = "-" if d["p"] is None else f"{d['p']:.2g}"
    _say(f"chosen vs start on test: {verdict_mark(d['verdict'])} {_diff(diff, 3)} (p {p}, {d['verdict']})")
    print_table(
        "calls, tokens and cost by phase",
        ["phase", "calls", "not cached", "in tok", "out tok", "cost"],
        [
            [k, p_["calls"], p_["fresh"], p_["input_tokens"], p_["output_tokens"], _cost(p_["cost_usd"])]
            for k, p_ in r["phases"].items()
        ],
        no_wrap={"phase"},
    )
    b = r["budget"]
    limits = ", ".join(
        x for x in (f"{b['calls']} calls" if b["calls"] else "", _cost(b["usd"]) if b["usd"] else "") if x
    )
    line = f"budget {limits}: used {b['used_calls']} calls, {_cost(b['used_usd'])}"
    _say(line + (f"; stopped early: {b['stopped']}" if b.get("stopped") else ""))


@app.command("diagnose")
def diagnose(
    plan: Path = typer.Argument(..., help="Ladder plan (YAML) with a `diagnose:` section."),
    new: bool = typer.Option(False, "--new", help="Start a new run even if an unfinished one exists."),
    no_cache: bool = NoCacheOption,
    wide: bool = WideOption,
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
        _print_diagnosis(result, wide=wide)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="The plan's name (its `name:`, or its file's stem)."),
    ref: str | None = typer.Option(None, "--version", help="An earlier ledger: vN, a label or a hash."),
    wide: bool = WideOption,
    json_out: bool = JsonOption,
) -> None:
    """Print the last stored ledger of a ladder.

    Examples:
      honed optimize show catalogue-ladder
      honed optimize show catalogue-ladder --wide | less -S   # every column, one table
    """
    from honed.optimize import stored_ledger

    h = open_honed(require_workspace=True)
    try:
        body = stored_ledger(h, name, ref)
    finally:
        h.close()
    _print(body, json_out=json_out, wide=wide)


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


def _print(ledger: dict[str, Any], *, json_out: bool, wide: bool = False) -> None:
    if json_out:
        print_json(ledger)
        return
    if ledger.get("diagnosis"):
        _print_diagnosis(ledger["diagnosis"], wide=wide)
        console.print()
    primary = ledger["primary"]
    _say(
        f"ladder {ledger['name']} · dataset {ledger['dataset']}, split {ledger['split'] or 'all'} "
        f"({ledger['n_cases']} cases) · run {ledger['run_id']} ({ledger['run_status']})"
    )
    if wide:
        _print_wide(ledger)
    else:
        _print_narrow(ledger)
    if any(s.get("failures") for s in ledger["steps"]):
        from honed.optimize.failures import CATEGORIES

        print_table(
            "why results failed (per step)",
            ["step", *(c.replace("_", " ") for c in CATEGORIES)],
            [
                [s["id"], *((s.get("failures") or {}).get(c, "-") for c in CATEGORIES)]
                for s in ledger["steps"]
            ],
            no_wrap={"step"},
            wide=wide,
        )
    searched = [s for s in ledger["steps"] if s.get("search")]
    if searched:
        print_table(
            f"prompt searches (chosen on dev by {primary}; spend includes the search's own test run)",
            ["step", "start", "chosen", "dev start", "dev chosen", "candidates", "calls", "cost"],
            [_search_row(s["id"], s["search"]) for s in searched],
            no_wrap={"step", "start", "chosen"},
            wide=wide,
        )
    last = ledger["steps"][-1].get("vs_first")
    if last and last.get(primary):
        d = last[primary]
        _say(
            f"{ledger['steps'][-1]['id']} vs {ledger['steps'][0]['id']} on {primary}: {_diff(d)} "
            f"(p {d['p_value']:.3g}, {d['verdict']})"
            if d["p_value"] is not None
            else f"{ledger['steps'][-1]['id']} vs {ledger['steps'][0]['id']} on {primary}: no paired cases"
        )


#: Evaluator columns the narrow ledger shows; --wide shows them all.
_NARROW_EVALUATORS = 4


def _print_narrow(ledger: dict[str, Any]) -> None:
    """The ledger in three tables that fit 100 columns: quality, what each step bought, what a call costs."""
    from honed.optimize.report import latency_note, notional_note

    steps, primary = ledger["steps"], ledger["primary"]
    roles = [primary, ledger.get("correct"), ledger.get("format")]
    ordered = list(dict.fromkeys([e for e in roles if e in ledger["evaluators"]] + ledger["evaluators"]))
    shown, hidden = ordered[:_NARROW_EVALUATORS], ordered[_NARROW_EVALUATORS:]
    print_table(
        "mean [95% CI] per step",
        ["step", *(f"{ev} (primary)" if ev == primary else ev for ev in shown)],
        [[s["id"], *(_mean(s["quality"].get(ev), 2) for ev in shown)] for s in steps],
        no_wrap={"step"},
    )
    if hidden:
        _say(f"{len(hidden)} more evaluator(s): {', '.join(hidden)} (--wide shows them)")
    first = steps[0]["id"]
    rows = []
    for s in steps:
        prev = (s["vs_previous"] or {}).get(primary)
        since = (s["vs_first"] or {}).get(primary)
        rows.append(
            [
                s["id"],
                "(first step)" if prev is None else _marked(prev),
                "" if prev is None else _p(prev),
                "" if since is None else _marked(since),
                "" if since is None else _p(since),
            ]
        )
    print_table(
        f"what each step bought on {primary}: Δ [95% CI]",
        ["step", "vs previous", "p", f"vs {first}", "p"],
        rows,
        no_wrap={"step", "vs previous", f"vs {first}"},
    )
    _say(VERDICT_LEGEND)
    notional = any(s.get("notional_cost_per_1k_usd") is not None for s in steps)
    print_table(
        "per call",
        ["step", "in tok", "out tok", "latency p50", "p95", "cost/1k" + (" (notional)" if notional else "")],
        [
            [
                s["id"],
                _num(s["mean_input_tokens"]),
                _num(s["mean_output_tokens"]),
                _seconds(s.get("latency_p50_s")),
                _seconds(s.get("latency_p95_s")),
                _step_cost(s),
            ]
            for s in steps
        ],
        no_wrap={"step"},
    )
    priced = notional_note(steps)
    _say(latency_note(steps) + (f" Cost at a notional price, never charged: {priced}." if priced else ""))


def _print_wide(ledger: dict[str, Any]) -> None:
    """Every figure of every step in one table, as wide as it takes."""
    steps, primary = ledger["steps"], ledger["primary"]
    first = steps[0]["id"]
    columns = ["step", *ledger["evaluators"], f"Δ {primary} vs previous", "p", "verdict"]
    columns += [f"Δ {primary} vs {first}", "p", "verdict", "calls", "errors", "cached", "in tok", "out tok"]
    columns += ["latency p50", "p95", "latency from", "queued p50", "cost/1k", "notional cost/1k"]
    columns += ["prompt", "model"]
    rows = []
    for s in steps:
        prev = (s["vs_previous"] or {}).get(primary)
        since = (s["vs_first"] or {}).get(primary)
        mode, n = s.get("latency_mode"), s.get("latency_calls")
        rows.append(
            [
                s["id"],
                *(_mean(s["quality"].get(ev)) for ev in ledger["evaluators"]),
                "" if prev is None else _diff(prev),
                "" if prev is None else _p(prev),
                "(first step)" if prev is None else prev["verdict"],
                "" if since is None else _diff(since),
                "" if since is None else _p(since),
                "" if since is None else since["verdict"],
                s["calls"],
                s["errors"],
                s["cached"],
                _num(s["mean_input_tokens"]),
                _num(s["mean_output_tokens"]),
                _seconds(s.get("latency_p50_s")),
                _seconds(s.get("latency_p95_s")),
                f"{n} calls {mode}" if mode and n else (mode or "-"),
                _seconds(s.get("queue_p50_s")),
                _cost(s["cost_per_1k_usd"]),
                "-" if s.get("notional_cost_per_1k_usd") is None else _cost(s["notional_cost_per_1k_usd"]),
                s["prompt"],
                s["model"],
            ]
        )
    print_table(None, columns, rows, wide=True)


def _print_diagnosis(d: dict[str, Any], *, wide: bool = False) -> None:
    _say(
        f"diagnosis of {d['prompt']} on {d['model']} · {d['n_cases']} cases · run {d['run_id']}: "
        f"axis = {d['axis'].upper()}"
    )
    evaluators = list(d["ablations"][0]["quality"]) if d["ablations"] else []
    digits = 3 if wide else 2
    print_table(
        None,
        ["ablation", *evaluators],
        [[a["id"], *(_mean(a["quality"][ev], digits) for ev in evaluators)] for a in d["ablations"]],
        no_wrap={"ablation"},
        wide=wide,
    )
    print_table(
        None,
        ["effect", "evaluator", "change", "Δ [95% CI]", "p", "verdict" if wide else ""],
        [
            [
                e["name"],
                e["evaluator"],
                f"{e['variant']} vs {e['against']}",
                _diff(e, digits),
                _p(e),
                e["verdict"] if wide else verdict_mark(e["verdict"]),
            ]
            for e in d["effects"]
        ],
        no_wrap={"effect", "Δ [95% CI]"},
        wide=wide,
    )
    if not wide:
        _say(VERDICT_LEGEND)
    _say(d["summary"])
    for i, r in enumerate(d["recommendation"], 1):
        _say(f"next {i}: {r['technique']} — {r['why']}")


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False)


def _marked(d: dict[str, Any]) -> str:
    """A verdict mark and the difference with its CI: `▲ +0.63 [+0.40, +0.87]`."""
    return f"{verdict_mark(d['verdict'])} {_diff(d, 2)}"


def _p(d: dict[str, Any]) -> str:
    return "-" if d.get("p_value") is None else f"{d['p_value']:.2g}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else fmt_latency(value)


def _search_row(step: str, search: dict[str, Any]) -> list[str]:
    budget = search.get("budget") or {}
    calls = str(search["calls"]) + (f" of {budget['calls']}" if budget.get("calls") is not None else "")
    dev = search.get("dev") or {}
    return [
        step,
        search["start"],
        search["chosen"] + ("" if search["chosen"] != search["start"] else " (kept)"),
        _num3(dev.get("start")),
        _num3(dev.get("chosen")),
        str(search["candidates"]),
        calls,
        _cost(search.get("cost_usd")),
    ]


def _num3(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _step_cost(s: dict[str, Any]) -> str:
    notional = s.get("notional_cost_per_1k_usd")
    return _cost(s["cost_per_1k_usd"]) if notional is None else _cost(notional)


def _mean(q: dict[str, Any] | None, digits: int = 3) -> str:
    if q is None or q["mean"] is None:
        return "-"
    ci = q["ci"]
    return f"{q['mean']:.{digits}f}" + ("" if ci is None else f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]")


def _diff(d: dict[str, Any], digits: int = 3) -> str:
    if d["diff"] is None:
        return "-"
    ci = d["ci"]
    return f"{d['diff']:+.{digits}f}" + ("" if ci is None else f" [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cost(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"
