"""A run's report as one self-contained HTML file: tables, verdicts and two inline-SVG plots.

The page needs nothing but itself (inline CSS, inline SVG, no scripts, fonts or links), so it can be
attached to a ticket or opened years later. Every string that came from a user (variant and case ids, prompt
names, params) is escaped: table cells are escaped unless built as `Html` by this module. Model outputs,
inputs and references, in the cases section, are untrusted data: always escaped, shown as text. The page
shell, tables, escaping and charts are the report kit's (`honed.reports`); what is here is the run's own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from honed.evals.stats import CaseDelta, Comparison, Interval, ManyResult
from honed.experiments.analysis import RunReport
from honed.experiments.cases import CaseListing, CaseOutputs, CaseSample, CaseScore, ReportCases
from honed.experiments.latency import ONE_AT_A_TIME
from honed.reports import (
    Html,
    Mark,
    dot_plot,
    esc,
    facts,
    format_p,
    format_usd,
    hash_code,
    page,
    scatter,
    table,
    verdict_badge,
    write_page,
)

MAX_LISTED = 50

#: A matrix cell shows at most this many characters of an output, input or reference.
MAX_CELL_CHARS = 2000


def _num(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ci(interval: Interval | None, pct: bool = False) -> str:
    if interval is None:
        return "n/a"
    if pct:
        return f"[{interval.low:.1%}, {interval.high:.1%}]"
    return f"[{interval.low:.3f}, {interval.high:.3f}]"


def _latency(seconds: float | None, ok: int) -> str:
    if seconds is None:
        return "all cached" if ok > 0 else "n/a"
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:,.0f} ms"


def _variant(report: RunReport, variant: str) -> Html:
    badge = '<span class="base">baseline</span>' if variant == report.baseline else ""
    return Html(f"{esc(variant)}{badge}")


def _header(report: RunReport) -> str:
    run, spec = report.run, report.run.spec
    dataset = spec.get("dataset") or {}
    budget = spec.get("budget_usd")
    items = [
        ("run", Html(f"<code>{esc(run.id)}</code>")),
        ("status", run.status),
        ("created", run.created_at.isoformat(timespec="seconds")),
        ("dataset", Html(f"{esc(dataset.get('ref', 'n/a'))} {hash_code(dataset.get('hash'))}")),
        ("split", spec.get("split") or "all cases"),
        ("repeats", spec.get("repeats", "n/a")),
        ("budget", "none" if budget is None else format_usd(float(budget))),
        ("baseline", report.baseline),
    ]
    variants = [
        [
            _variant(report, str(v.get("id", ""))),
            v.get("prompt", ""),
            hash_code(v.get("prompt_hash")),
            v.get("model", ""),
            Html(f'<span class="mono">{esc(json.dumps(v.get("params") or {}, sort_keys=True))}</span>'),
        ]
        for v in spec.get("variants", [])
    ]
    evaluators = [
        [e.get("name", ""), (e.get("spec") or {}).get("type", ""), hash_code(e.get("version"))]
        for e in spec.get("evaluators", [])
    ]
    return (
        f"<header><h1>{esc(run.name or run.id)}</h1>"
        f'<p class="sub">experiment run {esc(run.id)} · {esc(run.status)} · '
        f"{len(report.variants)} variant(s) · {len(report.evaluators)} evaluator(s)</p>"
        f"{facts(items)}</header>"
        f"<h3>Variants</h3>{table(['variant', 'prompt', 'prompt hash', 'model', 'params'], variants)}"
        f"<h3>Evaluators</h3>{table(['evaluator', 'type', 'version'], evaluators)}"
    )


def _usage(report: RunReport) -> str:
    rows: list[list[object]] = []
    for v in report.variants:
        u = report.usage.get(v)
        if u is None:
            rows.append([_variant(report, v), *["n/a"] * 8])
            continue
        ok = u.calls - u.errors
        p50, p95 = u.latency_p50_s, u.latency_p95_s
        latency = _latency(p50, ok) if p95 is None else f"{_latency(p50, ok)} / {_latency(p95, ok)}"
        if u.latency_mode == ONE_AT_A_TIME:
            latency += " *"
        rows.append(
            [
                _variant(report, v),
                u.calls,
                u.errors,
                u.cached,
                format_usd(u.cost_usd),
                format_usd(u.cost_usd / ok) if u.cost_usd is not None and ok > 0 else "n/a",
                f"{u.input_tokens:,}",
                f"{u.output_tokens:,}",
                latency,
            ]
        )
    headers = [
        "variant",
        "calls",
        "errors",
        "cached",
        "cost",
        "cost/call",
        "in tokens",
        "out tokens",
        "latency p50 / p95",
    ]
    return (
        f"<h2>Calls and cost</h2>{table(headers, rows, numeric=range(1, 9))}"
        '<p class="note">Cost and tokens count successful calls. Latency is the time in the model per call, '
        "p50 / p95 (a cached answer keeps its call's time); time queued for a slot or a batch is apart."
        f"{_probe_note(report)}</p>"
    )


def _probe_note(report: RunReport) -> str:
    """What `*` means: calls timed one at a time after the run, and what the batched run measured."""
    probed = {v: u for v, u in report.usage.items() if u.latency_mode == ONE_AT_A_TIME}
    if not probed:
        return ""
    calls = "/".join(str(n) for n in sorted({u.latency_calls for u in probed.values() if u.latency_calls}))
    in_run = ", ".join(
        f"{esc(v)}: {_latency(u.run_latency_p50_s, 1)}" for v, u in probed.items() if u.run_latency_p50_s
    )
    return (
        f" * {calls} calls timed one at a time after the run: the model runs concurrent calls in batches, "
        "and a call that ran in a batch takes the batch's time"
        + (f" (p50 in the run: {in_run})." if in_run else ".")
    )


def _cost_axis(report: RunReport) -> tuple[str, dict[str, float | None]]:
    """The scatter's x: cost per call when every variant's cost is known and some is not zero, else the
    mean output tokens per call (the label says why)."""
    usage = [report.usage.get(v) for v in report.variants]
    costs = [None if u is None else u.cost_usd for u in usage]
    known = all(c is not None for c in costs)
    xs: dict[str, float | None] = {}
    for v, u in zip(report.variants, usage, strict=True):
        ok = 0 if u is None else u.calls - u.errors
        if u is None or ok <= 0:
            xs[v] = None
        elif known and any(costs):
            xs[v] = (u.cost_usd or 0.0) / ok
        else:
            xs[v] = u.output_tokens / ok
    if known and any(costs):
        return "cost per successful call (USD)", xs
    why = "all costs are $0" if known else "cost unknown"
    return f"mean output tokens per call ({why})", xs


def _case_list(title: str, items: Sequence[str], total: int) -> str:
    """A collapsed list of the first MAX_LISTED `items` of `total`; title and items are escaped HTML."""
    lis = "".join(f"<li>{item}</li>" for item in items[:MAX_LISTED])
    tail = f"<li>… and {total - MAX_LISTED} more</li>" if total > MAX_LISTED else ""
    return f'<details><summary>{title} ({total})</summary><ul class="cases">{lis}{tail}</ul></details>'


def _deltas(report: RunReport, variant: str, c: Comparison) -> str:
    def item(d: CaseDelta) -> str:
        flaky = " · flaky" if d.flaky else ""
        return f"<code>{esc(d.case_id)}</code> {d.score_a:.3f} → {d.score_b:.3f}{flaky}"

    parts = []
    for kind, deltas in (("improved", c.improvements), ("regressed", c.regressions)):
        if deltas:
            title = f"{esc(variant)} vs {esc(report.baseline)}: {kind}"
            parts.append(_case_list(title, [item(d) for d in deltas[:MAX_LISTED]], len(deltas)))
    return "".join(parts)


def _evaluator(
    report: RunReport, name: str, result: ManyResult, axis: tuple[str, dict[str, float | None]]
) -> str:
    summaries = {v: result.summaries.get(v) for v in report.variants}
    conf = next((s.ci.confidence for s in summaries.values() if s is not None and s.ci is not None), 0.95)
    rows: list[list[object]] = []
    for v, s in summaries.items():
        if s is None:
            rows.append([_variant(report, v), *["n/a"] * 7])
            continue
        rows.append(
            [
                _variant(report, v),
                s.n_scored,
                _num(s.mean),
                _ci(s.ci),
                _pct(s.pass_rate),
                _ci(s.pass_ci, pct=True),
                s.n_errors,
                len(s.flaky),
            ]
        )
    out = [
        f"<h2>Evaluator: {esc(name)}</h2>",
        f'<p class="note">{result.n_cases} case(s) shared by all variants. Mean: the mean of case means '
        f"with a {conf:.0%} percentile bootstrap CI; pass rate: cases passing in most of their runs, with a "
        "Wilson CI. Errored runs are excluded and counted, never scored as zero.</p>",
    ]
    dropped = {v: ids for v, ids in result.dropped.items() if ids}
    if dropped:
        listed = "; ".join(f"{esc(v)}: {len(ids)}" for v, ids in dropped.items())
        out.append(f'<p class="note">Cases left out because not every variant has them: {listed}.</p>')
    headers = ["variant", "cases scored", "mean", "CI", "pass rate", "pass CI", "errors", "flaky"]
    out.append(table(headers, rows, numeric=(1, 2, 3, 4, 5, 6, 7)))
    marks = [
        Mark(
            v, s.mean, s.ci.low if s.ci else None, s.ci.high if s.ci else None, highlight=v == report.baseline
        )
        if s is not None
        else Mark(v, None, highlight=v == report.baseline)
        for v, s in summaries.items()
    ]
    title = f"{name}: mean score per variant with {conf:.0%} CI"
    out.append(f"<h3>Score per variant</h3>{dot_plot(marks, title=title, axis_label=f'mean {name} score')}")
    if result.comparisons:
        out.append(_comparisons(report, result))
    flaky = [(v, s.flaky) for v, s in summaries.items() if s is not None and s.flaky]
    out.append("<h3>Flaky cases</h3>")
    if flaky:
        for v, ids in flaky:
            out.append(
                _case_list(f"{esc(v)}: flaky", [f"<code>{esc(i)}</code>" for i in ids[:MAX_LISTED]], len(ids))
            )
    else:
        repeats = report.run.spec.get("repeats", 1)
        why = "" if repeats and int(repeats) > 1 else " (flakiness shows only with repeats > 1)"
        out.append(f'<p class="note">No case changed pass/fail between repeats{why}.</p>')
    label, xs = axis
    points = [Mark(m.label, m.value, m.low, m.high, x=xs.get(m.label), highlight=m.highlight) for m in marks]
    y_label = f"mean {name} score"
    plot = scatter(points, title=f"{name}: {y_label} vs {label}", x_label=label, y_label=y_label)
    out.append(f"<h3>Quality vs cost</h3>{plot}")
    missing = [p.label for p in points if p.x is None or p.value is None]
    if missing:
        out.append(
            f'<p class="note">Not plotted (no scores or no successful calls): {esc(", ".join(missing))}.</p>'
        )
    return f'<section class="evaluator">{"".join(out)}</section>'


def _comparisons(report: RunReport, result: ManyResult) -> str:
    rows: list[list[object]] = []
    notes, cases = [], []
    for v, c in result.comparisons.items():
        mcnemar = c.passes.mcnemar.p_value if c.passes is not None else None
        rows.append(
            [
                _variant(report, v),
                c.n_used,
                _num(c.mean_diff, sign=True),
                _ci(c.ci),
                format_p(c.p_value),
                format_p(mcnemar),
                len(c.improvements),
                len(c.regressions),
                verdict_badge(c.verdict),
            ]
        )
        notes.append(f"<li><b>{esc(v)}</b>: {esc(c.message)}</li>")
        cases.append(_deltas(report, v, c))
    headers = [
        "variant",
        "cases",
        "diff",
        "CI",
        "p (permutation)",
        "p (McNemar)",
        "improved",
        "regressed",
        "verdict",
    ]
    changes = "".join(cases) or '<p class="note">No case changed.</p>'
    return (
        f"<h3>Paired comparison against {esc(report.baseline)}</h3>"
        f"{table(headers, rows, numeric=range(1, 8))}"
        f'<ul class="msgs">{"".join(notes)}</ul><h3>Cases that changed</h3>{changes}'
    )


def _errors(report: RunReport) -> str:
    """The run's errors grouped by message with counts (failed calls, evaluators that failed)."""
    if not report.errors:
        return ""
    rows = [
        [count, where, Html(f'<span class="mono">{esc(message)}</span>')]
        for where, message, count in report.errors
    ]
    return (
        f"<h2>Errors</h2>{table(['count', 'where', 'message'], rows, numeric=(0,))}"
        '<p class="note">"call": the model call failed after its retries (running the same command again '
        "retries it); otherwise the evaluator named failed on a result. A case without a reference or a "
        "human label is not a failure, only an absent score. The cases: "
        f"<code>honed experiments cases {esc(report.run.id)} --errors</code>.</p>"
    )


