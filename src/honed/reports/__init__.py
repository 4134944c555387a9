"""The kit for honed's self-contained HTML reports: the page (`html`) and its inline-SVG charts (`svg`).

The run report (`honed.experiments.report_html`) and the ladder report (`honed.optimize.report`) are built
of these parts, so both look and escape the same way. The kit knows nothing of runs or ladders: it sits
beside `evals`, `prompts` and `datasets` and imports only the base layer (`errors`, `hashing`).
"""

from honed.reports.html import (
    CSS,
    Html,
    cell,
    esc,
    facts,
    format_p,
    format_usd,
    hash_code,
    page,
    table,
    verdict_badge,
    write_page,
)
from honed.reports.svg import (
    ACCENT,
    CHAR_W,
    GRID,
    HIGHLIGHT,
    INK,
    MUTED,
    Mark,
    axis_ticks,
    dot_plot,
    nice_ticks,
    scatter,
    shorten,
    svg_open,
    svg_text,
    tick_format,
    whisker_h,
    whisker_v,
)

__all__ = [
    "ACCENT",
    "CHAR_W",
    "CSS",
    "GRID",
    "HIGHLIGHT",
    "INK",
    "MUTED",
    "Html",
    "Mark",
    "axis_ticks",
    "cell",
    "dot_plot",
    "esc",
    "facts",
    "format_p",
    "format_usd",
    "hash_code",
    "nice_ticks",
    "page",
    "scatter",
    "shorten",
    "svg_open",
    "svg_text",
    "table",
    "tick_format",
    "verdict_badge",
    "whisker_h",
    "whisker_v",
    "write_page",
]
