"""`honed experiments run|resume|list|show|compare|report`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from honed.cli.cases_view import print_cases
from honed.cli.common import (
    VERDICT_LEGEND,
    JsonOption,
    NoCacheOption,
    console,
    err_console,
    fmt_cost,
    fmt_latency,
    open_honed,
    print_json,
    print_table,
    print_variant_key,
    progress_bars,
    variant_keys,
    verdict_mark,
)
from honed.errors import InvalidInputError
from honed.experiments import (
    RunReport,
    analyse,
    load_spec,
    parse_spec,
    pending,
    resolve,
    run_experiment,
)
from honed.experiments.analysis import Usage
from honed.experiments.cases import Changed, list_cases, report_cases
from honed.experiments.latency import ONE_AT_A_TIME
from honed.experiments.report_html import write_html

app = typer.Typer(
    help="Run a matrix of prompt versions x models x params over a dataset, and compare.",
    no_args_is_help=True,
)

BaselineOption = typer.Option(
    None,
    "--baseline",
    "-b",
    help="Variant to compare against: its id, or the prompt version (qa@v1) that one variant runs "
    "(default: the first).",
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
    where = pending(h.store, exp, new=new)
    shape = (
        f"{exp.spec.name}: {len(exp.variants)} variant(s) x {len(exp.cases)} case(s) x "
        f"{exp.spec.repeats} repeat(s) = {where.total} calls, dataset {exp.dataset.ref}"
    )
    with progress_bars(disable=json_out) as progress:
        if where.run is not None:
            err_console.print(
                f"resuming run {where.run.id}: {where.done} done, {where.todo} to go", highlight=False
            )
        err_console.print(shape, style="dim", markup=False, highlight=False)
        run = run_experiment(h, exp, new=new, progress=progress, force=force)
    report = analyse(h.store, run.id)
    cases = report_cases(h.store, report) if html is not None else None
    h.close()
    _print_report(report, json_out=json_out, errors=False)
    if html is not None:
        typer.echo(f"report written to {write_html(report, html, cases)}", err=True)
    _print_errors(report)
    if run.status == "budget_exceeded":
        err_console.print(
            "the budget is spent: the run stopped early (`honed experiments resume` continues it "
            "after raising budget_usd)"
        )
        raise typer.Exit(EXIT_BUDGET)
    if report.failed:
        raise typer.Exit(EXIT_ERRORS)


def run_spec_file(spec: Path, *, json_out: bool = False) -> None:
    """`honed experiments run SPEC` as another command runs it (`honed import ... --run`)."""
    _run(load_spec(spec), spec.parent, new=False, force=False, no_cache=False, json_out=json_out)


def _print_errors(report: RunReport, *, out: Console = err_console, retry: bool = True) -> None:
    """The run's errors (on stderr by default), grouped by message with counts, and how to see the cases
    (and, after a run, to retry the failed calls)."""
    if not report.errors:
        return
    calls = sum(n for where, _, n in report.errors if where == "call")
    scored = sum(n for where, _, n in report.errors if where != "call")
    what = [f"{calls} call(s) failed after retries"] if calls else []
    what += [f"{scored} score(s) could not be computed"] if scored else []
    out.print(f"[bold red]{' and '.join(what)}[/bold red]:", highlight=False)
    for where, message, count in report.errors:
        out.print(f"  {count:>5} x {where}: {message}", markup=False, highlight=False)
    out.print(f"the cases: honed experiments cases {report.run.id} --errors", markup=False, highlight=False)
    if calls and retry:
        out.print("run the same command again to retry the failed calls", highlight=False)


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
    """Show a run: its spec, progress, per-variant results and errors (grouped by message).

    The outputs case by case are in `honed experiments cases RUN` (the JSON here holds summaries only).

    Example: honed experiments show 3f2a9c --json
    """
    h = open_honed(require_workspace=True)
    _print_report(analyse(h.store, run_ref, baseline=baseline), json_out=json_out)


@app.command("compare")
def compare(
    run_ref: str = typer.Argument(...), baseline: str | None = BaselineOption, json_out: bool = JsonOption
) -> None:
    """Compare a run's variants against a baseline: CIs, paired tests, verdicts, flaky cases.

    --baseline takes a variant id or the prompt version one variant runs (qa@v1). The changed cases with
    their outputs: `honed experiments cases RUN --regressions` (or --improvements).

    Example: honed experiments compare nightly --baseline "qa@v1"
    """
    h = open_honed(require_workspace=True)
    _print_report(analyse(h.store, run_ref, baseline=baseline), json_out=json_out)


@app.command("cases")
def cases(
    run_ref: str = typer.Argument(..., help="Run id (or prefix, or name)."),
    variant: list[str] = typer.Option(
        [],
        "--variant",
        "-v",
        help="Only this variant (id or prompt version), shown beside the baseline; repeatable.",
    ),
    baseline: str | None = BaselineOption,
    regressions: bool = typer.Option(
        False, "--regressions", help="Only cases that regressed against the baseline (as `compare` counts)."
    ),
    improvements: bool = typer.Option(
        False, "--improvements", help="Only cases that improved against the baseline."
    ),
    failed: str | None = typer.Option(
        None, "--failed", metavar="EVALUATOR", help="Only cases this evaluator failed."
    ),
    errors: bool = typer.Option(False, "--errors", help="Only cases whose call or an evaluator failed."),
    search: str | None = typer.Option(
        None, "--search", "-s", help="Only cases whose id, inputs, reference or an output contains this."
    ),
    flaky: bool = typer.Option(
        False, "--flaky", help="Only cases whose pass/fail differs between repeats (runs with --repeats)."
    ),
    order: str | None = typer.Option(
        None,
        "--order",
        help="case (the dataset's order), change (the biggest change first) or score (the lowest first); "
        "default: the dataset's order, or the biggest change first with --regressions/--improvements.",
    ),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Show at most this many cases."),
    full: bool = typer.Option(False, "--full", help="Show outputs and inputs whole, not cut."),
    json_out: bool = JsonOption,
) -> None:
    """Each case of a run: its inputs and reference, every variant's output (per sample), and each
    evaluator's score, pass/fail, reason and error.

    Examples:
      honed experiments cases 3f2a9c --regressions --variant qa@v2
      honed experiments cases nightly --failed exact --limit 5 --full
      honed experiments cases 3f2a9c --errors --json
      honed experiments cases nightly --order score --limit 10
    """
    if regressions and improvements:
        raise InvalidInputError(
            "--regressions and --improvements exclude each other", hint="give one, or neither for all cases"
        )
    changed: Changed | None = "regressions" if regressions else "improvements" if improvements else None
    h = open_honed(require_workspace=True)
    listing = list_cases(
        h.store,
        run_ref,
        variants=variant,
        baseline=baseline,
        changed=changed,
        failed=failed,
        errors=errors,
        search=search,
        flaky=flaky,
        order=order,  # type: ignore[arg-type]  # list_cases checks it
        limit=limit,
    )
    h.close()
    if json_out:
        print_json(listing.to_dict())
        return
    print_cases(listing, full=full)


@app.command("report")
def report_html(
    run_ref: str = typer.Argument(..., help="Run id (or prefix, or name)."),
    baseline: str | None = BaselineOption,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="HTML file to write (default: honed-report-RUNID.html in this folder)."
    ),
) -> None:
    """Write a run's report as one self-contained HTML file (tables, verdicts, plots, errors, and the changed
    and failing cases with each variant's output beside the question and reference) and print its path.

    Example: honed experiments report 3f2a9c --baseline "qa@v1" -o report.html
    """
    h = open_honed(require_workspace=True)
    result = analyse(h.store, run_ref, baseline=baseline)
    cases = report_cases(h.store, result)
    h.close()
    typer.echo(str(write_html(result, output or Path(f"honed-report-{result.run.id}.html"), cases)))


def _ci(low: float | None, high: float | None, pct: bool = False) -> str:
    if low is None or high is None:
        return ""
    return f"[{low:.1%}, {high:.1%}]" if pct else f"[{low:.3f}, {high:.3f}]"


def _print_report(report: RunReport, *, json_out: bool, errors: bool = True) -> None:
    """The report on stdout; with `errors`, the error groups after it (`run` prints them on stderr)."""
    if json_out:
        print_json(report.to_dict())
        return
    run = report.run
    console.print(f"run {run.id} ({run.name}) · status {run.status} · baseline {report.baseline}")
    key = variant_keys(report.variants)  # long ids (from a matrix:) become letters, with their key
    print_variant_key(key)
    usage_rows = [
        (
            key.get(v, v),
            u.calls,
            u.errors,
            u.cached,
            fmt_cost(u.cost_usd),
            u.input_tokens,
            u.output_tokens,
            _latency(u),
        )
        for v, u in report.usage.items()
    ]
    print_table(
        "calls (latency: time in the model per call, p50/p95; queued time apart)",
        ["variant", "calls", "errors", "cached", "cost", "in tok", "out tok", "latency"],
        usage_rows,
    )
    _print_probe_note(report, key)
    for ev, result in report.stats.items():
        rows = []
        for v in report.variants:
            s = result.summaries[v]
            rows.append(
                (
                    key.get(v, v),
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
        unscored = {key.get(v, v): result.summaries[v].n_absent for v in report.variants}
        if any(unscored.values()):
            counts = ", ".join(f"{v} {n}" for v, n in unscored.items())
            console.print(
                f"  not scored (not labelled yet, or no reference): {counts}; neither scored nor errors",
                markup=False,
                highlight=False,
                style="dim",
            )
        comp_rows = []
        notes = []
        for v, c in result.comparisons.items():
            mc = c.passes.mcnemar.p_value if c.passes is not None else None
            comp_rows.append(
                (
                    f"{key.get(v, v)} vs {key.get(report.baseline, report.baseline)}",
                    c.n_used,
                    "" if c.mean_diff is None else f"{c.mean_diff:+.3f}",
                    _ci(c.ci.low if c.ci else None, c.ci.high if c.ci else None),
                    "" if c.p_value is None else f"{c.p_value:.3g}",
                    "" if mc is None else f"{mc:.3g}",
                    f"+{len(c.improvements)} / -{len(c.regressions)}",
                    verdict_mark(c.verdict),
                )
            )
            notes.append(f"{key.get(v, v)}: {c.message}")
        if comp_rows:
            print_table(
                f"{ev}: paired comparison against {key.get(report.baseline, report.baseline)}",
                ["comparison", "cases", "diff", "CI", "p perm.", "p McNemar", "fixed/broke", ""],
                comp_rows,
                no_wrap={"CI"},
            )
            console.print(VERDICT_LEGEND, markup=False, highlight=False)
            for note in notes:
                _note(f"  {note}")
    if report.retrieval:
        _print_retrieval(report)
    if errors:
        _print_errors(report, out=console, retry=False)


def _latency(u: Usage) -> str:
    """Time in the model per call, p50/p95, marked `*` when timed one call at a time after the run."""
    if u.latency_p50_s is None or u.latency_p95_s is None:
        return "n/a"
    mark = " *" if u.latency_mode == ONE_AT_A_TIME else ""
    return f"{fmt_latency(u.latency_p50_s)} / {fmt_latency(u.latency_p95_s)}{mark}"


def _print_probe_note(report: RunReport, key: dict[str, str]) -> None:
    """What the `*` means, and what the batched run measured instead."""
    probed = {v: u for v, u in report.usage.items() if u.latency_mode == ONE_AT_A_TIME}
    if not probed:
        return
    calls = sorted({u.latency_calls for u in probed.values() if u.latency_calls})
    in_run = ", ".join(
        f"{key.get(v, v)} {fmt_latency(u.run_latency_p50_s)}"
        for v, u in probed.items()
        if u.run_latency_p50_s is not None
    )
    lines = [
        f"* {'/'.join(map(str, calls))} calls timed one at a time after the run; in the run itself the "
        "model batched the calls,",
        "  and a call took its batch's time" + (f": p50 {in_run}" if in_run else ""),
    ]
    by_run: dict[str, list[str]] = {}
    for v, u in probed.items():
        if u.latency_timed_by:
            by_run.setdefault(u.latency_timed_by, []).append(key.get(v, v))
    for earlier, names in by_run.items():
        lines.append(f"  every call came from the cache: timing kept from run {earlier} ({', '.join(names)})")
    for line in lines:
        _note(line, indent=2)


def _note(text: str, *, indent: int = 4) -> None:
    """A dim note wrapped to the terminal with its continuation lines indented (not flush left)."""
    import textwrap

    width = max(40, console.width - 1)
    lead = len(text) - len(text.lstrip())
    wrapped = textwrap.fill(
        text.strip(), width=width, initial_indent=" " * lead, subsequent_indent=" " * (lead + indent)
    )
    console.print(wrapped, markup=False, highlight=False, style="dim", soft_wrap=True)


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
                variant_keys(report.variants).get(v, v),
                r["results"],
                "-" if rate is None else f"{r['gold_retrieved']}/{r['with_gold']} ({rate:.0%})",
                kinds["ok"]["count"],
                share(failures["retrieval_miss"]),
                share(failures["generation_miss"]),
                kinds["unknown"]["count"],
            )
        )
    judge = (
        f"pass/fail by {report.retrieval_judge}"
        if report.retrieval_judge
        else "no pass/fail evaluator: correctness unknown"
    )
    print_table(
        f"retrieval: gold context retrieved, and failures attributed ({judge})",
        ["variant", "results", "gold retrieved", "ok", "retrieval miss", "generation miss", "unknown"],
        rows,
    )
