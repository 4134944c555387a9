"""Inline-SVG charts for honed's HTML reports: a dot plot with interval whiskers, a labelled scatter, and the
primitives (axis ticks, text, whiskers, the <svg> element) that other charts, like the ladder's, are built of.

Charts are plain strings of well-formed XML (every label escaped), so they embed in an HTML page as they are:
no scripts, no fonts, no external resources. A value of None is "not known" and is drawn as "n/a" (dot plot)
or left out (scatter), never as zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

ACCENT = "#2f6fb3"
HIGHLIGHT = "#d9480f"
GRID = "#e4e7eb"
INK = "#343a40"
MUTED = "#868e96"
CHAR_W = 7.2  # generous width of one character at font-size 12, to size label columns without a font engine


@dataclass(frozen=True)
class Mark:
    """One variant on a chart: a value with an optional interval [low, high]; `x` is used by the scatter."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    x: float | None = None
    highlight: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high], about `count` of them (steps of 1, 2, 2.5 or 5 x 10^k)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high - low < 1e-12:
        pad = abs(low) * 0.1 or 0.5
        low, high = low - pad, high + pad
    raw = (high - low) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw - 1e-12)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def tick_format(ticks: Sequence[float]) -> Callable[[float], str]:
    """A formatter with just enough decimals to tell the ticks apart."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = next((d for d in range(12) if abs(step * 10**d - round(step * 10**d)) < 1e-6), 12)
    return lambda v: f"{v:,.{decimals}f}"


def axis_ticks(values: Sequence[float], *, unit: bool, zero: bool = False) -> list[float]:
    """Ticks for the values; [0, 1] in tenths-of-five when they all fit there and `unit` is asked for; with
    `zero`, the range is stretched to include 0."""
    if not values:
        return [0.0, 0.25, 0.5, 0.75, 1.0]
    low, high = min(values), max(values)
    if unit and low >= 0.0 and high <= 1.0:
        return [0.0, 0.25, 0.5, 0.75, 1.0]
    return nice_ticks(min(low, 0.0) if zero else low, max(high, 0.0) if zero else high)


def shorten(label: str, limit: int) -> str:
    """`label` cut to `limit` characters, an ellipsis marking the cut."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def svg_text(x: float, y: float, body: str, *, anchor: str = "start", extra: str = "") -> str:
    """A <text> element; `body` is escaped, `extra` is attribute markup the caller built (not escaped)."""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(body)}</text>'