def _clip(text: str) -> str:
    if len(text) <= MAX_CELL_CHARS:
        return text
    return f"{text[:MAX_CELL_CHARS]} … (+{len(text) - MAX_CELL_CHARS} characters)"


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _case_cell(case: CaseOutputs) -> str:
    inputs = "".join(
        f'<div class="q"><span class="na">{esc(k)}:</span><div class="out">{esc(_clip(_text(v)))}</div></div>'
        for k, v in case.inputs.items()
    )
    changes = "".join(
        f'<div class="chg {"fail" if c.kind == "regression" else "pass"}">'
        f"{'regressed' if c.kind == 'regression' else 'improved'} on {esc(c.evaluator)} under "
        f"{esc(c.variant)}{' (flaky)' if c.flaky else ''}</div>"
        for c in case.changes
    )
    return f"<code>{esc(case.case_id)}</code>{changes}{inputs}"


def _score_html(score: CaseScore) -> str:
    if score.error is not None:
        what = "error" if score.failed else "no score"
        return f'<div class="err">{esc(score.evaluator)}: {what}: {esc(_clip(score.error))}</div>'
    value = "" if score.value is None else f"{score.value:.3g}"
    verdict = ""
    if score.passed is not None:
        verdict = ' <span class="pass">pass</span>' if score.passed else ' <span class="fail">fail</span>'
    reason = f" · {esc(_clip(score.reason))}" if score.reason else ""
    return f'<div class="sc">{esc(score.evaluator)}: {value}{verdict}{reason}</div>'


