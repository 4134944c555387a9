"""`honed experiments run|resume|list|show|compare|report`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from honed.cli.common import (
    JsonOption,
    NoCacheOption,
    console,
    err_console,
    fmt_cost,
    open_honed,
    print_json,
    print_table,
    progress_bars,
)
from honed.experiments import RunReport, analyse, load_spec, parse_spec, resolve, run_experiment
from honed.experiments.report_html import write_html

app = typer.Typer(
    help="Run a matrix of prompt versions x models x params over a dataset, and compare.",
    no_args_is_help=True,
)

BaselineOption = typer.Option(
    None, "--baseline", "-b", help="Variant to compare against (default: the first)."
)


#: Exit codes of `experiments run|resume` beyond 0 (a clean run) and 1 (an error before or during it).
EXIT_ERRORS = 3  # the run finished, but calls failed after their retries or evaluators failed
EXIT_BUDGET = 4  # the budget was spent and the run stopped early


def _run(
    spec_source: Any,
    base: Path | None,
    *,
    new: bool,
    force: bool,
    no_cache: bool,
    json_out: bool,
    html: Path | None = None,
) -> None:
    h = open_honed(no_cache=no_cache, require_workspace=False)
    exp = resolve(h, spec_source, base=base)
    total_calls = len(exp.variants) * len(exp.cases) * exp.spec.repeats
    with progress_bars(disable=json_out) as progress:
        err_console.print(
            f"[dim]{exp.spec.name}: {len(exp.variants)} variant(s) x {len(exp.cases)} case(s) x "
            f"{exp.spec.repeats} repeat(s) = {total_calls} calls, dataset {exp.dataset.ref}[/dim]"
        )
        run = run_experiment(h, exp, new=new, progress=progress, force=force)
    report = analyse(h.store, run.id)
    h.close()
    _print_report(report, json_out=json_out)
    if html is not None:
        typer.echo(f"report written to {write_html(report, html)}", err=True)
    _print_errors(report)
    if run.status == "budget_exceeded":
        err_console.print(
            "the budget is spent: the run stopped early (`honed experiments resume` continues it "
            "after raising budget_usd)"
        )
        raise typer.Exit(EXIT_BUDGET)
    if report.failed:
        raise typer.Exit(EXIT_ERRORS)


def _print_errors(report: RunReport) -> None:
    """The run's errors on stderr, grouped by message with counts, and how to retry them."""
    if not report.errors:
        return
    calls = sum(n for where, _, n in report.errors if where == "call")
    scored = sum(n for where, _, n in report.errors if where != "call")
    what = [f"{calls} call(s) failed after retries"] if calls else []
    what += [f"{scored} score(s) could not be computed"] if scored else []
    err_console.print(f"[bold red]{' and '.join(what)}[/bold red]:", highlight=False)
    for where, message, count in report.errors:
        err_console.print(f"  {count:>5} x {where}: {message}", markup=False, highlight=False)
    if calls:
        err_console.print("run the same command again to retry the failed calls", highlight=False)


@app.command("run")
def run(
    spec: Path = typer.Argument(..., help="Experiment spec (YAML)."),
    new: bool = typer.Option(
        False, "--new", help="Start a new run even if an unfinished one of this spec exists."
    ),
    force: bool = typer.Option(False, "--force", help="Start even if the cost estimate exceeds the budget."),
    no_cache: bool = NoCacheOption,
    json_out: bool = JsonOption,
    html: Path | None = typer.Option(
        None, "--html", help="Also write the report as a self-contained HTML file (tables and plots)."
    ),
) -> None:
    """Run an experiment (or continue its unfinished run) and print the comparison.

    Example: honed experiments run experiments/qa.yaml --html report.html
    """
    _run(load_spec(spec), spec.parent, new=new, force=force, no_cache=no_cache, json_out=json_out, html=html)


@app.command("resume")
def resume(
    run_ref: str = typer.Argument(..., help="Run id (or prefix, or name)."),
    force: bool = typer.Option(False, "--force"),
    no_cache: bool = NoCacheOption,
    json_out: bool = JsonOption,
) -> None:
    """Continue a stopped run where it stopped, without repeating finished calls.

    Example: honed experiments resume 3f2a9c
    """
    h = open_honed()
    stored = h.store.runs.get(run_ref)
    if stored.status == "completed":
        err_console.print(f"run {stored.id} is already complete")
        _print_report(analyse(h.store, stored.id), json_out=json_out)
        return
    body = stored.spec
    spec = parse_spec(
        {
            "name": body["name"],
            "dataset": f"{body['dataset']['ref'].split('@')[0]}@{body['dataset']['hash']}",
            "split": body["split"],
            "repeats": body["repeats"],
            "budget_usd": body["budget_usd"],
            "variants": [
                {
                    "id": v["id"],
                    "prompt": f"{v['prompt'].split('@')[0]}@{v['prompt_hash']}",
                    "model": v["model"],
                    "params": v["params"],
                }
                for v in body["variants"]
            ],
            "evaluators": [e["spec"] for e in body["evaluators"]],
        },
        source=f"run {stored.id}",
    )
    h.close()
    _run(spec, None, new=False, force=force, no_cache=no_cache, json_out=json_out)


@app.command("list")
def list_runs(limit: int = typer.Option(20, "--limit", "-n"), json_out: bool = JsonOption) -> None:
    """List experiment runs, newest first."""
    h = open_honed(require_workspace=True)
    runs = h.store.runs.list(limit)
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "status": r.status,
            "variants": len(r.spec["variants"]),
            "created_at": r.created_at.isoformat(timespec="seconds"),
        }
        for r in runs
    ]
    if json_out:
        print_json(rows)
        return
    print_table(
        "experiment runs",
        ["id", "name", "status", "variants", "created"],
        [(r["id"], r["name"], r["status"], r["variants"], r["created_at"]) for r in rows],
    )


