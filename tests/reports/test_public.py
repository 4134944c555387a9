"""The report kit's public names: each resolves to what its module defines, hostile text comes out escaped
from charts and pages alike, and the kit stays low: it imports nothing above it; none imports its privates."""

from __future__ import annotations

import ast
import importlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import honed.reports
from honed.evals.stats import BETTER, NO_DIFFERENCE, WORSE
from honed.reports import Html, Mark, dot_plot, facts, page, scatter, table, verdict_badge

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SRC = Path(honed.reports.__file__).parents[1]  # src/honed


def test_all_names_resolve_to_what_their_modules_define() -> None:
    names = honed.reports.__all__
    assert len(names) == len(set(names))
    for name in names:
        value = getattr(honed.reports, name)
        if isinstance(value, str | float):  # colours, CSS and widths are values, not definitions
            continue
        module = importlib.import_module(value.__module__)
        assert module.__name__.startswith("honed.reports."), name
        assert getattr(module, name) is value, name
    namespace: dict[str, object] = {}
    exec("from honed.reports import *", namespace)
    assert {n for n in namespace if n != "__builtins__"} == set(names)
    public = {n for n in vars(honed.reports) if not n.startswith("_")} - {"html", "svg"}
    assert public == set(names)  # nothing exported by accident, nothing public left out


def test_charts_escape_hostile_labels_and_stay_well_formed_xml() -> None:
    marks = [Mark(EVIL, 0.4, 0.3, 0.5, x=1.0, highlight=True), Mark("plain", 0.6, x=2.0)]
    charts = [
        dot_plot(marks, title=EVIL, axis_label=EVIL),
        scatter(marks, title=EVIL, x_label=EVIL, y_label=EVIL),
    ]
    for svg in charts:
        assert "<script" not in svg and ESCAPED in svg
        root = ET.fromstring(svg)  # well-formed: the hostile text stayed text
        assert not [e for e in root.iter() if e.tag.endswith("script")]
        assert EVIL in "".join(root.itertext())


def test_a_page_escapes_hostile_text_everywhere_but_in_markup_the_report_built() -> None:
    body = (
        table([EVIL, "built"], [[EVIL, Html("<b>bold</b>")]], numeric=(1,))
        + facts([(EVIL, EVIL), ("built", Html("<i>it</i>"))])
        + verdict_badge(EVIL)
    )
    html = page(EVIL, body, footer=EVIL, css="p{}")
    assert "<script" not in html
    # The title, the table's header and cell, the fact's name and value, the badge and the footer.
    assert html.count(ESCAPED) == 7
    assert '<td class="n"><b>bold</b></td>' in html and "<dd><i>it</i></dd>" in html
    assert html.startswith("<!DOCTYPE html>\n") and html.endswith("</html>\n")
    assert re.search(r"<style>.*p\{\}</style>", html, re.S)  # the report's CSS after the kit's


def test_the_badge_knows_the_verdicts_of_the_statistics() -> None:
    assert 'class="v v-better"' in verdict_badge(BETTER)
    assert 'class="v v-worse"' in verdict_badge(WORSE)
    assert 'class="v v-none"' in verdict_badge(NO_DIFFERENCE)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every `import` and `from ... import` in a file (relative ones resolved)."""
    out: list[tuple[str, list[str]]] = []
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            out.append((module, [a.name for a in node.names]))
    return out


def test_the_kit_imports_only_the_base_layer() -> None:
    allowed = {"honed.errors", "honed.hashing", "honed.reports.html", "honed.reports.svg"}
    for path in (SRC / "reports").glob("*.py"):
        honed_imports = {m for m, _ in _imports(path) if m == "honed" or m.startswith("honed.")}
        assert honed_imports <= allowed, (path.name, honed_imports - allowed)


def test_no_module_imports_a_private_name_of_the_report_modules() -> None:
    report_modules = ("honed.reports", "honed.experiments.report_html", "honed.optimize.charts")
    found = [
        (str(path.relative_to(SRC)), module, name)
        for path in SRC.rglob("*.py")
        if "reports" not in path.relative_to(SRC).parts
        for module, names in _imports(path)
        if module.startswith(report_modules)
        for name in names
        if name.startswith("_")
    ]
    assert found == []
