"""What every command shares: opening the workspace with flag overrides, printing tables and JSON."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from honed.api import Honed
from honed.config import load_settings

# Piped output (CI logs, `| less`) has no terminal width; rich would fall back to 80 columns, which folds a
# table of model outputs into slivers. COLUMNS still wins when set.
_PIPED_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120
console = Console(width=_PIPED_WIDTH)
err_console = Console(stderr=True)

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table.")
NoCacheOption = typer.Option(False, "--no-cache", help="Neither read nor write the response cache.")


def open_honed(*, no_cache: bool = False, require_workspace: bool = False, **flags: Any) -> Honed:
    """Settings with command-line flags on top (flag > HONED_* > honed.toml > defaults)."""
    overrides: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if no_cache:
        overrides["cache"] = False
    settings = load_settings(overrides, require_workspace=require_workspace)
    return Honed(settings)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ratios: Mapping[str, int] | None = None,
    **kw: Any,
) -> None:
    """A table; `ratios` gives text-heavy columns (e.g. model output) a larger share of the width."""
    table = Table(title=title, expand=bool(ratios), **kw)
    for col in columns:
        justify = "right" if col.lower() in NUMERIC_COLUMNS else "left"
        ratio = (ratios or {}).get(col)
        no_wrap = ratios is not None and ratio is None
        table.add_column(col, justify=justify, overflow="fold", ratio=ratio, no_wrap=no_wrap)  # type: ignore[arg-type]
    for row in rows:
        # Cells are plain text: model output and error hints contain [brackets] that are not markup.
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    console.print(table)


NUMERIC_COLUMNS = frozenset(
    {"#", "in tok", "out tok", "latency", "cost", "tokens", "tok/s", "rows", "samples"}
)


def fmt_cost(cost: float | None) -> str:
    if cost is None:
        return "unknown"
    return f"${cost:.6f}" if cost else "$0"


def fmt_latency(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def mapping_rows(items: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(k, json.dumps(v, default=str) if not isinstance(v, str) else v) for k, v in items.items()]


@contextlib.contextmanager
def progress_bars(*, disable: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A `progress(phase, done, total)` callback drawing one bar per phase on stderr (off for --json)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=disable,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield progress