def _output_cell(samples: Sequence[CaseSample], repeats: int) -> str:
    if not samples:
        return '<span class="na">no result</span>'
    parts = []
    for sample in samples:
        head = f'<div class="na">sample {sample.sample}</div>' if repeats > 1 else ""
        error = f'<div class="err">call failed: {esc(_clip(sample.error))}</div>' if sample.error else ""
        output = "" if sample.output is None else f'<div class="out">{esc(_clip(sample.output))}</div>'
        scores = "".join(_score_html(s) for s in sample.scores)
        parts.append(f"{head}{error}{output}{scores}")
    return "".join(parts)


def _matrix(listing: CaseListing, commands: Sequence[str]) -> str:
    """One row per case: the case and its inputs, the reference, then each variant's output side by side."""
    if not listing.matched:
        return '<p class="note">None.</p>'
    headers = ["case and inputs", "reference"]
    headers += [f"{v} (baseline)" if v == listing.baseline else v for v in listing.variants]
    rows = [
        [
            Html(_case_cell(case)),
            Html(
                '<span class="na">none</span>'
                if case.reference is None
                else f'<div class="out">{esc(_clip(_text(case.reference)))}</div>'
            ),
            *[Html(_output_cell(case.outputs.get(v, ()), listing.repeats)) for v in listing.variants],
        ]
        for case in listing.cases
    ]
    matrix = table(headers, rows).replace("<table>", '<table class="matrix">', 1)
    command = " or ".join(f"<code>{esc(c)}</code>" for c in commands)
    more = (
        f'<p class="note">{listing.more} more not shown; all of them: {command}.</p>'
        if listing.more
        else f'<p class="note">In the terminal: {command}.</p>'
    )
    return f'<div class="wide">{matrix}</div>{more}'


