"""The HTML report from real runs (scripted model, real store): one self-contained page, escaped, with plots
that parse as SVG, and the CLI that writes it."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from honed.errors import InvalidInputError, ProviderError
from honed.experiments import RunReport, analyse, parse_spec, resolve, run_experiment
from honed.experiments.report_html import render_html, write_html
from honed.reports import Mark, dot_plot, nice_ticks, scatter
from honed.testing import scripted
from tests.experiments.test_runner import answer_v2_only, setup, spec
from tests.support.cli import assert_one_line_error, honed

SVG = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert(1)</script>"


class _Page(HTMLParser):
    """Every start tag with its attributes, and the text as a browser would show it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @classmethod
    def text_of(cls, html: str) -> list[str]:
        page = cls()
        page.feed(html)
        page.close()
        return page.text


def _down(req) -> BaseException:  # type: ignore[no-untyped-def]
    return ProviderError("bad request", provider="s", status=400)


def _report(workspace: Path, variants: list[dict[str, object]], *, n_cases: int = 8) -> RunReport:
    """A real run of `variants` (model "DOWN": every call fails), analysed."""
    with scripted("cap", answer_v2_only) as model, scripted("down", _down) as down:
        h = setup(workspace, model, n_cases=n_cases)
        vs = [{**v, "model": down} if v.get("model") == "DOWN" else v for v in variants]
        run = run_experiment(h, resolve(h, parse_spec(spec(variants=vs))))
        report = analyse(h.store, run.id, n_boot=2000)
    h.close()
    return report


def _check_page(page: str) -> tuple[_Page, list[ET.Element]]:
    """Parses as HTML, needs nothing outside itself, and every <svg> is well-formed XML."""
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    names = {tag for tag, _ in parsed.tags}
    assert {"html", "head", "style", "body", "table", "svg"} <= names
    assert not names & {"script", "link", "img", "iframe", "object", "embed"}
    for _, attrs in parsed.tags:
        for key in ("src", "href", "xlink:href"):
            assert not (attrs.get(key) or "").startswith(("http:", "https:", "//")), attrs
    # The only URL on the page is the SVG namespace, which names the vocabulary and fetches nothing.
    assert not re.search(r"https?://|url\(", page.replace('xmlns="http://www.w3.org/2000/svg"', ""))
    svgs = [ET.fromstring(block) for block in re.findall(r"<svg\b.*?</svg>", page, re.S)]
    assert svgs and all(svg.tag == f"{SVG}svg" for svg in svgs)
    return parsed, svgs


def _rows(svg: ET.Element) -> list[ET.Element]:
    return [g for g in svg.iter(f"{SVG}g") if g.get("class") == "row"]


def test_report_shows_variants_plots_verdicts_and_survives_hostile_and_failed_variants(
    workspace: Path,
) -> None:
    variants: list[dict[str, object]] = [
        {"id": "qa@v1", "prompt": "qa@v1"},
        {"id": "qa@v2", "prompt": "qa@v2"},
        {"id": EVIL, "prompt": "qa@v2", "params": {"temperature": 0.5}},
        {"id": "down", "prompt": "qa@v1", "model": "DOWN"},
    ]
    report = _report(workspace, variants, n_cases=10)
    page = render_html(report)
    parsed, svgs = _check_page(page)
    text = "".join(parsed.text)
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for variant in ("qa@v1", "qa@v2", EVIL, "down"):
        assert variant in text
    assert report.run.id in text and "caps@" in text and "temperature" in text
    assert {t for t, _ in parsed.tags}.isdisjoint({"script"})
    score_plot, cost_plot = svgs  # one evaluator: its score plot, then quality vs cost
    rows = _rows(score_plot)
    assert len(rows) == 4
    assert [len(list(r.iter(f"{SVG}circle"))) for r in rows] == [1, 1, 1, 0]  # "down" has no scores
    assert all(len(list(r.iter(f"{SVG}line"))) == 3 for r in rows[:3])  # whisker and its two caps
    assert "n/a (no scores)" in "".join(rows[3].itertext())
    assert len(list(cost_plot.iter(f"{SVG}circle"))) == 3
    assert "mean output tokens per call" in "".join(cost_plot.itertext())
    assert "Not plotted (no scores or no successful calls): down." in text
    comparison = report.stats["exact"].comparisons["qa@v2"]
    assert comparison.verdict == "better"
    assert '<span class="v v-better">better</span>' in page
    assert '<span class="v v-none">no detectable difference</span>' in page  # "down" against the baseline
    assert comparison.message in text
    assert "improved (10)" in text and "c3" in text


def test_a_single_variant_has_no_comparisons(workspace: Path) -> None:
    page = render_html(_report(workspace, [{"prompt": "qa@v2"}], n_cases=3))
    parsed, svgs = _check_page(page)
    assert "Paired comparison" not in page and "qa@v2" in "".join(parsed.text)
    assert len(_rows(svgs[0])) == 1 and len(list(svgs[0].iter(f"{SVG}circle"))) == 1


