"""`honed eval run SPEC`: the CI gate."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.text import Text

from honed.cli.common import (
    JsonOption,
    NoCacheOption,
    console,
    err_console,
    open_honed,
    print_json,
    print_table,
)
from honed.errors import InvalidInputError
from honed.experiments import analyse, resolve, run_experiment
from honed.experiments.gate import check, failing_lines, junit_xml, load_gate, measure, with_cases

app = typer.Typer(help="Gate CI on evals: thresholds and significant regressions.", no_args_is_help=True)


@app.command("run")
def run(
    spec: Path = typer.Argument(
        ..., help="Eval spec (YAML): an experiment spec with baseline, thresholds and limits."
    ),
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here."),
    show_cases: int = typer.Option(
        5, "--show-cases", min=0, help="List at most this many failing cases per failed check."
    ),
    no_cache: bool = NoCacheOption,
    json_out: bool = JsonOption,
) -> None:
    """Run the eval and exit 1 if a threshold or limit is missed or a significant regression against the
    baseline appears; each failed check lists its failing cases.

    The spec is an experiment spec plus `baseline:` (a variant run beside the candidates to compare
    against), `thresholds:` (per evaluator: mean, pass_rate) and `limits:` (per candidate: cost_usd,
    cost_per_call_usd, latency_p95_s, errors, error_rate; without errors or error_rate any failed call or
    evaluation fails). See examples/gate/ci.yaml.

    Example: honed eval run evals/ci.yaml --junit reports/honed.xml
    """
    gate = load_gate(spec)
    h = open_honed(no_cache=no_cache)
    exp = resolve(h, gate.experiment, base=spec.parent)
    run_ = run_experiment(h, exp)
    report = analyse(h.store, run_.id)
    checks = check(gate, report, measure(h.store, report))
    if show_cases:
        checks = with_cases(h.store, report, checks, limit=show_cases)
    h.close()
    failed = [c for c in checks if not c.passed]
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        tmp = junit.with_suffix(junit.suffix + f".tmp{os.getpid()}")
        tmp.write_text(junit_xml(gate.experiment.name, checks), encoding="utf-8")
        tmp.replace(junit)
    if json_out:
        print_json({"run": run_.id, "passed": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        print_table(
            f"eval {gate.experiment.name} (run {run_.id})",
            ["variant", "check", "result", "measured"],
            [(c.variant, c.name, "pass" if c.passed else "FAIL", c.detail) for c in checks],
            ratios={"measured": 3},
        )
        for c in failed:
            console.print(Text(f"FAIL {c.detail}", style="bold red"))
            for line in failing_lines(c):
                console.print(Text(line))
        console.print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    if run_.status == "budget_exceeded":
        err_console.print(f"run {run_.id} stopped early: its budget_usd was spent")
        raise typer.Exit(1)
    if failed:
        raise typer.Exit(1)


@app.command("calibrate")
def calibrate_judge(
    run_ref: str = typer.Argument(..., help="A run with both the judge's and `human` scores."),
    judge: str = typer.Option(..., "--judge", help="The judge evaluator's name in the run."),
    human: str = typer.Option("human", "--human", help="The evaluator holding human labels."),
    scale: str = typer.Option("1-5", "--scale", help="The shared label scale: LOW-HIGH or pass_fail."),
    json_out: bool = JsonOption,
) -> None:
    """How well a judge agrees with people: accuracy and Cohen's kappa (weighted on ordinal scales).

    Example: honed review --run RUN (label some outputs), then honed eval calibrate RUN --judge quality
    """
    from honed.evals.calibration import calibrate
    from honed.evals.evaluators import Score

    h = open_honed(require_workspace=True)
    run_ = h.store.runs.get(run_ref)
    rows = h.store.runs.scores(run_.id)
    h.close()

    def by_item(name: str) -> dict[str, Score | float | None]:
        out: dict[str, Score | float | None] = {}
        for s in rows:
            if s["evaluator"] == name:
                key = f"{s['variant']}|{s['case_id']}|{s['sample_index']}"
                out[key] = (
                    Score.failed(s["error"])
                    if s["error"]
                    else Score(s["value"], s["passed"], s["reason"] or "")
                )
        return out

    judged, labelled = by_item(judge), by_item(human)
    if not judged:
        raise InvalidInputError(f"run {run_.id} has no scores from {judge!r}", hint="check --judge")
    if not labelled:
        raise InvalidInputError(
            f"run {run_.id} has no {human!r} labels",
            hint=f"label outputs with `honed review --run {run_.id}`",
        )
    report = calibrate(judged, labelled, scale=scale)
    if json_out:
        print_json(report.to_dict())
    else:
        console.print(f"{judge} vs {human} on run {run_.id}: {report.summary()}")
