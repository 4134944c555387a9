"""Two inline-SVG charts for the ladder report: the ladder itself, and stacked bars of counts.

The ladder chart puts the steps in order along x and draws each evaluator as a series of means with CI
whiskers joined by a line; the primary series is drawn strongest and its dots say what the step bought
against the one before (filled green "better", filled red "worse", hollow grey "no detectable difference"),
so the eye follows the path and sees at once which rungs paid. The stacked bars show, per row, how a total
splits into categories (failure kinds per step). Like `honed.reports.svg`, whose primitives these reuse,
every label is escaped and a None value is "not known": left out, never drawn as zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from honed.reports import (
    ACCENT,
    CHAR_W,
    GRID,
    INK,
    MUTED,
    axis_ticks,
    shorten,
    svg_open,
    svg_text,
    tick_format,
    whisker_v,
)

__all__ = [
    "BETTER_COLOUR",
    "SERIES_COLOURS",
    "WORSE_COLOUR",
    "Point",
    "Series",
    "ladder_chart",
    "stacked_bars",
]

BETTER_COLOUR = "#2b8a3e"
WORSE_COLOUR = "#c92a2a"
#: Colours of the secondary series, in order (the primary one is ACCENT).
SERIES_COLOURS = ("#f08c00", "#ae3ec9", "#0c8599", "#495057")
_HALO = ' stroke="#fff" stroke-width="3" paint-order="stroke"'


@dataclass(frozen=True)
class Point:
    """One step's value on one series; `diff` and `verdict` (against the previous step) mark the primary."""

    value: float | None
    low: float | None = None
    high: float | None = None
    diff: float | None = None
    verdict: str | None = None


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]  # one per step, in step order
    colour: str = ACCENT
    primary: bool = False


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> tuple[list[str], float]:
    """Swatches (SVG snippet, label) laid out left to right from (x, y); returns the parts and the end x."""
    parts = []
    for swatch, label in items:
        parts.append(f'<g transform="translate({x:.1f},{y:.1f})">{swatch}</g>')
        parts.append(svg_text(x + 22, y + 4, label))
        x += 22 + len(label) * CHAR_W * 0.85 + 16
    return parts, x