@app.command("show")
def show(
    run_ref: str = typer.Argument(...), baseline: str | None = BaselineOption, json_out: bool = JsonOption
) -> None:
    """Show a run: its spec, progress and per-variant results.

    Example: honed experiments show 3f2a9c --json
    """
    h = open_honed(require_workspace=True)
    _print_report(analyse(h.store, run_ref, baseline=baseline), json_out=json_out)


@app.command("compare")
def compare(
    run_ref: str = typer.Argument(...), baseline: str | None = BaselineOption, json_out: bool = JsonOption
) -> None:
    """Compare a run's variants against a baseline: CIs, paired tests, verdicts, flaky cases.

    Example: honed experiments compare nightly --baseline "qa@v1"
    """
    h = open_honed(require_workspace=True)
    _print_report(analyse(h.store, run_ref, baseline=baseline), json_out=json_out)


@app.command("report")
def report_html(
    run_ref: str = typer.Argument(..., help="Run id (or prefix, or name)."),
    baseline: str | None = BaselineOption,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="HTML file to write (default: honed-report-RUNID.html in this folder)."
    ),
) -> None:
    """Write a run's report as one self-contained HTML file (tables, verdicts, plots) and print its path.

    Example: honed experiments report 3f2a9c --baseline "qa@v1" -o report.html
    """
    h = open_honed(require_workspace=True)
    result = analyse(h.store, run_ref, baseline=baseline)
    h.close()
    typer.echo(str(write_html(result, output or Path(f"honed-report-{result.run.id}.html"))))


def _ci(low: float | None, high: float | None, pct: bool = False) -> str:
    if low is None or high is None:
        return ""
    return f"[{low:.1%}, {high:.1%}]" if pct else f"[{low:.3f}, {high:.3f}]"


def _print_report(report: RunReport, *, json_out: bool) -> None:
    if json_out:
        print_json(report.to_dict())
        return
    run = report.run
    console.print(f"run {run.id} ({run.name}) · status {run.status} · baseline {report.baseline}")
    usage_rows = [
        (
            v,
            u.calls,
            u.errors,
            u.cached,
            fmt_cost(u.cost_usd),
            u.input_tokens,
            u.output_tokens,
            f"{u.mean_latency_s * 1000:.0f} ms" if u.mean_latency_s is not None else "cached",
        )
        for v, u in report.usage.items()
    ]
    print_table(
        "calls", ["variant", "calls", "errors", "cached", "cost", "in tok", "out tok", "latency"], usage_rows
    )
    for ev, result in report.stats.items():
        rows = []
        for v in report.variants:
            s = result.summaries[v]
            rows.append(
                (
                    v,
                    s.n_scored,
                    s.n_errors,
                    "" if s.mean is None else f"{s.mean:.3f}",
                    _ci(s.ci.low if s.ci else None, s.ci.high if s.ci else None),
                    "" if s.pass_rate is None else f"{s.pass_rate:.1%}",
                    _ci(
                        s.pass_ci.low if s.pass_ci else None, s.pass_ci.high if s.pass_ci else None, pct=True
                    ),
                    len(s.flaky),
                )
            )
        print_table(
            f"{ev}: per variant (95% bootstrap CI; pass rate with Wilson CI)",
            ["variant", "cases", "errors", "mean", "CI", "pass", "pass CI", "flaky"],
            rows,
        )
        comp_rows = []
        notes = []
        for v, c in result.comparisons.items():
            mc = c.passes.mcnemar.p_value if c.passes is not None else None
            comp_rows.append(
                (
                    f"{v} vs {report.baseline}",
                    c.n_used,
                    "" if c.mean_diff is None else f"{c.mean_diff:+.3f}",
                    _ci(c.ci.low if c.ci else None, c.ci.high if c.ci else None),
                    "" if c.p_value is None else f"{c.p_value:.3g}",
                    "" if mc is None else f"{mc:.3g}",
                    f"+{len(c.improvements)} / -{len(c.regressions)}",
                    c.verdict,
                )
            )
            notes.append(f"{v}: {c.message}")
        if comp_rows:
            print_table(
                f"{ev}: paired comparison against {report.baseline}",
                [
                    "comparison",
                    "cases",
                    "diff",
                    "CI",
                    "p (perm.)",
                    "p (McNemar)",
                    "improved/regressed",
                    "verdict",
                ],
                comp_rows,
            )
            for note in notes:
                console.print(f"  {note}", markup=False, highlight=False)
    if report.retrieval:
        _print_retrieval(report)


def _print_retrieval(report: RunReport) -> None:
    rows = []
    for v, r in report.retrieval.items():
        kinds, failures = r["attribution"]["kinds"], r["attribution"]["failures"]
        rate = r["gold_retrieved_rate"]

        def share(d: dict[str, Any]) -> str:
            if d["fraction"] is None:
                return "-"
            return f"{d['count']} ({d['fraction']:.0%} [{d['ci_low']:.0%}, {d['ci_high']:.0%}])"

        rows.append(
            (
                v,
                r["results"],
                "-" if rate is None else f"{r['gold_retrieved']}/{r['with_gold']} ({rate:.0%})",
                kinds["ok"]["count"],
                share(failures["retrieval_miss"]),
                share(failures["generation_miss"]),
                kinds["unknown"]["count"],
            )
        )
    judge = report.retrieval_judge or "no pass/fail evaluator: correctness unknown"
    print_table(
        f"retrieval: gold context retrieved, and failures attributed (correct = {judge})",
        ["variant", "results", "gold retrieved", "ok", "retrieval miss", "generation miss", "unknown"],
        rows,
    )
