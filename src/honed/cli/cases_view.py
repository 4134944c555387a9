"""`honed experiments cases` in the terminal: one block per case, readable at 100 columns.

A table of outputs side by side folds into slivers at terminal widths, so each case is a block: its id and
how it changed, inputs and reference, then each variant's output (per sample) with one line per evaluator.
Model outputs are data: printed as plain text (never markup), cut unless `--full`.
"""

from __future__ import annotations

import json
from typing import Any

from rich.padding import Padding
from rich.rule import Rule
from rich.text import Text

from honed.cli.common import console
from honed.experiments.cases import CaseChange, CaseListing, CaseOutputs, CaseSample, CaseScore

#: Without --full, an output or input shows at most this many characters and lines.
MAX_CHARS = 400
MAX_LINES = 8


def clip(text: str, *, full: bool) -> str:
    """`text`, or its start with a note of what was cut."""
    if full:
        return text
    lines = text.splitlines()
    cut = "\n".join(lines[:MAX_LINES])
    cut = cut[:MAX_CHARS]
    if len(cut) >= len(text.rstrip("\n")):
        return text
    return f"{cut.rstrip()} … (+{len(text) - len(cut)} characters; --full shows all)"


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _change(c: CaseChange) -> str:
    if c.baseline_passed is not None and c.passed is not None:
        how = f"{'pass' if c.baseline_passed else 'fail'} → {'pass' if c.passed else 'fail'}"
    else:
        how = f"{c.baseline_score:.3f} → {c.score:.3f}"
    flaky = ", flaky" if c.flaky else ""
    word = "regressed" if c.kind == "regression" else "improved"
    return f"{word} on {c.evaluator} under {c.variant} ({how}{flaky})"


def _score_line(s: CaseScore) -> Text:
    line = Text(f"{s.evaluator}: ", style="dim")
    if s.error is not None:
        line.append("error" if s.failed else "no score", style="bold red" if s.failed else "yellow")
        line.append(f" {s.error}")
        if s.reason and s.reason != s.error:
            line.append(f" ({s.reason})")
        return line
    value = "" if s.value is None else f"{s.value:.3g}"
    line.append(value)
    if s.passed is not None:
        line.append(" pass" if s.passed else " FAIL", style="green" if s.passed else "bold red")
    if s.reason:
        line.append(f"  {clip(s.reason, full=False)}", style="dim")
    return line


def _sample(sample: CaseSample, *, full: bool) -> list[Any]:
    out: list[Any] = []
    if sample.error is not None:
        out.append(Padding(Text(f"call failed: {sample.error}", style="bold red"), (0, 0, 0, 4)))
    if sample.output is not None:
        body = clip(sample.output, full=full) if sample.output.strip() else "(empty output)"
        out.append(Padding(Text(body), (0, 0, 0, 4)))
    out += [Padding(_score_line(s), (0, 0, 0, 4)) for s in sample.scores]
    return out


def _case(listing: CaseListing, case: CaseOutputs, *, full: bool) -> None:
    console.print(Rule(Text(f"case {case.case_id}"), align="left", style="dim"))
    for change in case.changes:
        style = "red" if change.kind == "regression" else "green"
        console.print(Text(_change(change), style=style))
    console.print(Text("inputs", style="bold"))
    for name, value in case.inputs.items():
        line = Text(f"{name}: ", style="dim")
        line.append(clip(_value(value), full=full))
        console.print(Padding(line, (0, 0, 0, 2)))
    reference = "(none)" if case.reference is None else clip(_value(case.reference), full=full)
    line = Text("reference ", style="bold")
    line.append(reference)
    console.print(line)
    for variant, samples in case.outputs.items():
        tag = " (baseline)" if variant == listing.baseline else ""
        if not samples:
            console.print(Padding(Text(f"{variant}{tag}: no result", style="dim"), (0, 0, 0, 2)))
            continue
        for sample in samples:
            which = f" · sample {sample.sample}" if listing.repeats > 1 else ""
            console.print(Padding(Text(f"{variant}{tag}{which}", style="bold cyan"), (0, 0, 0, 2)))
            for part in _sample(sample, full=full):
                console.print(part)


def print_cases(listing: CaseListing, *, full: bool) -> None:
    """The cases, then how many matched and how to see more."""
    for case in listing.cases:
        _case(listing, case, full=full)
    shown = len(listing.cases)
    if listing.matched == 0:
        console.print(Text(f"no {listing.selection} in run {listing.run_id}"))
        return
    summary = f"{shown} of {listing.matched} {listing.selection} in run {listing.run_id}"
    if listing.more:
        summary += f" (--limit {listing.matched} shows all)"
    console.print(Rule(style="dim"))
    console.print(Text(summary))
