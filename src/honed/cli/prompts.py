"""`honed prompts push|list|show|diff|label|run`: versioned prompt and chain files.

Every command takes a stored reference `NAME[@REF]` (REF: latest, vN, a label, a hash prefix); `diff` and
`run` also take a YAML file, so a change can be seen and tried before it is pushed. A chain file (one with
`steps:`) is pushed, shown and run by the same commands.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from honed.api import Honed
from honed.cli.common import (
    JsonOption,
    NoCacheOption,
    console,
    err_console,
    fmt_cost,
    fmt_latency,
    open_honed,
    print_json,
    print_table,
)
from honed.config import system_user
from honed.hashing import short
from honed.models.types import Completion
from honed.prompts import Chain, Prompt, diff_prompts, files, registry
from honed.prompts.inputs import read_variables
from honed.run import ChainResult, run_chain, run_prompt
from honed.store import Version

app = typer.Typer(
    help="Versioned prompts and chains: push files, list, show, diff, label and run versions.",
    no_args_is_help=True,
)


@app.command("push")
def push(
    paths: list[Path] = typer.Argument(..., help="Prompt/chain YAML files, or folders of them."),
    note: str | None = typer.Option(None, "--note", "-m", help="Why this version exists."),
    label: str | None = typer.Option(None, "--label", "-l", help="Point this label at the pushed versions."),
    json_out: bool = JsonOption,
) -> None:
    """Validate every file, then record a version of each (nothing is recorded if any file is invalid).

    Examples: honed prompts push prompts/;  honed prompts push prompts/qa.yaml -m "shorter" -l staging
    """
    items = files.load_files(paths)
    with open_honed() as h:
        pushed = registry.push(h.store, items, note=note, label=label, by=system_user())
    if json_out:
        print_json([{**_version_dict(p.version), "status": _status(p.created)} for p in pushed])
        return
    print_table(
        None,
        ["kind", "name", "version", "hash", "status", "labels"],
        [
            (v.kind, v.name, f"v{v.number}", short(v.hash), _status(p.created), ", ".join(v.labels))
            for p in pushed
            for v in [p.version]
        ],
    )


@app.command("list")
def list_(json_out: bool = JsonOption) -> None:
    """Every prompt and chain: versions, the latest hash and where the labels point.

    Example: honed prompts list --json
    """
    with open_honed() as h:
        found = registry.list_all(h.store)
    if json_out:
        print_json(
            [
                {
                    "kind": s.kind,
                    "name": s.name,
                    "versions": s.versions,
                    "latest": s.latest.hash,
                    "updated_at": s.latest.created_at,
                    "labels": s.labels,
                }
                for s in found
            ]
        )
    elif not found:
        console.print("no prompts yet: honed prompts push FILE_OR_FOLDER")
    else:
        print_table(
            None,
            ["kind", "name", "versions", "latest", "labels"],
            [(s.kind, s.name, s.versions, short(s.latest.hash), _labels(s.labels)) for s in found],
        )


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME\\[@REF], e.g. qa, qa@v2, qa@production, qa@3f2a9c."),
    history: bool = typer.Option(False, "--history", help="List the versions instead."),
    yaml_out: bool = typer.Option(False, "--yaml", help="Print only the YAML (a file you can edit)."),
    json_out: bool = JsonOption,
) -> None:
    """Show one version (number, hash, created, note, labels, content), or the history of a name.

    Examples: honed prompts show qa@production;  honed prompts show qa --history;
    honed prompts show qa --yaml > prompts/qa.yaml
    """
    with open_honed() as h:
        if history:
            versions = registry.history(h.store, registry.parse_ref(ref)[0])
            _print_history(versions, json_out)
            return
        version, item = registry.get_item(h.store, ref)
    if yaml_out:
        sys.stdout.write(files.to_yaml(item))
    elif json_out:
        print_json({**_version_dict(version), "body": item.body()})
    else:
        labels = f" · labels: {', '.join(version.labels)}" if version.labels else ""
        console.print(
            f"{version.kind} {version.name} v{version.number} · {version.hash}\n"
            f"created {version.created_at:%Y-%m-%d %H:%M:%S}{labels}"
            + (f"\nnote: {version.note}" if version.note else ""),
            markup=False,
            highlight=False,
        )
        sys.stdout.write("\n" + files.to_yaml(item))


@app.command("diff")
def diff_cmd(
    old: str = typer.Argument(..., help="NAME, NAME@REF, or a YAML file."),
    new: str | None = typer.Argument(None, help="NAME@REF, @REF (same name), or a YAML file."),
    json_out: bool = JsonOption,
) -> None:
    """Compare two versions: a unified diff of their YAML and the fields that changed.

    With one argument: NAME compares the previous version with the latest, NAME@REF compares it with the
    latest, and a FILE compares the latest pushed version with the file (what a push would record).

    Examples: honed prompts diff qa;  honed prompts diff qa@production qa@staging;
    honed prompts diff qa@v1 @v3;  honed prompts diff prompts/qa.yaml
    """
    with open_honed() as h:
        if new is None:
            if _is_file(old):
                b_label, b = old, files.load_file(old)
                a_label, a = _stored(h, b.name)
            else:
                name, ref = registry.parse_ref(old)
                if ref is None:
                    versions = registry.history(h.store, name)
                    if len(versions) < 2:
                        err_console.print(f"{name} has one version: nothing to compare", highlight=False)
                        return
                    ref = f"v{len(versions) - 1}"
                a_label, a = _stored(h, f"{name}@{ref}")
                b_label, b = _stored(h, name)
        else:
            a_label, a = _side(h, old, None)
            b_label, b = _side(h, new, a.name)
    result = diff_prompts(a, b, old_label=a_label, new_label=b_label)
    if json_out:
        print_json(result.to_dict())
        return
    if result.identical:
        console.print(f"{a_label} and {b_label} are identical", markup=False, highlight=False)
        return
    for line in result.unified.splitlines():
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
        console.print(Text(line, style="bold" if line.startswith(("+++", "---")) else style), soft_wrap=True)
    changed = ", ".join(f"{c.path} ({c.change})" for c in result.changes)
    console.print(Text(f"\nchanged: {changed}"))


@app.command("label")
def label(
    ref: str = typer.Argument(..., help="NAME@REF: the version the label should point at."),
    name: str = typer.Argument(..., help="The label, e.g. production or staging."),
    remove: bool = typer.Option(False, "--remove", help="Delete the label instead."),
) -> None:
    """Point a label at a version (moving it if it pointed elsewhere), or remove it.

    Examples: honed prompts label qa@v3 production;  honed prompts label qa production --remove
    """
    with open_honed() as h:
        if remove:
            registry.remove_label(h.store, ref, name)
            console.print(f"removed label {name} from {registry.parse_ref(ref)[0]}", highlight=False)
            return
        version = registry.set_label(h.store, ref, name, by=system_user())
    console.print(
        f"{name} -> {version.name} v{version.number} ({short(version.hash)})", markup=False, highlight=False
    )


@app.command("run")
def run(
    target: str = typer.Argument(..., help="NAME\\[@REF] of a stored prompt or chain, or a YAML file."),
    var: list[str] = typer.Option([], "--var", help="A variable, KEY=VALUE (repeatable)."),
    vars_file: Path | None = typer.Option(None, "--vars-file", help="A JSON object of variables."),
    model: str | None = typer.Option(None, "--model", help="Run with this model instead of the prompt's."),
    temperature: float | None = typer.Option(None, "--temperature", "-t", help="Override the prompt's."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Override the prompt's."),
    no_cache: bool = NoCacheOption,
    json_out: bool = JsonOption,
) -> None:
    """Render a prompt with variables, call the model, print the output with tokens, latency and cost.

    The model is --model, else the prompt's `model:`, else the workspace's default_model. A chain runs its
    steps in order and prints each step's output; the last one is the answer.

    Examples:
      honed prompts run qa@production --var question="Why is the sky blue?"
      honed prompts run prompts/qa.yaml --vars-file case.json --model openai/gpt-4o-mini --json
      honed prompts run examples/prompts/answer_chain.yaml --var question="..."
    """
    variables = read_variables(var, vars_file)
    params = {
        k: v for k, v in {"temperature": temperature, "max_tokens": max_tokens}.items() if v is not None
    }
    with open_honed(no_cache=no_cache) as h:
        if _is_file(target):
            item: Prompt | Chain = files.load_file(target)
            version, base = None, Path(target).resolve().parent
        else:
            (version, item), base = registry.get_item(h.store, target), None
        if isinstance(item, Chain):
            started = time.perf_counter()
            chain = run_chain(h, item, variables, model=model, params=params, base=base)
            _print_chain(chain, time.perf_counter() - started, json_out)
            return
        result = run_prompt(h, item, variables, model=model, params=params, base=base)
    if json_out:
        out = result.to_dict()
        number = {"number": version.number if version else None}
        print_json({"prompt": out.pop("prompt"), "version": out.pop("version"), **number, **out})
        return
    where = f"{item.name} v{version.number}" if version else f"{item.name} (file)"
    console.print(result.text, markup=False, highlight=False, soft_wrap=True)
    err_console.print(
        f"[dim]{where} {short(item.version())} · {_stats(result.completion)}[/dim]", highlight=False
    )


def _print_chain(result: ChainResult, wall: float, json_out: bool) -> None:
    if json_out:
        print_json(result.to_dict())
        return
    for step in result.steps:
        title = f"step {step.index}: {step.output} ({step.prompt.name} {short(step.version)})"
        console.print(Text(f"── {title} ──", style="bold"))
        text = (
            step.completion.text if step.prompt.response_schema is None else json.dumps(step.value, indent=2)
        )
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        err_console.print(f"[dim]{_stats(step.completion)}[/dim]", highlight=False)
    done = [s.completion for s in result.steps]
    costs = [c.cost_usd for c in done]
    total = None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
    tokens = sum(c.usage.total_tokens for c in done)
    err_console.print(
        f"[dim]chain {result.chain}: {len(done)} steps · {tokens} tokens · {fmt_cost(total)} · "
        f"wall {fmt_latency(wall)}[/dim]",
        highlight=False,
    )


def _stats(c: Completion) -> str:
    return (
        f"{c.model} · {c.usage.input_tokens} in / {c.usage.output_tokens} out tokens · "
        f"{fmt_latency(c.latency_s)} · {fmt_cost(c.cost_usd)}{' · cached' if c.cached else ''}"
    )


def _is_file(text: str) -> bool:
    return text.endswith(files.SUFFIXES) or Path(text).is_file()


def _stored(h: Honed, ref: str) -> tuple[str, Prompt | Chain]:
    version, item = registry.get_item(h.store, ref)
    return f"{version.name}@v{version.number} ({short(version.hash)})", item


def _side(h: Honed, text: str, same_name: str | None) -> tuple[str, Prompt | Chain]:
    if _is_file(text):
        return text, files.load_file(text)
    if text.startswith("@") and same_name is not None:
        text = same_name + text
    return _stored(h, text)


def _version_dict(v: Version) -> dict[str, Any]:
    return {
        "kind": v.kind,
        "name": v.name,
        "version": v.number,
        "hash": v.hash,
        "created_at": v.created_at,
        "note": v.note,
        "labels": list(v.labels),
    }


def _print_history(versions: list[Version], json_out: bool) -> None:
    if json_out:
        print_json([_version_dict(v) for v in versions])
        return
    print_table(
        None,
        ["version", "hash", "created", "labels", "note"],
        [
            (f"v{v.number}", short(v.hash), f"{v.created_at:%Y-%m-%d %H:%M:%S}", ", ".join(v.labels), v.note)
            for v in versions
        ],
    )


def _status(created: bool) -> str:
    return "new" if created else "unchanged"


def _labels(labels: dict[str, int]) -> str:
    return ", ".join(f"{k}=v{n}" for k, n in labels.items())
