"""`honed review`: label model outputs by hand in the terminal; the labels become `human` scores.

Drawing and reading only: the loop itself is `honed.evals.review.review_loop`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel
from rich.text import Text

from honed.cli.common import console
from honed.errors import InvalidInputError
from honed.evals.evaluators.scale import Scale
from honed.evals.review import (
    Progress,
    ReviewItem,
    append_record,
    read_labels,
    read_review_items,
    review_loop,
)


def _text(value: Any) -> Text:
    # Plain text, never markup: model outputs contain [brackets].
    return Text(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2))


def _show(item: ReviewItem, progress: Progress) -> None:
    console.rule(
        f"{item.id}  ({progress.position}/{progress.total}, {progress.labelled} labelled this session)"
    )
    if item.input is not None:
        console.print(Panel(_text(item.input), title="input", title_align="left"))
    console.print(Panel(_text(item.output), title="output", title_align="left", border_style="cyan"))
    if item.reference is not None:
        console.print(
            Panel(_text(item.reference), title="reference", title_align="left", border_style="green")
        )


def _ask(prompt: str) -> str:
    try:
        return console.input(f"{prompt}: ")
    except EOFError:  # input ran out (a pipe, Ctrl-D): stop cleanly, labels so far are saved
        return "q"


def review(
    outputs: Path | None = typer.Argument(
        None, help='JSONL of outputs, one {"id", "input", "output", "reference"?} a line (or use --run).'
    ),
    run: str | None = typer.Option(
        None, "--run", help="Review an experiment run's outputs; labels become its `human` scores."
    ),
    variant: str | None = typer.Option(None, "--variant", help="With --run: only this variant."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Label file (JSONL, appended). Default: OUTPUTS with .labels.jsonl."
    ),
    scale: str = typer.Option("1-5", "--scale", help="Label scale: LOW-HIGH (e.g. 1-5) or pass_fail."),
    reviewer: str | None = typer.Option(None, "--reviewer", help="Your name, stored with each label."),
) -> None:
    """Label model outputs by hand in the terminal, from a JSONL file or an experiment run (--run).

    Each output is shown with its input and reference; type a label, s to skip, u to
    undo the last label, q to quit. Labels are appended to the label file as you go, so quitting loses
    nothing and running the command again resumes with the unlabelled outputs. Use the labels as scores
    with the `human` evaluator, or to calibrate an LLM judge.

    Examples: honed review runs/outputs.jsonl --out labels.jsonl;  honed review out.jsonl --scale pass_fail
    """
    sc = Scale.parse(scale)
    if (outputs is None) == (run is None):
        raise InvalidInputError("give an outputs file or --run RUN, not both or neither")
    if run is not None:
        _review_run(run, variant, sc, reviewer)
        return
    assert outputs is not None
    items = read_review_items(outputs)
    label_file = out or outputs.with_name(outputs.name.removesuffix(".jsonl") + ".labels.jsonl")
    existing = read_labels(label_file)
    other = sorted({label.scale for label in existing.values()} - {str(sc)})
    if other:
        raise InvalidInputError(
            f"{label_file} holds labels on scale {', '.join(other)}, not {sc}",
            hint=f"use --scale {other[0]} or another --out file",
        )
    if existing:
        console.print(f"resuming: {len(existing)} output(s) already labelled in {label_file}")
    summary = review_loop(
        items,
        sc,
        show=_show,
        ask=_ask,
        record=lambda record: append_record(label_file, record),
        already=existing.keys(),
        reviewer=reviewer,
        notify=lambda message: console.print(Text(message, style="yellow")),
    )
    done = summary.already + len(summary.labelled)
    console.print(
        f"labelled {len(summary.labelled)} this session, {done}/{summary.total} in all; "
        f"{len(summary.skipped)} skipped; labels in {label_file}"
    )
    if summary.remaining:
        console.print(f"{summary.remaining} left: run the same command again to continue")


def _review_run(run_ref: str, variant: str | None, sc: Scale, reviewer: str | None) -> None:
    from honed.cli.common import open_honed
    from honed.experiments.review import labelled, run_items, store_recorder

    h = open_honed(require_workspace=False)
    run, items = run_items(h.store, run_ref, variant=variant)
    already = labelled(h.store, run)
    if already:
        console.print(f"resuming: {len(already)} output(s) of run {run.id} already labelled")
    summary = review_loop(
        items,
        sc,
        show=_show,
        ask=_ask,
        record=store_recorder(h.store, run, sc),
        already=already,
        reviewer=reviewer,
        notify=lambda message: console.print(Text(message, style="yellow")),
    )
    h.close()
    console.print(
        f"labelled {len(summary.labelled)} this session, {summary.already + len(summary.labelled)}/"
        f"{summary.total} in all; stored as run {run.id}'s `human` scores "
        f"(see `honed experiments compare {run.id}`)"
    )
