"""What every command shares: opening the workspace with flag overrides, printing tables and JSON."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from honed.api import Honed
from honed.config import load_settings
from honed.errors import InvalidInputError

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


def parse_json_option(text: str, what: str, example: str) -> Any:
    """`text` (an option's value) parsed as JSON; bad JSON is a usage error naming `what`, with `example`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{what} is not valid JSON ({exc.msg})", hint=f"e.g. {example}") from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ratios: Mapping[str, int] | None = None,
    no_wrap: Collection[str] = (),
    one_line: bool = False,
    wide: bool = False,
    max_widths: Mapping[str, int] | None = None,
    whole: Collection[str] = (),
    **kw: Any,
) -> None:
    """A table that stays readable at the common 100 columns.

    `ratios` gives text-heavy columns (e.g. model output) the width the others leave. `no_wrap` columns
    (ids, marks) are never broken inside a word; a table too wide for them cuts them with "…" instead.
    `one_line` makes every row one line, free text cut with "…" (a listing); `max_widths` caps columns.
    `wide` prints every cell whole, however wide the table gets (`--wide`; page it with `less -S`). Keep a
    table to what fits by default: split it, or move detail behind `--wide`.
    `whole` columns hold names a user copies (model references, job ids): never wrapped, never cut; the
    other columns wrap around them. Should that leave another column under WRAP_FLOOR characters, the table
    runs past the terminal's edge rather than break a name: a command that cannot be sure asks
    `fits_whole` first and prints the long names apart (e.g. under the table).
    """
    args = (title, columns, rows, ratios, no_wrap, one_line, wide, max_widths, whole, kw)
    if not wide and (not whole or _fits(_table(*args, squeeze=True))):
        console.print(_table(*args))
        return
    _print_unclipped(_table(*args), tight=not wide)


#: The fewest characters `print_table` squeezes a wrapping column to, beside `whole` ones.
WRAP_FLOOR = 8


def _table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    ratios: Mapping[str, int] | None,
    no_wrap: Collection[str],
    one_line: bool,
    wide: bool,
    max_widths: Mapping[str, int] | None,
    whole: Collection[str],
    kw: Mapping[str, Any],
    *,
    squeeze: bool = False,
) -> Table:
    """The rich table `print_table` prints; `squeeze`: as narrow as it may be made (to measure it)."""
    table = Table(title=title, expand=bool(ratios) and not wide, **kw)
    flat = one_line and not wide
    cells = [
        [" ".join(c.split()) if flat else c for c in ("" if v is None else str(v) for v in row)]
        for row in rows
    ]
    for i, col in enumerate(columns):
        justify = "right" if col.lower() in NUMERIC_COLUMNS else "left"
        ratio = None if wide else (ratios or {}).get(col)
        cut = wide or one_line or col in no_wrap or col in whole or (ratios is not None and ratio is None)
        overflow = "ellipsis" if cut and not wide else "fold"
        cap = None if wide or col in whole else (max_widths or {}).get(col)
        if squeeze and col not in whole:
            cap = min(cap or WRAP_FLOOR, WRAP_FLOOR)
        # A minimum of the longest name keeps rich from narrowing the column when the table is too wide.
        least = max((cell_len(line) for row in cells for line in row[i].splitlines()), default=None)
        floor = least if col in whole and not wide else None
        table.add_column(
            col,
            justify=justify,  # type: ignore[arg-type]
            overflow=overflow,  # type: ignore[arg-type]
            ratio=ratio,
            no_wrap=cut,
            max_width=cap,
            min_width=floor,
        )
    for row in cells:
        # Cells are plain text: model output and error hints contain [brackets] that are not markup.
        table.add_row(*(Text(c) for c in row))
    return table


def fits_whole(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, whole: Collection[str]) -> bool:
    """Whether `print_table(..., whole=whole)` fits these rows to the terminal (see there)."""
    return _fits(_table(None, columns, rows, None, (), False, False, None, whole, {}, squeeze=True))


def _fits(table: Table) -> bool:
    from rich.measure import Measurement

    # Measured as if the terminal were endless: rich clamps a measurement to the width it is given.
    return Measurement.get(console, console.options.update(width=100_000), table).minimum <= console.width


