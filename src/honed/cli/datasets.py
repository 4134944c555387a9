"""`honed datasets import|list|show|export`: formatting only; the work is in `honed.datasets`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from honed.cli.common import JsonOption, open_honed, print_json, print_table
from honed.datasets import (
    Case,
    Columns,
    DatasetVersion,
    SplitPlan,
    case_line,
    dataset_history,
    detect_format,
    export_jsonl,
    get_dataset,
    import_file,
    list_datasets,
    parse_ratios,
    parse_ref,
    write_jsonl,
)
from honed.datasets.case import UNASSIGNED
from honed.datasets.splits import DEFAULT_RATIOS
from honed.errors import InvalidInputError
from honed.hashing import short

if TYPE_CHECKING:
    from honed.store import Store

app = typer.Typer(
    help="Versioned datasets of cases: import JSONL/CSV, list, show, export.", no_args_is_help=True
)

RefArgument = typer.Argument(..., help="NAME or NAME@REF (REF: latest, v2, a label or a hash prefix).")


@app.command("import")
def import_(
    name: str = typer.Argument(..., help="Dataset name, e.g. faq."),
    file: Path = typer.Argument(..., help="A .jsonl, .csv or .tsv file."),
    format: str | None = typer.Option(None, "--format", help="jsonl, csv or tsv (default: by extension)."),
    inputs: list[str] = typer.Option(
        [],
        "--input",
        help="A field that is an input variable (repeatable). CSV default: every unmapped column.",
    ),
    inputs_from_extra: bool = typer.Option(
        False, "--inputs-from-extra", help="JSONL: every field not otherwise mapped is an input."
    ),
    reference: str = typer.Option("reference", "--reference", "--reference-field", help="Reference field."),
    id_field: str = typer.Option("id", "--id", "--id-field", help="Id field (none: ids from inputs)."),
    split_field: str = typer.Option("split", "--split-field", help="Field holding explicit splits."),
    context_ids: str = typer.Option(
        "context_ids", "--context-ids", help="Gold context ids field (CSV: JSON array or a;b;c)."
    ),
    metadata: list[str] = typer.Option([], "--metadata", help="A field to keep as metadata (repeatable)."),
    ignore: list[str] = typer.Option([], "--ignore", help="A field to leave out (repeatable)."),
    split_ratios: str | None = typer.Option(
        None,
        "--split-ratios",
        help="Assign splits to cases without one, e.g. train=0.6,dev=0.2,test=0.2: by a hash of each case's "
        "id, so a case keeps its split when cases are added and sizes follow the ratios on average.",
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed for --split-ratios/--split-by (default 0)."),
    split_by: str | None = typer.Option(
        None,
        "--split-by",
        help="Keep groups whole: metadata.KEY, inputs.KEY or KEY (default ratios 60/20/20).",
    ),
    note: str | None = typer.Option(None, "--note", help="Why this version exists (default: the file name)."),
    json_out: bool = JsonOption,
) -> None:
    """Import a file as a new version of a dataset (or report that its content is already recorded).

    The whole file is checked first: a bad row fails with FILE:LINE and nothing is stored.

    Examples:
      honed datasets import faq faq.jsonl
      honed datasets import nq nq.jsonl --input question --reference answer --split-ratios train=0.8,test=0.2
      honed datasets import tickets tickets.csv --id ticket_id --metadata product --split-by product --seed 1
    """
    fmt_is_jsonl = detect_format(file, format) == "jsonl"
    columns = Columns(
        inputs=tuple(inputs),
        rest_as_inputs=inputs_from_extra or (not fmt_is_jsonl and not inputs),
        id=id_field,
        reference=reference,
        split=split_field,
        context_ids=context_ids,
        metadata=tuple(metadata),
        ignore=tuple(ignore),
    )
    plan: SplitPlan | None = None
    if split_ratios is not None or split_by is not None:
        ratios = parse_ratios(split_ratios) if split_ratios is not None else DEFAULT_RATIOS
        plan = SplitPlan(ratios=ratios, seed=seed or 0, by=split_by)
    elif seed is not None:
        raise InvalidInputError(
            "--seed only matters with --split-ratios or --split-by", hint="add one of them"
        )
    with open_honed() as h:
        result = import_file(h.store, name, file, format=format, columns=columns, plan=plan, note=note)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)  # not rich: it would wrap a piped line at 80
    if json_out:
        summary = result.dataset.summary()
        print_json({**summary, "status": result.status, "latest": result.latest, "warnings": result.warnings})
        return
    dv = result.dataset
    line = f"dataset {dv.name} v{dv.number} · {short(dv.hash)} · {_counts(dv)} · {result.status}"
    typer.echo(line)
    if result.status == "existing":
        typer.echo(
            f"same content as v{dv.number}; latest is still v{result.latest} "
            f"(use {dv.ref} to evaluate this content)",
            err=True,
        )


@app.command("list")
def list_(json_out: bool = JsonOption) -> None:
    """List datasets with their latest version.

    Examples: honed datasets list;  honed datasets list --json
    """
    with open_honed() as h:
        latest = list_datasets(h.store)
    if json_out:
        print_json([{**dv.summary(), "versions": dv.number} for dv in latest])
        return
    rows = [(dv.name, dv.number, short(dv.hash), len(dv), _splits(dv), _when(dv)) for dv in latest]
    if not rows:
        typer.echo("no datasets yet: honed datasets import NAME FILE")
        return
    print_table("datasets", ["name", "versions", "hash", "cases", "splits", "updated"], rows)


@app.command("show")
def show(
    ref: str = RefArgument,
    limit: int = typer.Option(10, "--limit", "-n", min=0, help="How many cases to show."),
    split: str | None = typer.Option(None, "--split", help="Show only this split's cases."),
    history: bool = typer.Option(False, "--history", help="List the dataset's versions instead."),
    json_out: bool = JsonOption,
) -> None:
    """Summarise a dataset version (hash, splits, input variables) and show its first cases.

    Examples:
      honed datasets show faq
      honed datasets show faq@v1 --split test --limit 5
      honed datasets show faq --history
    """
    with open_honed() as h:
        if history:
            _show_history(h.store, ref, json_out=json_out)
            return
        dv = get_dataset(h.store, ref)
        versions = len(dataset_history(h.store, dv.name))
    cases = dv.select(split)
    if json_out:
        print_json({**dv.summary(), "versions": versions, "shown": [c.to_dict() for c in cases[:limit]]})
        return
    labels = f" · labels: {', '.join(dv.version.labels)}" if dv.version.labels else ""
    for text in (
        f"dataset {dv.name} v{dv.number} of {versions} · {dv.hash}{labels}",
        _counts(dv),
        f"inputs: {', '.join(dv.input_names())}",
        f"created: {_when(dv)}" + (f" · note: {dv.version.note}" if dv.version.note else ""),
    ):
        typer.echo(text)
    if limit and cases:
        title = f"first {min(limit, len(cases))} of {len(cases)}" + (f" in {split}" if split else "")
        print_table(
            title,
            ["id", "split", "inputs", "reference"],
            [_case_row(c) for c in cases[:limit]],
            ratios={"inputs": 3, "reference": 2},
        )


def _show_history(store: Store, ref: str, *, json_out: bool) -> None:
    name, version_ref = parse_ref(ref)
    if version_ref is not None:
        raise InvalidInputError("--history lists every version; give the name alone", hint=f"use {name}")
    versions = dataset_history(store, name)
    sized = [(v, get_dataset(store, f"{name}@{v.hash}")) for v in versions]
    if json_out:
        print_json([{**dv.summary()} for _, dv in sized])
        return
    rows = [
        (f"v{v.number}", short(v.hash), len(dv), _splits(dv), ", ".join(v.labels), _when(dv), v.note or "")
        for v, dv in sized
    ]
    print_table(f"dataset {name}", ["version", "hash", "cases", "splits", "labels", "created", "note"], rows)


@app.command("export")
def export(
    ref: str = RefArgument,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to FILE (default: stdout)."),
    split: str | None = typer.Option(None, "--split", help="Export only this split."),
) -> None:
    """Export a dataset version as JSONL; re-importing the full export gives the same version hash.

    Examples:
      honed datasets export faq > faq.jsonl
      honed datasets export faq@v2 --split test -o faq-test.jsonl
    """
    with open_honed() as h:
        dv = get_dataset(h.store, ref)
    cases: list[Case] = dv.select(split)
    if output is None:
        _write_stdout(cases)
        return
    n = export_jsonl(cases, output)
    what = f"split {split} of " if split else ""
    typer.echo(f"wrote {n} cases ({what}{dv.ref}, {short(dv.hash)}) to {output}", err=True)


def _write_stdout(cases: list[Case]) -> None:
    # Bytes, not text: the export is UTF-8 whatever the terminal's locale says.
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        write_jsonl(cases, sys.stdout)
        return
    sys.stdout.flush()
    for case in cases:
        buffer.write((case_line(case) + "\n").encode("utf-8"))
    buffer.flush()


def _counts(dv: DatasetVersion) -> str:
    return f"{len(dv)} cases" + (f" ({_splits(dv)})" if _splits(dv) else "")


def _splits(dv: DatasetVersion) -> str:
    counts = dv.split_counts()
    if list(counts) == [UNASSIGNED]:
        return ""  # no splits at all: nothing worth a column
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def _when(dv: DatasetVersion) -> str:
    return dv.version.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _case_row(case: Case) -> tuple[str, str, str, str]:
    inputs = " · ".join(f"{k}={_clip(v)}" for k, v in case.inputs.items())
    reference = "" if case.reference is None else _clip(case.reference)
    return case.id, case.split or "", inputs, reference


def _clip(value: Any, n: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