def test_many_variants_each_get_a_row_and_a_point(workspace: Path) -> None:
    variants: list[dict[str, object]] = [
        {"id": f"variant {i:02d} " + "x" * (60 if i % 4 == 0 else 0), "prompt": f"qa@v{1 + i % 2}"}
        for i in range(12)
    ]
    page = render_html(_report(workspace, variants, n_cases=8))
    _, [score_plot, cost_plot] = _check_page(page)
    assert len(_rows(score_plot)) == 12 and len(list(score_plot.iter(f"{SVG}circle"))) == 12
    assert len(list(cost_plot.iter(f"{SVG}circle"))) == 12
    assert page.count('<span class="v v-better">') == 6  # the qa@v2 variants against the qa@v1 baseline
    assert page.count('<span class="v v-none">') == 5


def test_long_case_lists_are_cut_at_fifty(workspace: Path) -> None:
    page = render_html(_report(workspace, [{"prompt": "qa@v1"}, {"prompt": "qa@v2"}], n_cases=60))
    _check_page(page)
    improved = re.search(r"<details><summary>qa@v2 vs qa@v1: improved \(60\)</summary>(.*?)</details>", page)
    assert improved is not None
    assert improved.group(1).count("<li>") == 51 and "… and 10 more" in improved.group(1)


def test_known_costs_put_cost_per_call_on_the_x_axis(workspace: Path) -> None:
    (workspace / "honed.toml").write_text(
        '[endpoints.paid]\nprovider = "scripted"\nreplies = ["capital"]\n'
        '[prices."paid/m"]\ninput = 1.0\noutput = 2.0\n'
    )
    h = setup(workspace, "paid/m", n_cases=3)
    run = run_experiment(h, resolve(h, parse_spec(spec())))
    report = analyse(h.store, run.id, n_boot=500)
    h.close()
    assert all(u.cost_usd for u in report.usage.values())
    _, [_, cost_plot] = _check_page(render_html(report))
    assert "cost per successful call (USD)" in "".join(cost_plot.itertext())


def test_charts_take_missing_values_and_flat_ranges() -> None:
    assert nice_ticks(0.0, 0.37) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert nice_ticks(3.0, 3.0)[0] < 3.0 < nice_ticks(3.0, 3.0)[-1]
    marks = [Mark("a", None), Mark("b", 7.5, 5.0, 12.0, x=0.0, highlight=True), Mark("c", 7.5, x=0.0)]
    plot = ET.fromstring(dot_plot(marks, title="t", axis_label="score"))
    assert "n/a (no scores)" in "".join(plot.itertext())
    points = ET.fromstring(scatter(marks, title="t", x_label="x", y_label="y"))
    labels = [t for t in points.iter(f"{SVG}text") if t.text in {"b", "c"}]
    assert len(labels) == 2 and labels[0].get("y") != labels[1].get("y")  # same spot: labels stacked
    ET.fromstring(scatter([Mark("a", None)], title="t", x_label="x", y_label="y"))


def test_write_html_replaces_the_file_atomically(workspace: Path, tmp_path: Path) -> None:
    report = _report(workspace, [{"prompt": "qa@v1"}], n_cases=2)
    target = tmp_path / "out" / "r.html"
    target.parent.mkdir()
    target.write_text("old")
    assert write_html(report, target) == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in target.parent.iterdir()] == ["r.html"]
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidInputError, match="cannot write the report"):
        write_html(report, tmp_path / "file" / "r.html")