def _cases(report: RunReport, cases: ReportCases) -> str:
    command = f"honed experiments cases {report.run.id}"
    changed, failing = cases.changed, cases.failing
    return (
        "<h2>Cases</h2>"
        '<p class="note">What each variant answered, beside the question and the reference, with every '
        "evaluator's verdict. Changed: the cases the paired comparisons counted as regressions or "
        "improvements, the biggest change first.</p>"
        f"<h3>Changed against {esc(report.baseline)} ({changed.matched})</h3>"
        f"{_matrix(changed, [f'{command} --regressions', f'{command} --improvements'])}"
        f"<h3>Failing or with errors ({failing.matched})</h3>"
        f"{_matrix(failing, [f'{command} --failed EVALUATOR', f'{command} --errors'])}"
    )


def report_sections(report: RunReport) -> str:
    """The report's body without its cases: the header, usage, errors, and per evaluator the means with
    their intervals, the chart and the comparisons with the baseline (also the web UI's run page)."""
    axis = _cost_axis(report)
    sections = [_header(report), _usage(report), _errors(report)]
    sections += [
        _evaluator(report, ev, report.stats[ev], axis) for ev in report.evaluators if ev in report.stats
    ]
    return "".join(sections)


def render_html(report: RunReport, cases: ReportCases | None = None) -> str:
    """The whole report as one self-contained HTML page (inline CSS and SVG; no scripts, no links).
    With `cases` (see `honed.experiments.cases.report_cases`), it shows them with their outputs."""
    run = report.run
    sections = [report_sections(report)]
    if cases is not None:
        sections.append(_cases(report, cases))
    return page(
        f"{run.name or run.id}: honed experiment report",
        "".join(sections),
        footer=f"Generated by honed from run {run.id}.",
    )


def write_html(report: RunReport, path: Path, cases: ReportCases | None = None) -> Path:
    """Write the report to `path` atomically (a temporary file in the same folder, then a rename)."""
    return write_page(render_html(report, cases), path)
