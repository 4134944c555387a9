"""A ladder's ledger (and its diagnosis) as one self-contained HTML page.

The page reads a ledger as `Ledger.to_dict()` returns it: plain JSON-compatible dicts, so a stored ledger of
any age renders. Fields newer than the ledger (failure categories, changes, fine-tuning, the diagnosis) may
be missing and are then said to be missing, never invented. Like the run report
(`honed.experiments.report_html`), it is built of the report kit (`honed.reports`), so it needs nothing but
itself (inline CSS and SVG, no scripts, fonts or links) and every string from a user is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from honed import reports
from honed.errors import InvalidInputError
from honed.optimize.charts import SERIES_COLOURS, Point, Series, ladder_chart, stacked_bars
from honed.reports import Html, Mark, esc

__all__ = ["LADDER_CSS", "ladder_sections", "render_ladder_html", "write_ladder_html"]

STEP_FAILURES = (
    ("ok", "ok", "#2f9e44"),
    ("format", "format (right content, wrong form)", "#f08c00"),
    ("retrieval_miss", "retrieval miss", "#1c7ed6"),
    ("generation_miss", "generation miss", "#7048e8"),
    ("other", "other", "#868e96"),
    ("error", "error", "#e03131"),
)
DIAGNOSIS_FAILURES = (
    ("ok", "ok", "#2f9e44"),
    ("format", "right content, wrong form", "#f08c00"),
    ("context", "fixed by gold context", "#1c7ed6"),
    ("persistent", "wrong even with gold context", "#7048e8"),
    ("error", "error", "#e03131"),
)
AXES = {
    "context": "what the model knows: give it the context (retrieval, prompt stuffing)",
    "behaviour": "how the model acts: show and constrain it (few-shot, output format, fine-tuning)",
    "both": "what the model knows and how it acts: the techniques add up",
    "neither": "no detectable gap on either axis on these cases",
}

NUMERIC = ' class="n"'
#: What the ladder page adds to the report kit's stylesheet.
LADDER_CSS = """
.wide{overflow-x:auto}.ci{display:block;color:#6c757d;font-size:11.5px;white-space:nowrap}
td ul{margin:2px 0 0;padding-left:16px;font-size:12px;color:#495057}
table.ledger{table-layout:fixed;width:100%}table.ledger .v{white-space:normal}
table.ledger th:first-child{background:#f1f3f5;width:180px}
.axis{font-size:38px;font-weight:800;letter-spacing:.08em;text-transform:uppercase;margin:10px 0 0}
.axis-context{color:#1c7ed6}.axis-behaviour{color:#f08c00}.axis-both{color:#7048e8}.axis-neither{color:#495057}
.warn{color:#c92a2a;font-weight:600}ol.rec li{margin:4px 0}.summary{max-width:900px}
"""


def _f(value: object) -> float | None:
    """A number to show, or None (also for non-numbers and NaN: a hand-edited ledger must not crash)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _interval(value: object) -> tuple[float, float] | None:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        return None
    low, high = _f(value[0]), _f(value[1])
    return None if low is None or high is None else (low, high)


def _na(text: str = "n/a") -> Html:
    return Html(f'<span class="na">{esc(text)}</span>')


def _mean_ci(q: object) -> Html:
    """A mean with its CI under it, or n/a."""
    return _with_ci(q, "mean", ".3f")


def _diff_ci(d: object) -> Html:
    """A difference, signed, with its CI under it, or n/a."""
    return _with_ci(d, "diff", "+.3f")


def _with_ci(entry: object, key: str, spec: str) -> Html:
    """`entry[key]` with `entry["ci"]` under it, both in the format `spec`, or n/a."""
    value = _f(entry.get(key)) if isinstance(entry, Mapping) else None
    if value is None or not isinstance(entry, Mapping):
        return _na()
    ci = _interval(entry.get("ci"))
    return Html(
        f"{value:{spec}}" + (f'<span class="ci">[{ci[0]:{spec}}, {ci[1]:{spec}}]</span>' if ci else "")
    )


def _mark(label: str, q: object, *, x: float | None = None, highlight: bool = False) -> Mark:
    """A chart mark from a quality entry {"mean", "ci", ...} (anything else is a mark with no value)."""
    if not isinstance(q, Mapping):
        return Mark(label, None, x=x, highlight=highlight)
    ci = _interval(q.get("ci"))
    low, high = ci if ci else (None, None)
    return Mark(label, _f(q.get("mean")), low, high, x=x, highlight=highlight)


def _tokens(value: object) -> str:
    v = _f(value)
    return "n/a" if v is None else f"{v:,.0f}"


def _status(status: object) -> Html:
    text = str(status or "unknown")
    return Html(esc(text) if text == "completed" else f'<span class="warn">{esc(text)}</span>')


def _compare(d: Mapping[str, Any] | None, ev: str) -> Mapping[str, Any]:
    got = (d or {}).get(ev)
    return got if isinstance(got, Mapping) else {}


def _roles(ledger: Mapping[str, Any], evaluators: Sequence[str]) -> dict[str, str]:
    """Each evaluator's name as the page shows it: the content and form evaluators say which they are."""
    out = {ev: ev for ev in evaluators}
    for key, role in (("correct", "content"), ("format", "form")):
        name = ledger.get(key)
        if isinstance(name, str) and name in out and name != ledger.get("primary"):
            out[name] = f"{name} ({role})"
    return out


def _header(ledger: Mapping[str, Any], steps: Sequence[Mapping[str, Any]], primary: str) -> str:
    name = str(ledger.get("name") or "ladder")
    run = str(ledger.get("run_id") or "n/a")
    evaluators = ", ".join(_roles(ledger, ledger.get("evaluators") or []).values())
    items = [
        (
            "dataset",
            Html(f"{esc(ledger.get('dataset') or 'n/a')} {reports.hash_code(ledger.get('dataset_hash'))}"),
        ),
        ("split", ledger.get("split") or "all cases"),
        ("cases", ledger.get("n_cases", "n/a")),
        ("run", Html(f"<code>{esc(run)}</code> · {_status(ledger.get('run_status'))}")),
        ("primary evaluator", primary or "n/a"),
        ("evaluators", evaluators or "n/a"),
    ]
    return (
        f"<header><h1>{esc(name)}</h1>"
        f'<p class="sub">optimisation ladder · {len(steps)} step(s), each one change on the one before, '
        "all run on the same pinned cases</p>"
        f"{reports.facts(items)}</header>"
    )


def _ladder(ledger: Mapping[str, Any], steps: Sequence[Mapping[str, Any]], primary: str) -> str:
    evaluators = [str(e) for e in ledger.get("evaluators") or []]
    names = _roles(ledger, evaluators)
    others = [e for e in evaluators if e != primary]
    series = []
    for k, ev in enumerate([primary, *others]):
        points = []
        for s in steps:
            q = (s.get("quality") or {}).get(ev) or {}
            ci = _interval(q.get("ci"))
            d = _compare(s.get("vs_previous"), ev) if ev == primary else {}
            points.append(
                Point(
                    _f(q.get("mean")),
                    ci[0] if ci else None,
                    ci[1] if ci else None,
                    diff=_f(d.get("diff")),
                    verdict=str(d["verdict"]) if d.get("verdict") is not None else None,
                )
            )
        colour = SERIES_COLOURS[(k - 1) % len(SERIES_COLOURS)] if k else "#2f6fb3"
        series.append(Series(names.get(ev, ev), points, colour=colour, primary=k == 0))
    chart = ladder_chart(
        [str(s.get("id", "")) for s in steps],
        series,
        title=f"{primary}: mean per step with CI, and the other evaluators",
        y_label="mean score",
    )
    return (
        f"<h2>The ladder</h2>{chart}"
        f'<p class="note">Mean {esc(primary)} score per step (solid line) with its confidence interval; the '
        "other evaluators dashed, beside it. Each step is compared with the step before it on the same cases "
        "(paired bootstrap CI, permutation p): a filled green dot and ▲ say it is better, red and ▼ worse, "
        "a hollow grey dot that no difference was detected.</p>"
    )


def _note_cell(s: Mapping[str, Any]) -> Html:
    out = esc(s.get("note") or "")
    items = [str(c) for c in s.get("changes") or []]
    ft = s.get("finetune")
    if isinstance(ft, Mapping):
        reused = " (reused)" if ft.get("reused") else ""
        items.append(
            f"fine-tuned {ft.get('model', '?')}{reused} by job {ft.get('job', '?')} "
            f"on {ft.get('train_examples', '?')} examples"
        )
    if items:
        out += "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"
    return Html(out or '<span class="na">–</span>')


def _calls(s: Mapping[str, Any]) -> Html:
    errors = s.get("errors") or 0
    failed = f' <span class="warn">({esc(errors)} failed)</span>' if errors else ""
    return Html(f"{esc(s.get('calls', 'n/a'))}{failed}")


def _ledger_table(ledger: Mapping[str, Any], steps: Sequence[Mapping[str, Any]], primary: str) -> str:
    """One column per step, as on the chart above it; one row per measure (numeric rows right-aligned)."""
    names = _roles(ledger, [str(e) for e in ledger.get("evaluators") or []])
    prev = [_compare(s.get("vs_previous"), primary) for s in steps]
    first = [_compare(s.get("vs_first"), primary) for s in steps]
    quality: list[tuple[str, bool, list[object]]] = [
        (f"{label} [CI]", True, [_mean_ci((s.get("quality") or {}).get(ev)) for s in steps])
        for ev, label in names.items()
    ]
    rows: list[tuple[str, bool, list[object]]] = [
        ("note", False, [_note_cell(s) for s in steps]),
        ("prompt", False, [Html(f"<code>{esc(s.get('prompt', ''))}</code>") for s in steps]),
        ("model", False, [s.get("model", "") for s in steps]),
        ("calls", True, [_calls(s) for s in steps]),
        *quality,
        (f"Δ {primary} vs previous [CI]", True, [_diff_ci(d) if d else _na("first step") for d in prev]),
        ("p (permutation)", True, [reports.format_p(_f(d.get("p_value"))) if d else "" for d in prev]),
        (
            "verdict",
            True,
            [reports.verdict_badge(str(d["verdict"])) if d.get("verdict") else "" for d in prev],
        ),
        (f"Δ {primary} vs first [CI]", True, [_diff_ci(d) if d else "" for d in first]),
        ("input tokens", True, [_tokens(s.get("mean_input_tokens")) for s in steps]),
        ("output tokens", True, [_tokens(s.get("mean_output_tokens")) for s in steps]),
        ("latency p50 / p95", True, [_latency_cell(s) for s in steps]),
        ("cost / 1k calls", True, [_cost_cell(s) for s in steps]),
    ]
    head = "".join(f'<th class="n">{i + 1}. {esc(s.get("id", ""))}</th>' for i, s in enumerate(steps))
    body = "".join(
        f"<tr><th>{esc(label)}</th>"
        + "".join(f"<td{NUMERIC if numeric else ''}>{reports.cell(c)}</td>" for c in cells)
        + "</tr>"
        for label, numeric, cells in rows
    )
    wide = 180 + 130 * len(steps)  # columns stay readable; a long ladder scrolls sideways
    notional = notional_note(steps)
    priced = f"; at a notional price, never charged, for {notional}" if notional else ""
    return (
        f'<h2>The ledger</h2><div class="wide"><table class="ledger" style="min-width:{wide}px">'
        f"<thead><tr><th></th>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
        f'<p class="note">Tokens are means per answered call. {esc(latency_note(steps))} Cost is per 1,000 '
        f"calls at the model's price (unknown when the price is){esc(priced)}.</p>"
    )


def latency_note(steps: Sequence[Mapping[str, Any]]) -> str:
    """What the ledger's latency figures are: the time in the model, and over which calls."""
    modes = {(s.get("latency_mode"), s.get("latency_calls")) for s in steps if _f(s.get("latency_p50_s"))}
    probed = sorted({int(n) for m, n in modes if m == "one at a time" and isinstance(n, int)})
    if probed and all(m == "one at a time" for m, _ in modes):
        calls = "/".join(str(n) for n in probed)
        return (
            f"Latency is the time in the model per call, p50/p95 of {calls} calls per step made one at a "
            "time after the run; queued time apart."
        )
    if any(m is None for m, _ in modes):  # a ledger from before latencies were split
        return "Latency is the median per call in the run, queueing for a batch included."
    return (
        "Latency is the time in the model per call, p50/p95 (queued time apart): of calls made one at a "
        "time where a step says so, else of the run's own calls, which share batches."
    )


def notional_note(steps: Sequence[Mapping[str, Any]]) -> str:
    """The notional prices behind the cost figures ("" if none): which model, at what, set where."""
    seen: dict[str, str] = {}
    for s in steps:
        price = s.get("notional_price")
        if not isinstance(price, Mapping):
            continue
        rates = _f(price.get("input")), _f(price.get("output"))
        if rates[0] is not None and rates[1] is not None:
            model = str(s.get("model", "")).split("+")[0]
            seen.setdefault(
                model,
                f"{model} at ${rates[0]:g} in / ${rates[1]:g} out per million tokens "
                f"({price.get('source') or 'set'})",
            )
    return "; ".join(seen.values())


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _latency_cell(s: Mapping[str, Any]) -> Html:
    p50, p95 = _f(s.get("latency_p50_s")), _f(s.get("latency_p95_s"))
    if p50 is None:
        return _na()
    text = _seconds(p50) + ("" if p95 is None else f" / {_seconds(p95)}")
    mode, calls = s.get("latency_mode"), s.get("latency_calls")
    how = f"{calls} calls {mode}" if mode and calls else (str(mode) if mode else "")
    return Html(esc(text) + (f'<span class="ci">{esc(how)}</span>' if how else ""))


def _cost_cell(s: Mapping[str, Any]) -> Html:
    notional = _f(s.get("notional_cost_per_1k_usd"))
    if notional is not None:
        return Html(f'{esc(reports.format_usd(notional))}<span class="ci">notional price</span>')
    return Html(esc(reports.format_usd(_f(s.get("cost_per_1k_usd")))))


def cost_of(s: Mapping[str, Any]) -> float | None:
    """The cost per 1,000 calls to compare steps by: at the notional price where one is set."""
    notional = _f(s.get("notional_cost_per_1k_usd"))
    return notional if notional is not None else _f(s.get("cost_per_1k_usd"))


def _tradeoffs(steps: Sequence[Mapping[str, Any]], primary: str) -> str:
    out = [
        "<h2>Quality vs cost and latency</h2>"
        f'<p class="note">One point per step: its mean {esc(primary)} with the CI; the first step in orange. '
        "Up and to the left is better.</p>"
    ]
    notional = any(_f(s.get("notional_cost_per_1k_usd")) is not None for s in steps)
    cost_label = "cost per 1,000 calls (USD" + (", notional price)" if notional else ")")
    for value, label, what in (
        (cost_of, cost_label, "cost"),
        (lambda s: _f(s.get("latency_p50_s")), "time in the model per call, p50 (s)", "latency"),
    ):
        marks = [
            _mark(
                str(s.get("id", "")),
                (s.get("quality") or {}).get(primary),
                x=value(s),
                highlight=i == 0,
            )
            for i, s in enumerate(steps)
        ]
        shown = [m for m in marks if m.x is not None and m.value is not None]
        out.append(f"<h3>{esc(primary)} vs {esc(label)}</h3>")
        if what == "cost" and shown and all(m.x == 0 for m in shown):
            out.append(
                '<p class="note">Every step costs $0 here (the model is free to run), so there is nothing '
                "to plot. To compare steps on cost, give the model a notional price, e.g. a comparable "
                "hosted model's: <code>notional_prices:</code> in the plan, or <code>notional = true</code> "
                'under <code>[prices."MODEL"]</code> in honed.toml.</p>'
            )
            continue
        if shown:
            y_label = f"mean {primary}"
            out.append(
                reports.scatter(
                    marks,
                    title=f"{y_label} vs {label}",
                    x_label=label,
                    y_label=y_label,
                    width=1040,
                    height=360,
                )
            )
        missing = [m.label for m in marks if m not in shown]
        if missing:
            listed = esc(", ".join(missing))
            out.append(f'<p class="note">Not plotted ({esc(what)} unknown, or no score): {listed}.</p>')
    return "".join(out)


def _counts_table(
    rows: Sequence[tuple[str, Mapping[str, Any]]], categories: Sequence[tuple[str, str, str]], first: str
) -> str:
    body = [
        [label, _tokens(c.get("n")), *[_tokens(c.get(key, 0)) for key, _, _ in categories]]
        for label, c in rows
    ]
    headers = [first, "results", *[key.replace("_", " ") for key, _, _ in categories]]
    return reports.table(headers, body, numeric=range(1, len(headers)))


def _failures(steps: Sequence[Mapping[str, Any]]) -> str:
    rows = [(str(s.get("id", "")), s["failures"]) for s in steps if isinstance(s.get("failures"), Mapping)]
    out = ["<h2>Failure categories per step</h2>"]
    if not rows:
        return out[0] + '<p class="note">This ledger has no failure categories.</p>'
    counts = [(label, {k: int(_f(v) or 0) for k, v in c.items()}) for label, c in rows]
    out.append(stacked_bars(counts, STEP_FAILURES, title="results per failure category, per step"))
    out.append(_counts_table(rows, STEP_FAILURES, "step"))
    out.append(
        '<p class="note">Each result in one category: ok (the primary evaluator passed); format (right '
        "content, wrong form: behaviour); retrieval miss (wrong, and no gold context retrieved); generation "
        "miss (wrong although the gold context was retrieved); other (wrong, nothing retrieved); error.</p>"
    )
    missing = [str(s.get("id", "")) for s in steps if not isinstance(s.get("failures"), Mapping)]
    if missing:
        out.append(f'<p class="note">No categories for: {esc(", ".join(missing))}.</p>')
    return "".join(out)


def _diagnosis(d: Mapping[str, Any] | None) -> str:
    head = "<h2>Diagnosis: context or behaviour?</h2>"
    if not isinstance(d, Mapping):
        return head + '<p class="note">No diagnosis was run.</p>'
    axis = str(d.get("axis") or "unknown")
    kind = axis if axis in AXES else "neither"
    items = [
        ("prompt", Html(f"<code>{esc(d.get('prompt', 'n/a'))}</code>")),
        ("model", d.get("model", "n/a")),
        ("cases", d.get("n_cases", "n/a")),
        ("run", Html(f"<code>{esc(d.get('run_id', 'n/a'))}</code> · {_status(d.get('run_status'))}")),
    ]
    out = [
        head,
        f'<p class="axis axis-{kind}">{esc(axis)}</p>',
        f'<p class="note">{esc(AXES.get(axis, "an axis this page does not know"))}</p>',
        f'<p class="summary">{esc(d.get("summary") or "")}</p>',
        reports.facts(items),
        "<h3>Recommendation</h3>",
    ]
    recs = [r for r in d.get("recommendation") or [] if isinstance(r, Mapping)]
    lis = "".join(f"<li><b>{esc(r.get('technique', ''))}</b>: {esc(r.get('why', ''))}</li>" for r in recs)
    out.append(f'<ol class="rec">{lis}</ol>' if recs else '<p class="note">None.</p>')
    ablations = [a for a in d.get("ablations") or [] if isinstance(a, Mapping)]
    evs = list(dict.fromkeys(ev for a in ablations for ev in a.get("quality") or {}))
    rows = [
        [
            Html(f"<b>{esc(a.get('id', ''))}</b>"),
            a.get("description", ""),
            *[_mean_ci((a.get("quality") or {}).get(ev)) for ev in evs],
        ]
        for a in ablations
    ]
    ablation_table = reports.table(
        ["ablation", "what it changes", *evs], rows, numeric=range(2, 2 + len(evs))
    )
    out.append(f"<h3>Ablations</h3>{ablation_table}")
    primary = str(d.get("primary") or (evs[0] if evs else ""))
    if primary in evs:
        marks = [
            _mark(str(a.get("id", "")), (a.get("quality") or {}).get(primary), highlight=a is ablations[0])
            for a in ablations
        ]
        out.append(
            reports.dot_plot(marks, title=f"{primary} per ablation", axis_label=f"mean {primary}", width=1040)
        )
    effects = [
        [
            e.get("name", ""),
            e.get("evaluator", ""),
            Html(f"{esc(e.get('variant', ''))} vs {esc(e.get('against', ''))}"),
            _diff_ci(e),
            reports.format_p(_f(e.get("p_value"))),
            reports.verdict_badge(str(e.get("verdict", ""))),
            e.get("meaning", ""),
        ]
        for e in d.get("effects") or []
        if isinstance(e, Mapping)
    ]
    headers = ["effect", "evaluator", "variant vs against", "diff [CI]", "p", "verdict", "meaning"]
    out.append(f"<h3>Effects</h3>{reports.table(headers, effects, numeric=(3, 4))}")
    failures = d.get("failures")
    if isinstance(failures, Mapping):
        counts = {k: int(_f(v) or 0) for k, v in failures.items() if not k.endswith("_ci")}
        out.append("<h3>Failures of the prompt as it is</h3>")
        out.append(
            stacked_bars([("as-is", counts)], DIAGNOSIS_FAILURES, title="as-is results by failure kind")
        )
        out.append(_counts_table([("as-is", failures)], DIAGNOSIS_FAILURES, "ablation"))
    return "".join(out)


def ladder_sections(ledger: Mapping[str, Any], diagnosis: Mapping[str, Any] | None = None) -> str:
    """The page's body: header, ladder chart, ledger, trade-offs, failures and diagnosis (also the web UI's
    ladder page, which serves `LADDER_CSS` as a stylesheet: its policy allows no inline style)."""
    steps = [s for s in ledger.get("steps") or [] if isinstance(s, Mapping)]
    evaluators = [str(e) for e in ledger.get("evaluators") or []]
    primary = str(ledger.get("primary") or (evaluators[0] if evaluators else ""))
    sections = [
        _header(ledger, steps, primary),
        _ladder(ledger, steps, primary),
        _ledger_table(ledger, steps, primary),
        _tradeoffs(steps, primary),
        _failures(steps),
        _diagnosis(diagnosis if diagnosis is not None else ledger.get("diagnosis")),
    ]
    return "".join(sections)


def render_ladder_html(ledger: dict[str, Any], diagnosis: dict[str, Any] | None = None) -> str:
    """The ledger (as `Ledger.to_dict()`) and its diagnosis (else the ledger's own) as one HTML page."""
    name, run = str(ledger.get("name") or "ladder"), str(ledger.get("run_id") or "n/a")
    return reports.page(
        f"{name}: honed optimisation ladder",
        ladder_sections(ledger, diagnosis),
        footer=f"Generated by honed from ladder run {run}.",
        css=LADDER_CSS,
    )


def write_ladder_html(ledger: dict[str, Any], path: Path, diagnosis: dict[str, Any] | None = None) -> Path:
    """Write the page to `path` atomically: a temporary file in the same folder, then a rename, so a reader
    never sees half a page. The folder must exist (a typo in it should not create a tree of folders)."""
    folder = path.parent
    if not folder.is_dir():
        raise InvalidInputError(
            f"cannot write the report to {path}: the folder {folder} does not exist",
            hint="create it first, or choose another path",
        )
    return reports.write_page(render_ladder_html(ledger, diagnosis), path)
