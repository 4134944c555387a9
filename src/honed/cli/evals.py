"""`honed eval run SPEC`: the CI gate."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from honed.cli.common import (
    JsonOption,
    NoCacheOption,
    console,
    err_console,
    open_honed,
    print_json,
    print_table,
)
from honed.experiments import analyse, resolve, run_experiment
from honed.experiments.gate import check, junit_xml, load_gate

app = typer.Typer(help="Gate CI on evals: thresholds and significant regressions.", no_args_is_help=True)


@app.command("run")
def run(
    spec: Path = typer.Argument(..., help="Eval spec (YAML): an experiment spec with thresholds/baseline."),
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here."),
    no_cache: bool = NoCacheOption,
    json_out: bool = JsonOption,
) -> None:
    """Run the eval and exit 1 if a threshold fails or a significant regression against the baseline appears.

    Example: honed eval run evals/ci.yaml --junit reports/honed.xml
    """
    gate = load_gate(spec)
    h = open_honed(no_cache=no_cache)
    exp = resolve(h, gate.experiment, base=spec.parent)
    run_ = run_experiment(h, exp)
    report = analyse(h.store, run_.id)
    h.close()
    checks = check(gate, report)
    failed = [c for c in checks if not c.passed]
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        tmp = junit.with_suffix(junit.suffix + f".tmp{os.getpid()}")
        tmp.write_text(junit_xml(gate.experiment.name, checks), encoding="utf-8")
        tmp.replace(junit)
    if json_out:
        print_json({"run": run_.id, "passed": not failed, "checks": [c.__dict__ for c in checks]})
    else:
        print_table(
            f"eval {gate.experiment.name} (run {run_.id})",
            ["variant", "evaluator", "check", "result", "detail"],
            [(c.variant, c.evaluator, c.name, "pass" if c.passed else "FAIL", c.detail) for c in checks],
            ratios={"detail": 3},
        )
        console.print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    if run_.status != "completed":
        err_console.print(f"run {run_.id} ended {run_.status}: see `honed experiments show {run_.id}`")
        raise typer.Exit(1)
    if failed:
        raise typer.Exit(1)
