"""The evaluators the importers rely on, used directly: starts_with, fuzzy_match, not, latency, cost,
javascript and case_checks (with transforms), and the Nunjucks-compatible template filters."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from honed.errors import InvalidInputError
from honed.evals.evaluators import BuildContext, EvalInput, build_evaluator
from honed.evals.evaluators.base import NO_REFERENCE
from honed.prompts.template import render


def score(
    spec: Mapping[str, Any], item: EvalInput, root: Path | None = None
) -> tuple[float | None, bool | None, str | None]:
    s = build_evaluator(spec, context=BuildContext(root=root))(item)
    return s.value, s.passed, s.error


def test_starts_with_is_case_sensitive_and_unstripped_by_default() -> None:
    assert score({"type": "starts_with", "prefixes": ["Pa"]}, EvalInput("Paris")) == (1.0, True, None)
    assert score({"type": "starts_with", "prefixes": ["pa"]}, EvalInput("Paris"))[1] is False
    assert score({"type": "starts_with", "prefixes": ["pa"], "case_sensitive": False}, EvalInput("Paris"))[1]
    assert score({"type": "starts_with"}, EvalInput(" Paris", reference=["Paris"]))[1] is False
    assert score({"type": "starts_with"}, EvalInput("x"))[2] == NO_REFERENCE


def test_fuzzy_match_is_containment_either_way_after_normalising() -> None:
    assert score({"type": "fuzzy_match"}, EvalInput("The Eiffel Tower!", reference="eiffel tower"))[1]
    assert score({"type": "fuzzy_match"}, EvalInput("Paris", reference="It is Paris."))[1]
    assert score({"type": "fuzzy_match"}, EvalInput("Rome", reference=["Paris", "Oslo"]))[1] is False
    assert score({"type": "fuzzy_match"}, EvalInput("", reference="b"))[1] is False


def test_not_inverts_a_pass_and_refuses_a_score_without_one() -> None:
    spec = {"type": "not", "check": {"type": "contains", "strings": ["x"]}}
    assert score(spec, EvalInput("abc")) == (1.0, True, None)
    assert score(spec, EvalInput("xyz")) == (0.0, False, None)
    assert "cannot negate" in (
        score({"type": "not", "check": {"type": "token_f1"}}, EvalInput("a", reference="a"))[2] or ""
    )
    with pytest.raises(InvalidInputError):
        build_evaluator({"type": "not", "check": {"type": "nope"}})


def test_latency_and_cost_limits_score_the_call() -> None:
    assert score({"type": "latency", "max_s": 1.0}, EvalInput("x", latency_s=0.5))[1] is True
    assert score({"type": "latency", "max_s": 1.0}, EvalInput("x", latency_s=1.5))[1] is False
    assert score({"type": "latency", "max_s": 1.0}, EvalInput("x"))[2] == "the call's latency is unknown"
    assert score({"type": "cost", "max_usd": 0.01}, EvalInput("x", cost_usd=0.0))[1] is True
    assert score({"type": "cost", "max_usd": 0.01}, EvalInput("x", cost_usd=0.02))[1] is False
    assert "unknown" in (score({"type": "cost", "max_usd": 0.01}, EvalInput("x"))[2] or "")


def test_javascript_runs_expressions_bodies_and_files(tmp_path: Path) -> None:
    item = EvalInput("Paris", inputs={"q": "Paris"})
    assert score({"type": "javascript", "code": "output === context.vars.q"}, item)[1] is True
    body = "const n = output.length;\nreturn {pass: n > 10, score: n / 10, reason: 'length'};"
    assert score({"type": "javascript", "code": body}, item) == (0.5, False, None)
    assert score({"type": "javascript", "code": "0.4", "threshold": 0.3}, item)[1] is True
    (tmp_path / "c.js").write_text("module.exports = {check: (o) => o.startsWith('P')};\n")
    assert score({"type": "javascript", "file": "c.js:check"}, item, tmp_path)[1] is True
    assert "boom" in (
        score({"type": "javascript", "code": "(() => { throw new Error('boom') })()"}, item)[2] or ""
    )


def test_case_checks_combine_select_and_transform(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text("def shout(output, context):\n    return output.upper()\n")
    checks = [
        {
            "name": "a",
            "check": {"type": "contains", "strings": ["PARIS"], "case_sensitive": True},
            "transform": [{"python": "t.py:shout"}],
        },
        {"name": "a", "check": {"type": "exact"}, "reference": "nope", "weight": 3},
        {
            "name": "b",
            "check": {"type": "contains", "strings": ["!"], "case_sensitive": True},
            "transform": [{"javascript": "output + '!'"}],
        },
    ]
    item = EvalInput("Paris", metadata={"checks": checks})
    assert score({"type": "case_checks", "select": "a"}, item, tmp_path) == (0.25, False, None)
    assert score({"type": "case_checks", "select": "b"}, item, tmp_path) == (1.0, True, None)
    assert score({"type": "case_checks", "select": "c"}, item, tmp_path)[2] == NO_REFERENCE
    assert score({"type": "case_checks"}, EvalInput("x"), tmp_path)[2] == NO_REFERENCE
    broken = EvalInput(
        "x", metadata={"checks": [{"check": {"type": "exact"}, "transform": [{"python": "t.py:nope"}]}]}
    )
    assert "transform failed" in (score({"type": "case_checks"}, broken, tmp_path)[2] or "")
    bad = EvalInput("x", metadata={"checks": [{"check": {"type": "nope"}}]})
    assert "invalid check" in (score({"type": "case_checks"}, bad, tmp_path)[2] or "")


def test_template_filters_from_nunjucks() -> None:
    assert render("{{ x | dump }}", {"x": {"a": [1, "é"]}}, where="t") == '{"a":[1,"é"]}'
    assert render("{{ x | json(2) }}", {"x": [1]}, where="t") == "[\n  1\n]"
    assert render("{{ (s | load).a }}", {"s": '{"a": 3}'}, where="t") == "3"
    assert render("{{ s | nl2br }}", {"s": "a\nb"}, where="t") == "a<br />\nb"