def _dot(x: float, y: float, p: Point, colour: str, primary: bool) -> str:
    if not primary:
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'
    if p.verdict == "better":
        return (
            f'<circle class="better" cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{BETTER_COLOUR}" stroke="#fff"/>'
        )
    if p.verdict == "worse":
        return f'<circle class="worse" cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{WORSE_COLOUR}" stroke="#fff"/>'
    if p.verdict is not None:
        return (
            f'<circle class="same" cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#fff" stroke="{MUTED}" '
            'stroke-width="2.5"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{colour}"/>'


def ladder_chart(
    steps: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    width: int = 1040,
    height: int = 460,
) -> str:
    """The steps left to right; each series a line through its means, with a whisker over each CI."""
    known = [v for s in series for p in s.points for v in (p.value, p.low, p.high) if v is not None]
    ticks = axis_ticks(known, unit=True)
    fmt = tick_format(ticks)
    left, right, top, bottom = 58.0, 20.0, 58.0, float(height - 46)
    span_x, span_y = width - left - right, bottom - top
    slot = span_x / max(len(steps), 1)
    gap = min(14.0, slot / (len(series) + 3))

    def sy(v: float) -> float:
        return bottom - (v - ticks[0]) / (ticks[-1] - ticks[0]) * span_y

    # The primary series sits on the step's tick, the others beside it: one right, one left, and so on.
    others = [k for k, s in enumerate(series) if not s.primary]
    offset = {k: (j // 2 + 1) * gap * (1 if j % 2 == 0 else -1) for j, k in enumerate(others)}

    def sx(i: int, k: int) -> float:
        return left + (i + 0.5) * slot + offset.get(k, 0.0)

    parts = [svg_open(width, height, title)]
    items = [
        (
            f'<line x1="0" y1="0" x2="16" y2="0" stroke="{s.colour}" stroke-width="{3 if s.primary else 2}"/>'
            f'<circle cx="8" cy="0" r="{5 if s.primary else 4}" fill="{s.colour}"/>',
            f"{s.name} (primary)" if s.primary else s.name,
        )
        for s in series
    ]
    legend, end = _legend(items, left, 16)
    verdicts = [
        (f'<circle cx="8" cy="0" r="6" fill="{BETTER_COLOUR}"/>', "better than the step before"),
        (f'<circle cx="8" cy="0" r="6" fill="{WORSE_COLOUR}"/>', "worse"),
        (
            f'<circle cx="8" cy="0" r="5" fill="#fff" stroke="{MUTED}" stroke-width="2.5"/>',
            "no detectable difference",
        ),
    ]
    more, _ = _legend(verdicts, left if end > width / 2 else end + 12, 36 if end > width / 2 else 16)
    parts += legend + more
    for t in ticks:
        y = sy(t)
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + span_x:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(svg_text(left - 8, y + 4, fmt(t), anchor="end"))
    chars = max(4, int(slot / CHAR_W) - 1)
    for i, step in enumerate(steps):
        x = left + (i + 0.5) * slot
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 5:.1f}" stroke="{INK}"/>'
        )
        parts.append(f'<g class="step"><title>{escape(step)}</title>')
        parts.append(
            svg_text(
                x,
                bottom + 20,
                shorten(f"{i + 1}. {step}", chars),
                anchor="middle",
                extra=' font-weight="600"',
            )
        )
        parts.append("</g>")
    parts.append(
        f'<path d="M{left:.1f},{top - 6:.1f} V{bottom:.1f} H{left + span_x:.1f}" fill="none" stroke="{INK}"/>'
    )
    mid = top + span_y / 2
    parts.append(
        svg_text(
            14, mid, y_label, anchor="middle", extra=f' fill="{MUTED}" transform="rotate(-90 14 {mid:.1f})"'
        )
    )
    order = sorted(range(len(series)), key=lambda k: series[k].primary)  # the primary on top
    for k in order:
        s = series[k]
        width_ = 3 if s.primary else 2
        path, pen = [], "M"
        for i, p in enumerate(s.points):
            if p.value is None:
                pen = "M"
                continue
            path.append(f"{pen}{sx(i, k):.1f},{sy(p.value):.1f}")
            pen = "L"
        dash = "" if s.primary else ' stroke-dasharray="6 4" opacity="0.85"'
        parts.append(f'<g class="series"><title>{escape(s.name)}</title>')
        if path:
            parts.append(
                f'<path d="{" ".join(path)}" fill="none" stroke="{s.colour}" stroke-width="{width_}"{dash}/>'
            )
        for i, p in enumerate(s.points):
            if p.value is None:
                continue
            x, y = sx(i, k), sy(p.value)
            tip = f"{steps[i]}: {s.name} {p.value:.3f}" + (
                f" [{p.low:.3f}, {p.high:.3f}]" if p.low is not None and p.high is not None else ""
            )
            parts.append(f"<g><title>{escape(tip)}</title>")
            if p.low is not None and p.high is not None:
                parts.append(whisker_v(x, sy(p.high), sy(p.low), s.colour))
            parts.append(_dot(x, y, p, s.colour, s.primary))
            parts.append("</g>")
        parts.append("</g>")
    primary = next((k for k, s in enumerate(series) if s.primary), None)
    if primary is not None:
        parts += _primary_labels(
            series[primary], [sx(i, primary) for i in range(len(steps))], sy, top, bottom
        )
    parts.append("</svg>")
    return "".join(parts)


def _primary_labels(
    s: Series, xs: Sequence[float], sy: Callable[[float], float], top: float, bottom: float
) -> list[str]:
    """The mean above each primary whisker; a step's significant change above it (better) or under the
    whisker (worse), so the rungs that paid read without a legend."""
    parts = []
    for x, p in zip(xs, s.points, strict=True):
        if p.value is None:
            continue
        high = sy(p.high if p.high is not None else p.value) - 9
        low = sy(p.low if p.low is not None else p.value) + 18
        parts.append(
            svg_text(
                x, max(top - 2, high), f"{p.value:.2f}", anchor="middle", extra=' font-weight="600"' + _HALO
            )
        )
        if p.verdict in ("better", "worse") and p.diff is not None:
            better = p.verdict == "better"
            label = f"{'▲' if better else '▼'} {p.diff:+.2f}".replace("-", "−")
            y = max(top - 2, high) - 15 if better else min(bottom - 4, low)
            colour = BETTER_COLOUR if better else WORSE_COLOUR
            parts.append(
                svg_text(
                    x,
                    y,
                    label,
                    anchor="middle",
                    extra=f' class="delta" fill="{colour}" font-weight="700"{_HALO}',
                )
            )
    return parts


def stacked_bars(
    rows: Sequence[tuple[str, Mapping[str, int]]],
    categories: Sequence[tuple[str, str, str]],
    *,
    title: str,
    width: int = 1040,
) -> str:
    """One horizontal bar per (label, counts) row, split into `categories` (key, legend label, colour), each
    segment as wide as its share of the row's total and labelled with its count when it fits."""
    label_chars = min(max((len(label) for label, _ in rows), default=8), 30)
    left, right, top, row = max(80.0, label_chars * CHAR_W + 16), 70.0, 40.0, 30.0
    height = top + row * len(rows) + 10
    span = width - left - right
    parts = [svg_open(width, height, title)]
    swatches = [
        (f'<rect x="0" y="-6" width="16" height="12" fill="{c}"/>', name) for _, name, c in categories
    ]
    legend, _ = _legend(swatches, left, 16)
    parts += legend
    for i, (label, counts) in enumerate(rows):
        y = top + i * row
        total = max(sum(counts.get(k, 0) for k, _, _ in categories), int(counts.get("n", 0)))
        parts.append(f'<g class="bar"><title>{escape(label)}</title>')
        parts.append(
            svg_text(left - 10, y + 17, shorten(label, 30), anchor="end", extra=' font-weight="600"')
        )
        parts.append(f'<rect x="{left:.1f}" y="{y + 4:.1f}" width="{span:.1f}" height="18" fill="#f1f3f5"/>')
        x = left
        for key, name, colour in categories:
            n = counts.get(key, 0)
            if n <= 0 or total <= 0:
                continue
            w = n / total * span
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4:.1f}" width="{w:.1f}" height="18" fill="{colour}">'
                f"<title>{escape(f'{label}: {name} {n} of {total}')}</title></rect>"
            )
            if len(str(n)) * CHAR_W + 6 <= w:
                parts.append(
                    svg_text(
                        x + w / 2, y + 17, str(n), anchor="middle", extra=' fill="#fff" font-weight="600"'
                    )
                )
            x += w
        parts.append(svg_text(left + span + 8, y + 17, f"n={total}", extra=f' fill="{MUTED}"'))
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