def _print_unclipped(table: Table, *, tight: bool = False) -> None:
    """`table` at its natural width (`tight`: the least that wraps its wrappable columns to their longest
    word), however much wider than the terminal."""
    from rich.measure import Measurement

    # The shared console never prints wider than the terminal: a console of the table's own width does.
    measured = Measurement.get(console, console.options.update(width=100_000), table)
    needed = measured.minimum if tight else measured.maximum
    Console(
        width=max(needed, console.width),
        file=console.file,
        force_terminal=console.is_terminal,
        no_color=console.no_color,
    ).print(table, crop=False)


WideOption = typer.Option(False, "--wide", help="Show every column, each cell whole (pipe to `less -S`).")

#: The marks a narrow table shows for `honed.evals.stats` verdicts, and the legend printed under it.
VERDICT_MARKS = {"better": "▲", "worse": "▼", "no detectable difference": "="}
VERDICT_LEGEND = (
    "▲ better, ▼ worse, = no detectable difference (95% CI without 0, p < 0.05); B - A: variant - base"
)


def verdict_mark(verdict: str | None) -> str:
    """▲, ▼ or = for a verdict (see VERDICT_LEGEND); an unknown verdict is shown as it is."""
    if verdict is None:
        return ""
    return VERDICT_MARKS.get(verdict, verdict)


def short_ids(ids: Iterable[str], *, min_length: int = 12) -> dict[str, str]:
    """Each id shortened, as git shortens hashes, to its shortest prefix of at least `min_length`
    characters that no other of `ids` starts with (`log-27cb8bdf` for a log id). Commands that take an id
    accept such a prefix."""
    unique = sorted(set(ids))
    out: dict[str, str] = {}
    for i, full in enumerate(unique):
        n = min_length
        for other in (unique[i - 1] if i else "", unique[i + 1] if i + 1 < len(unique) else ""):
            common = next((k for k, (a, b) in enumerate(zip(full, other, strict=False)) if a != b), None)
            shared = min(len(full), len(other)) if common is None else common
            n = max(n, shared + 1)
        out[full] = full if n >= len(full) else full[:n]
    return out


def variant_keys(ids: Sequence[str], *, max_length: int = 20) -> dict[str, str]:
    """How tables name variants: by their ids when every id is at most `max_length` characters, else by
    letters (A, B, ... Z, AA, AB ...) in order, with the key printed by `print_variant_key`. Ids made from a
    `matrix:` ("qa@v2 smollm2-135m-instruct max_tokens=64,temperature=0.7") would otherwise fold every
    table they are in."""
    if all(len(v) <= max_length for v in ids):
        return {v: v for v in ids}
    return {v: _letters(i) for i, v in enumerate(ids)}


def print_variant_key(keys: Mapping[str, str]) -> None:
    """The key to the letters `variant_keys` gave (nothing when the tables show the ids themselves)."""
    if all(k == v for v, k in keys.items()):
        return
    console.print("variants:", highlight=False)
    for variant, key in keys.items():
        console.print(f"  {key:>2}  {variant}", markup=False, highlight=False)


def _letters(i: int) -> str:
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


NUMERIC_COLUMNS = frozenset(
    {"#", "in tok", "out tok", "latency", "cost", "tokens", "tok/s", "rows", "samples"}
    | {"p", "p50", "p95", "latency p50", "queued", "queued p50", "cost/1k", "cost/1k (notional)"}
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
def progress_bars(
    *, disable: bool = False, piped_lines: bool = False
) -> Iterator[Callable[[str, int, int], None]]:
    """A `progress(phase, done, total)` callback drawing one bar per phase on stderr (off for --json).

    Where stderr is no terminal (a log file, CI), rich draws the bars once, when they are done; a long
    command passes `piped_lines` to print a plain `phase: done/total` line at each tenth there instead."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    lines = piped_lines and not disable and not err_console.is_terminal
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=disable or lines,
    ) as bar:
        tasks: dict[str, Any] = {}
        tenths: dict[str, tuple[int, float]] = {}  # phase -> (tenth last printed, when it began)

        def progress(phase: str, done: int, total: int) -> None:
            if lines:
                tenth = 10 * done // total if total else 10
                last, began = tenths.get(phase, (-1, time.monotonic()))
                if tenth != last:
                    tenths[phase] = (tenth, began)
                    took = time.monotonic() - began
                    err_console.print(
                        f"{phase}: {done}/{total} ({took:.0f} s)", markup=False, highlight=False
                    )
                return
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield progress