@pytest.mark.slow
def test_cli_run_html_and_report_write_the_page(workspace: Path) -> None:
    h = setup(workspace, "scripted/echo", n_cases=3)
    h.close()
    path = workspace / "exp.yaml"
    path.write_text(json.dumps(spec()))
    r = honed("experiments", "run", str(path), "--json", "--html", "reports/run.html", cwd=workspace)
    assert r.returncode == 0, r.stderr
    run_id = json.loads(r.stdout)["run"]["id"]
    assert "report written to reports/run.html" in r.stderr
    _check_page((workspace / "reports" / "run.html").read_text(encoding="utf-8"))
    r = honed("experiments", "report", run_id[:6], cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"honed-report-{run_id}.html"
    _check_page((workspace / r.stdout.strip()).read_text(encoding="utf-8"))
    r = honed("experiments", "report", run_id, "--baseline", "qa@v2", "-o", "mine.html", cwd=workspace)
    assert r.returncode == 0 and r.stdout.strip() == "mine.html"
    assert "Paired comparison against qa@v2" in (workspace / "mine.html").read_text(encoding="utf-8")
    assert_one_line_error(honed("experiments", "report", "zzzz", cwd=workspace), "no experiment run 'zzzz'")


HOSTILE = [
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=\"document.body.setAttribute('data-pwned', '1')\">",
]


@pytest.mark.slow
def test_a_browser_shows_changed_and_failing_cases_with_their_outputs_as_text(workspace: Path) -> None:
    """`experiments run --html` through the CLI, the page opened in headless Chromium: the changed cases
    show their question, each variant's output side by side and the reference; hostile outputs are text."""
    from tests.optimize.test_report import chromium

    (workspace / "v1.yaml").write_text(
        "name: qa\nmodel: scripted/echo\nmessages:\n  - {role: user, content: '{{ q }}'}\n"
    )
    (workspace / "v2.yaml").write_text(
        "name: qa\nmodel: scripted/echo\nmessages:\n  - {role: user, content: 'The answer: {{ q }}'}\n"
    )
    rows = [
        {"id": "france", "inputs": {"q": "Capital of France?"}, "reference": "Capital of France?"},
        *({"id": f"evil{i}", "inputs": {"q": text}, "reference": "x"} for i, text in enumerate(HOSTILE)),
        *({"id": f"n{i}", "inputs": {"q": f"q{i}"}, "reference": f"q{i}"} for i in range(30)),
    ]
    (workspace / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert honed("datasets", "import", "d", "cases.jsonl", cwd=workspace).returncode == 0
    (workspace / "exp.yaml").write_text(
        json.dumps(
            {
                "name": "e",
                "dataset": "d",
                "variants": [{"prompt": "v1.yaml"}, {"prompt": "v2.yaml"}],
                "evaluators": [{"type": "exact"}],
            }
        )
    )
    r = honed("experiments", "run", "exp.yaml", "--html", "report.html", "--json", cwd=workspace)
    assert r.returncode == 0, r.stderr
    run_id = json.loads(r.stdout)["run"]["id"]
    page = workspace / "report.html"
    _check_page(page.read_text(encoding="utf-8"))
    dom = chromium("--dump-dom", page.as_uri(), profile=workspace / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _Page()
    parsed.feed(dom.stdout)
    tags = [tag for tag, _ in parsed.tags]
    assert "script" not in tags and "img" not in tags  # nothing from an output became an element
    assert "pwned" not in "".join(a.get("data-pwned") or "" for _, a in parsed.tags)
    title = re.search(r"<title>(.*?)</title>", dom.stdout)
    assert title is not None and "pwned" not in title.group(1).replace("document.title", "")
    cases = dom.stdout[dom.stdout.index("<h2>Cases</h2>") :]
    text = "".join(_Page.text_of(cases))
    # The 31 regressions (the 30 plain cases and france) are capped at 25 with the command for all of them.
    assert "Changed against qa@v1 (31)" in text
    assert f"6 more not shown; all of them: honed experiments cases {run_id} --regressions" in text
    france = re.search(r"<tr><td><code>france</code>.*?</tr>", cases, re.S)
    assert france is not None
    case, reference, baseline, candidate = (
        "".join(_Page.text_of(cell)) for cell in re.findall(r"<td>(.*?)</td>", france.group(0), re.S)
    )
    assert "Capital of France?" in case and "regressed on exact under qa@v2" in case  # the question
    assert reference == "Capital of France?"
    assert baseline.startswith("Capital of France?exact: 1 pass")  # the outputs side by side
    assert candidate.startswith("The answer: Capital of France?exact: 0 fail")
    # The hostile outputs fail under both variants: shown, as the characters they are.
    assert "Failing or with errors (2)" in text
    for hostile in HOSTILE:
        assert f"The answer: {hostile}" in text


def test_evaluator_errors_are_shown_grouped_by_message_with_counts(workspace: Path) -> None:
    (workspace / "checks.py").write_text(
        "def check(output):\n    if output.endswith('1'):\n        raise ValueError('no ones <b>here</b>')\n"
        "    raise KeyError('other')\n"
    )
    h = setup(workspace, "scripted/echo", n_cases=12)
    evaluators = [{"type": "exact"}, {"type": "python", "function": "checks.py:check"}]
    run = run_experiment(h, resolve(h, parse_spec(spec(evaluators=evaluators)), base=workspace))
    report = analyse(h.store, run.id, n_boot=200)
    h.close()
    page = render_html(report)
    parsed, _ = _check_page(page)
    errors = re.search(r"<h2>Errors</h2>(.*?)</table>", page, re.S)
    assert errors is not None
    rows = ["|".join(_Page.text_of(row)) for row in re.findall(r"<tr><td.*?</tr>", errors.group(1), re.S)]
    # 12 cases x 2 variants: the echoed "country1" and "country11" end in 1, the 20 others do not.
    assert rows == ["20|python|KeyError: 'other'", "4|python|ValueError: no ones <b>here</b>"]
    assert "<b>here</b>" not in page
    assert f"honed experiments cases {run.id} --errors" in "".join(parsed.text)


def test_latency_is_the_time_in_the_model_p50_and_p95(workspace: Path) -> None:
    report = _report(workspace, [{"prompt": "qa@v1"}, {"prompt": "qa@v2"}], n_cases=4)
    page = render_html(report)
    usage = report.usage["qa@v1"]
    assert usage.latency_p50_s is not None and usage.latency_p95_s is not None
    ms = f"{usage.latency_p50_s * 1000:,.0f} ms" if usage.latency_p50_s >= 0.01 else "ms /"
    assert "latency p50 / p95" in page and ms in page
    assert "Latency is the time in the model per call, p50 / p95" in page and "time queued" in page
