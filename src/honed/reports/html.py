"""The kit behind honed's self-contained HTML pages: the page shell and its CSS, escaping, tables, facts,
the verdict badge, a few formatters, and the atomic write.

A page needs nothing but itself (inline CSS and SVG; no scripts, fonts or links), so it can be attached to a
ticket or opened years later. Escaping is the default: every helper escapes the text it is given, and only
markup wrapped in `Html` (built by a report from already-escaped parts) passes through a table cell or a fact
as it is. A report that wraps user text in `Html` without escaping it is the one way to break that.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from html import escape
from pathlib import Path

from honed.errors import InvalidInputError
from honed.hashing import short

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#212529;max-width:1120px;
margin:24px auto;padding:0 20px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 8px;padding-top:12px;
border-top:2px solid #dee2e6}h3{font-size:15px;margin:20px 0 6px}
.sub{color:#495057;margin:0 0 14px}.note{color:#6c757d;font-size:13px;margin:4px 0}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #e9ecef;text-align:left;vertical-align:top}
th{background:#f1f3f5;font-weight:600;white-space:nowrap}td.n,th.n{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}tr:nth-child(even) td{background:#fafbfc}
.v{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap}
.v-better{background:#d3f9d8;color:#2b8a3e}.v-worse{background:#ffe3e3;color:#c92a2a}
.v-none{background:#e9ecef;color:#495057}.base{font-size:11px;color:#d9480f;font-weight:600;margin-left:6px}
.na{color:#adb5bd}dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dt{color:#6c757d}dd{margin:0}details{margin:4px 0}summary{cursor:pointer}
ul.cases{columns:3 260px;margin:6px 0;padding-left:20px;font-size:13px}
ul.msgs{margin:4px 0;padding-left:20px;font-size:13px}
svg{max-width:100%;height:auto;display:block;margin:6px 0 4px}
.wide{overflow-x:auto}table.matrix td{min-width:13em;max-width:32em}
.out{white-space:pre-wrap;overflow-wrap:anywhere;max-height:18em;overflow-y:auto;margin:0 0 4px;
font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
.sc{font-size:12px;color:#495057}.pass{color:#2b8a3e;font-weight:600}.fail{color:#c92a2a;font-weight:600}
.err{color:#c92a2a;font-size:12px;overflow-wrap:anywhere}.chg{font-size:12px}.q{margin:4px 0}
"""


class Html(str):
    """Markup a report built itself from escaped parts: table cells and facts pass it through unescaped."""


def esc(value: object) -> str:
    """`str(value)` escaped for HTML text and attribute values (quotes included)."""
    return escape(str(value))


def cell(value: object) -> str:
    """A value as cell content: `Html` as it is, anything else escaped."""
    return value if isinstance(value, Html) else esc(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    """A table; cells are escaped unless they are `Html`; the `numeric` columns are right-aligned."""

    def cls(i: int) -> str:
        return ' class="n"' if i in numeric else ""

    head = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{cell(c)}</td>" for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def facts(items: Sequence[tuple[str, object]]) -> str:
    """A definition list of (name, value) pairs; values are escaped unless they are `Html`."""
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{cell(v)}</dd>" for k, v in items)
    return f"<dl>{dl}</dl>"


def verdict_badge(verdict: str) -> Html:
    """A comparison's verdict as a coloured badge. The CSS classes are named after the verdicts of
    `honed.evals.stats` ("better", "worse"); any other verdict is neutral. The strings are matched here, not
    imported, so that this kit sits below the statistics it shows."""
    kind = verdict if verdict in ("better", "worse") else "none"
    return Html(f'<span class="v v-{kind}">{esc(verdict)}</span>')


def hash_code(value: object) -> Html:
    """A content hash shown short, the whole of it in the tooltip; n/a when there is none."""
    text = str(value or "")
    return Html(
        f'<code title="{esc(text)}">{esc(short(text))}</code>' if text else '<span class="na">n/a</span>'
    )


def format_p(value: float | None) -> str:
    """A p-value with three significant digits; tiny ones as "<0.0001"."""
    if value is None:
        return "n/a"
    return "<0.0001" if value < 1e-4 else f"{value:.3g}"


def format_usd(value: float | None) -> str:
    """Dollars with cents, or with enough decimals to show a fraction of a cent; "unknown" for None."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.{max(2, 2 - math.floor(math.log10(abs(value))))}f}"


def page(title: str, body: str, *, footer: str, css: str = "") -> str:
    """A whole page: `title` and `footer` are text (escaped here), `body` is the report's markup, and `css`
    is added after the kit's own."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}{css}</style></head>"
        f"<body>{body}"
        f'<footer class="note"><p>{esc(footer)}</p></footer></body></html>\n'
    )


def write_page(text: str, path: Path) -> Path:
    """Write a page to `path` atomically: a temporary file in the same folder, then a rename, so a reader
    never sees half a page; an OSError is an InvalidInputError naming the path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise InvalidInputError(
            f"cannot write the report to {path}: {exc.strerror or exc}", hint="choose a writable path"
        ) from None
    return path