def svg_open(width: float, height: float, label: str) -> str:
    """The opening <svg> tag and its escaped title (for screen readers and tooltips); end with </svg>."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(label)}" '
        f'font-family="system-ui, sans-serif" font-size="12" fill="{INK}">'
        f"<title>{escape(label)}</title>"
    )


def whisker_h(x1: float, x2: float, y: float, colour: str) -> str:
    """A horizontal interval whisker from x1 to x2 at y, with end caps."""
    return (
        f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2"/>'
        f'<line x1="{x1:.1f}" y1="{y - 5:.1f}" x2="{x1:.1f}" y2="{y + 5:.1f}" stroke="{colour}"/>'
        f'<line x1="{x2:.1f}" y1="{y - 5:.1f}" x2="{x2:.1f}" y2="{y + 5:.1f}" stroke="{colour}"/>'
    )


def whisker_v(x: float, y1: float, y2: float, colour: str) -> str:
    """A vertical interval whisker from y1 to y2 at x, with end caps."""
    return (
        f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}" stroke="{colour}" stroke-width="2"/>'
        f'<line x1="{x - 5:.1f}" y1="{y1:.1f}" x2="{x + 5:.1f}" y2="{y1:.1f}" stroke="{colour}"/>'
        f'<line x1="{x - 5:.1f}" y1="{y2:.1f}" x2="{x + 5:.1f}" y2="{y2:.1f}" stroke="{colour}"/>'
    )


def dot_plot(marks: Sequence[Mark], *, title: str, axis_label: str, width: int = 860) -> str:
    """One row per mark: a dot at its value and a whisker over its interval, on a shared horizontal axis."""
    known = [v for m in marks for v in (m.value, m.low, m.high) if v is not None]
    ticks = axis_ticks(known, unit=True)
    fmt = tick_format(ticks)
    label_chars = min(max((len(m.label) for m in marks), default=8), 36)
    left, right, row, top = max(90.0, label_chars * CHAR_W + 20), 64.0, 26.0, 8.0
    height = top + row * len(marks) + 46
    span = width - left - right
    lo, hi = ticks[0], ticks[-1]

    def sx(v: float) -> float:
        return left + (v - lo) / (hi - lo) * span

    bottom = top + row * len(marks)
    parts = [svg_open(width, height, title)]
    for i in range(0, len(marks), 2):
        parts.append(f'<rect x="0" y="{top + i * row:.1f}" width="{width}" height="{row}" fill="#f8f9fa"/>')
    for t in ticks:
        x = sx(t)
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 5:.1f}" stroke="{INK}"/>'
        )
        parts.append(svg_text(x, bottom + 18, fmt(t), anchor="middle"))
    parts.append(
        f'<line x1="{left:.1f}" y1="{bottom:.1f}" x2="{left + span:.1f}" y2="{bottom:.1f}" stroke="{INK}"/>'
    )
    parts.append(
        svg_text(left + span / 2, bottom + 38, axis_label, anchor="middle", extra=f' fill="{MUTED}"')
    )
    for i, m in enumerate(marks):
        y = top + i * row + row / 2
        colour = HIGHLIGHT if m.highlight else ACCENT
        weight = ' font-weight="bold"' if m.highlight else ""
        parts.append(f'<g class="row"><title>{escape(m.label)}</title>')
        parts.append(svg_text(left - 10, y + 4, shorten(m.label, 36), anchor="end", extra=weight))
        if m.value is None:
            parts.append(svg_text(left + 6, y + 4, "n/a (no scores)", extra=f' fill="{MUTED}"'))
        else:
            if m.low is not None and m.high is not None:
                parts.append(whisker_h(sx(m.low), sx(m.high), y, colour))
            parts.append(f'<circle cx="{sx(m.value):.1f}" cy="{y:.1f}" r="5" fill="{colour}"/>')
            parts.append(svg_text(width - 8, y + 4, f"{m.value:.3f}", anchor="end"))
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def scatter(
    marks: Sequence[Mark], *, title: str, x_label: str, y_label: str, width: int = 860, height: int = 400
) -> str:
    """Each mark with both `x` and `value` as a labelled dot with a vertical whisker over [low, high].

    The x axis starts at zero (cost and tokens are never negative). Marks lacking x or value are left out;
    the caller says which.
    """
    shown = [(m, m.x, m.value) for m in marks if m.x is not None and m.value is not None]
    ticks_x = axis_ticks([x for _, x, _ in shown], unit=False, zero=True)
    ys = [v for m, _, _ in shown for v in (m.value, m.low, m.high) if v is not None]
    ticks_y = axis_ticks(ys, unit=True)
    fx, fy = tick_format(ticks_x), tick_format(ticks_y)
    left, right, top, bottom = 64.0, 24.0, 14.0, float(height - 48)
    span_x, span_y = width - left - right, bottom - top

    def sx(v: float) -> float:
        return left + (v - ticks_x[0]) / (ticks_x[-1] - ticks_x[0]) * span_x

    def sy(v: float) -> float:
        return bottom - (v - ticks_y[0]) / (ticks_y[-1] - ticks_y[0]) * span_y

    parts = [svg_open(width, height, title)]
    for t in ticks_x:
        x = sx(t)
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{GRID}"/>')
        parts.append(svg_text(x, bottom + 18, fx(t), anchor="middle"))
    for t in ticks_y:
        y = sy(t)
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + span_x:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(svg_text(left - 8, y + 4, fy(t), anchor="end"))
    parts.append(
        f'<path d="M{left:.1f},{top:.1f} V{bottom:.1f} H{left + span_x:.1f}" fill="none" stroke="{INK}"/>'
    )
    parts.append(svg_text(left + span_x / 2, height - 8, x_label, anchor="middle", extra=f' fill="{MUTED}"'))
    parts.append(
        svg_text(
            14,
            top + span_y / 2,
            y_label,
            anchor="middle",
            extra=f' fill="{MUTED}" transform="rotate(-90 14 {top + span_y / 2:.1f})"',
        )
    )
    placed: list[tuple[float, float, float]] = []  # label boxes (x0, x1, baseline y) already taken
    groups: list[tuple[bool, str]] = []
    # The baseline's label takes the first free spot; its dot is drawn last so that no other dot hides it.
    for m, mx, my in sorted(shown, key=lambda p: (not p[0].highlight, -p[2])):
        x, y = sx(mx), sy(my)
        colour = HIGHLIGHT if m.highlight else ACCENT
        label = shorten(m.label, 30)
        w = len(label) * CHAR_W
        x0 = x - 9 - w if x + 9 + w > width - 4 else x + 9
        ly = _free_row(placed, x0, w, y + 4, top + 10, bottom - 2)
        placed.append((x0, x0 + w, ly))
        whisker = "" if m.low is None or m.high is None else whisker_v(x, sy(m.high), sy(m.low), colour)
        weight = ' font-weight="bold"' if m.highlight else ""
        groups.append(
            (
                m.highlight,
                f'<g class="point"><title>{escape(m.label)}</title>{whisker}'
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}"/>'
                f"{svg_text(x0, ly, label, extra=weight)}</g>",
            )
        )
    parts += [g for first, g in groups if not first] + [g for first, g in groups if first]
    parts.append("</svg>")
    return "".join(parts)


def _free_row(
    placed: Sequence[tuple[float, float, float]], x0: float, w: float, y: float, low: float, high: float
) -> float:
    """The text baseline nearest `y` (0, +13, -13, +26, ... px) inside [low, high] where a label spanning
    [x0, x0 + w] overlaps no placed one: variants with equal cost and score must not print over each other."""
    for k in range(400):
        candidate = y + (k + 1) // 2 * 13 * (1 if k % 2 else -1)
        if low <= candidate <= high and not any(
            abs(candidate - py) < 13 and x0 < px1 and px0 < x0 + w for px0, px1, py in placed
        ):
            return candidate
    return y
