"""`honed logs curate` and `honed finetune export`: formatting only; the work is in `honed.logs.curate` and
`honed.finetune.export`. These are plain command functions; `cli/main.py` registers them on their nouns."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from honed.cli.common import JsonOption, open_honed, print_json, print_table
from honed.cli.logs import LOG_FILTERS
from honed.errors import InvalidInputError
from honed.hashing import short

if TYPE_CHECKING:
    from honed.logs.curate import CurationReport
    from honed.store.logs import LogFilter


@LOG_FILTERS.without("errors").into("where")
def curate(
    name: str = typer.Argument(..., help="Dataset to record the curated cases as, e.g. support-train."),
    *,
    where: LogFilter,
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="At most the newest N logs."),
    dedupe: bool = typer.Option(True, "--dedupe/--no-dedupe", help="Drop exact and near duplicates."),
    near: float = typer.Option(0.95, "--near", help="Cosine similarity at which inputs are near duplicates."),
    exact_only: bool = typer.Option(False, "--exact-only", help="Drop exact duplicates only (no embedding)."),
    split: str = typer.Option(
        "train=0.8,test=0.2", "--split", help="Split ratios, e.g. train=0.8,dev=0.1,test=0.1, or none."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split assignment."),
    group_by: str | None = typer.Option(
        None, "--group-by", help="Keep groups in one split: session_id, trace_id or a metadata key."
    ),
    leakage_check: str | None = typer.Option(
        None, "--leakage-check", help="Eval dataset (NAME[@REF]) whose cases training rows must not copy."
    ),
    leakage_threshold: float = typer.Option(0.95, "--leakage-threshold", help="Cosine similarity of a leak."),
    allow_leakage: bool = typer.Option(False, "--allow-leakage", help="Keep leaking rows (still reported)."),
    scrub: bool = typer.Option(
        False, "--scrub", help="Replace e-mails, phones, cards, secrets... in the text."
    ),
    embedder: str = typer.Option(
        "local/all-MiniLM-L6-v2", "--embedder", help="Embedder for near duplicates."
    ),
    note: str | None = typer.Option(None, "--note", help="Why this version exists."),
    json_out: bool = JsonOption,
) -> None:
    """Curate logged generations into a dataset version: filter, dedupe, leakage check, scrub, split.

    A case per log (id = log id); the reference is the latest correction, else the output. Failed and
    empty generations are dropped. Every step's count is reported.

    Examples:
      honed logs curate support-train --prompt support --approved --min-score judge=4
      honed logs curate support-train --leakage-check support-eval --scrub --group-by session_id
      honed logs curate quick --exact-only --split none --json
    """
    from honed.logs.curate import curate_logs

    where = dataclasses.replace(where, limit=limit)
    with open_honed(require_workspace=True) as h:
        report = curate_logs(
            h.store,
            name,
            where,
            dedupe=dedupe,
            near_threshold=None if exact_only else near,
            embedder=embedder,
            settings=h.settings,
            split=None if split.strip().lower() == "none" else split,
            seed=seed,
            group_by=group_by,
            leakage_against=leakage_check,
            leakage_threshold=leakage_threshold,
            allow_leakage=allow_leakage,
            scrub=scrub,
            note=note,
        )
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if json_out:
        print_json(report.to_dict())
        return
    _print_report(report)


def _print_report(report: CurationReport) -> None:
    typer.echo(f"dataset {report.dataset} · {short(report.hash)} · {report.status}")
    splits = ", ".join(f"{k} {v}" for k, v in report.splits.items())
    typer.echo(
        f"{report.selected} logs selected -> {report.cases} cases" + (f" ({splits})" if splits else "")
    )
    dropped = [
        (report.dropped_errors, "failed"),
        (report.dropped_empty, "without output"),
        (report.exact_duplicates, "exact duplicates"),
        (report.near_duplicates, "near duplicates"),
        (report.leakage_dropped, f"leaking into {report.leakage_against}"),
    ]
    typer.echo("dropped: " + (", ".join(f"{n} {what}" for n, what in dropped if n) or "none"))
    if report.references_from_corrections:
        typer.echo(f"{report.references_from_corrections} reference(s) taken from corrections")
    if report.scrubbed:
        found = ", ".join(f"{n} {kind}" for kind, n in report.scrubbed.items() if n)
        typer.echo("scrubbed: " + (found or "nothing found"))
    if report.leaking:
        kept = " (kept: --allow-leakage)" if report.leakage_dropped == 0 else ""
        print_table(
            f"{len(report.leaking)} row(s) leak into {report.leakage_against}{kept}",
            ["log", "eval case", "similarity", "match", "input"],
            [
                (leak.log_id, leak.eval_case, f"{leak.similarity:.3f}", leak.match, leak.input)
                for leak in report.leaking
            ],
            ratios={"input": 3},
        )


def export(
    dataset: str = typer.Argument(..., help="Dataset to export: NAME or NAME@REF."),
    format: str = typer.Option(
        "openai", "--format", help="openai (chat JSONL) or hf (Hugging Face datasets)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="The JSONL file (openai) or folder (hf) to write."),
    split: str | None = typer.Option(None, "--split", help="Export only this split (hf: else all splits)."),
    mode: str = typer.Option(
        "full", "--mode", help="full (the logged prompt) or input-output (input -> reference only)."
    ),
    system: str | None = typer.Option(None, "--system", help="A short system message to put first."),
    template: str | None = typer.Option(
        None, "--template", help="input-output: Jinja template of the user message (@FILE reads a file)."
    ),
    prompt: str | None = typer.Option(
        None, "--prompt", help="full: prompt (NAME[@REF]) to render for cases without logged messages."
    ),
    min_examples: int = typer.Option(10, "--min-examples", min=1, help="openai: fewest examples allowed."),
    max_tokens: int = typer.Option(65536, "--max-tokens", min=1, help="openai: token limit per example."),
    json_out: bool = JsonOption,
) -> None:
    """Export a dataset as chat fine-tuning data, checked against OpenAI's format rules.

    `--mode input-output` drops the long prompt's instructions and few-shot examples, so the fine-tuned
    model is called with the input alone.

    Examples:
      honed finetune export support-train --split train -o train.jsonl
      honed finetune export support-train --mode input-output --system "Acme support." -o train.jsonl
      honed finetune export support-train --format hf -o support-hf
    """
    from honed.datasets import get_dataset
    from honed.finetune.export import chat_examples, export_hf, export_openai_jsonl

    if format not in ("openai", "hf"):
        raise InvalidInputError(
            f"unknown export format {format!r}", hint="use --format openai or --format hf"
        )
    export_mode: Any = mode.replace("-", "_")
    if export_mode not in ("full", "input_output"):
        raise InvalidInputError(
            f"unknown export mode {mode!r}", hint="use --mode full or --mode input-output"
        )
    if template is not None and template.startswith("@"):
        template = _read(Path(template[1:]))
    with open_honed(require_workspace=True) as h:
        version = get_dataset(h.store, dataset)
        loaded = None
        if prompt is not None:
            from honed.prompts.registry import get_prompt

            loaded = get_prompt(h.store, prompt)[1]
    cases = version.select(split)
    options: dict[str, Any] = {"mode": export_mode, "system": system, "template": template, "prompt": loaded}
    if format == "openai":
        result = export_openai_jsonl(
            chat_examples(cases, **options), out, max_tokens=max_tokens, min_examples=min_examples
        )
    else:
        _, result = export_hf(cases, out, split=split, **options)
    if json_out:
        print_json({**result.to_dict(), "dataset": version.ref, "split": split, "mode": export_mode})
        return
    what = f"split {split} of {version.ref}" if split else version.ref
    parts = f" ({', '.join(f'{k} {v}' for k, v in result.splits.items())})" if result.splits else ""
    typer.echo(f"wrote {result.examples} examples{parts}, {result.tokens:,} tokens, from {what} to {out}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read template {path}: {exc.strerror}", hint="check the path"
        ) from None
