"""A prompt search as one self-contained HTML page (the report kit: inline CSS and SVG, no scripts):
the verdict on test, the dev score of every candidate in the order the search made them, quality vs
prompt tokens, the candidates' lineage, and calls, tokens and cost by phase. It reads
`SearchResult.to_dict()`, so a stored result renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from honed import reports
from honed.reports import Html, Mark, esc

__all__ = ["render_search_html", "write_search_html"]


def _ci(d: dict[str, Any] | None) -> tuple[float | None, float | None, float | None]:
    if not d or d.get("mean") is None:
        return None, None, None
    ci = d.get("ci") or [None, None]
    return d["mean"], ci[0], ci[1]


def render_search_html(result: dict[str, Any]) -> str:
    primary = result["primary"]
    start, best, diff = result["start"], result["best"], result["diff"]
    out = [f"<h1>Prompt search {esc(result['name'])}</h1>"]
    out.append(
        reports.facts(
            [
                ("dataset", result["dataset"]),
                ("splits", ", ".join(f"{k} {v['name']} ({v['cases']})" for k, v in result["splits"].items())),
                ("student", result["student"]),
                ("proposer", result["proposer"]),
                ("primary evaluator", primary),
                ("calls", f"{result['calls']} ({result['fresh_calls']} not from the cache)"),
                ("cost", reports.format_usd(result.get("cost_usd"))),
                ("test run", result["test_run"]),
            ]
        )
    )
    out.append("<h2>Verdict on test</h2>")
    mean, low, high = _ci(diff)
    shown = "-" if mean is None else f"{mean:+.3f}"
    if low is not None and high is not None:
        shown += f" [{low:+.3f}, {high:+.3f}]"
    out.append(
        reports.table(
            ["", "version", f"dev {primary}", f"test {primary}"],
            [
                ["start", start["version"], _fmt(start.get("dev")), _fmt(start["test"])],
                ["chosen", best["version"], _fmt(best.get("dev")), _fmt(best["test"])],
                [
                    "chosen − start",
                    "",
                    "",
                    Html(
                        f"{esc(shown)} p {esc(reports.format_p(diff.get('p')))} "
                        + reports.verdict_badge(diff["verdict"])
                    ),
                ],
            ],
        )
    )
    candidates = result["candidates"]
    marks = []
    for c in candidates:
        m, lo, hi = _ci(c.get("dev"))
        label = f"{c['order']}. {c['version']} ({c['strategy']})"
        marks.append(
            Mark(label, m, lo, hi, x=c.get("prompt_tokens"), highlight=c["version"] == best["version"])
        )
    out.append("<h2>Dev score per candidate, in search order</h2>")
    out.append(reports.dot_plot(marks, title=f"dev {primary} per candidate", axis_label=f"mean {primary}"))
    out.append("<h2>Quality vs prompt tokens</h2>")
    out.append(
        reports.scatter(
            marks,
            title=f"dev {primary} vs prompt tokens",
            x_label="mean prompt tokens",
            y_label=f"dev {primary}",
        )
    )
    out.append("<h2>Candidates</h2>")
    out.append(
        reports.table(
            ["#", "version", "strategy", "parent", "what changed", f"dev {primary}", "prompt tokens"],
            [
                [
                    c["order"],
                    c["version"],
                    c["strategy"],
                    c.get("parent") or "-",
                    c["change"],
                    _fmt(c.get("dev")),
                    "-" if c.get("prompt_tokens") is None else f"{c['prompt_tokens']:.0f}",
                ]
                for c in candidates
            ],
            numeric=[0, 6],
        )
    )
    out.append("<h2>Calls, tokens and cost by phase</h2>")
    out.append(
        reports.table(
            ["phase", "calls", "not cached", "input tokens", "output tokens", "cost"],
            [
                [
                    k,
                    p["calls"],
                    p["fresh"],
                    p["input_tokens"],
                    p["output_tokens"],
                    reports.format_usd(p["cost_usd"]),
                ]
                for k, p in result["phases"].items()
            ],
            numeric=[1, 2, 3, 4],
        )
    )
    budget = result["budget"]
    limit = ", ".join(
        part
        for part in (
            f"{budget['calls']} calls" if budget.get("calls") else "",
            f"${budget['usd']}" if budget.get("usd") else "",
        )
        if part
    )
    note = f"Budget: {limit}; used {budget['used_calls']} calls, ${budget['used_usd']:.4f}."
    if budget.get("stopped"):
        note += f" The search stopped early: {budget['stopped']}."
    out.append(f"<p class='note'>{esc(note)}</p>")
    footer = "Candidates are chosen on the dev split only; the test split is run once, for the verdict."
    return reports.page(f"prompt search {result['name']}", "".join(out), footer=footer)


def write_search_html(result: dict[str, Any], path: Path) -> Path:
    return reports.write_page(render_search_html(result), path)


def _fmt(d: dict[str, Any] | None) -> str:
    m, lo, hi = _ci(d)
    if m is None:
        return "-"
    return f"{m:.3f}" + ("" if lo is None or hi is None else f" [{lo:.3f}, {hi:.3f}]")
