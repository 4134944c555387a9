"""The diagnosis's words on few cases: an effect the test cannot call is said to be undecided, not absent."""

from __future__ import annotations

from typing import Any

from honed.optimize.diagnose import _summary, _verdict


def _effect(
    name: str, evaluator: str, diff: float, ci: list[float], p: float, verdict: str
) -> dict[str, Any]:
    meaning = {"context": "what gold context buys", "few-shot": "what demonstrations buy in form"}[name]
    return {
        "name": name,
        "evaluator": evaluator,
        "diff": diff,
        "ci": ci,
        "p_value": p,
        "cases": 6,
        "verdict": verdict,
        "meaning": meaning,
    }


def test_a_large_effect_on_six_cases_is_undecided_not_absent() -> None:
    # As a user met it: gold context +0.83 [+0.50, +1.00] on 6 cases, p = 0.062 (the test's floor is
    # 0.031 with six), next to demonstrations that did change the form significantly.
    effects = [
        _effect("context", "correct", 0.83, [0.5, 1.0], 0.062, "no detectable difference"),
        _effect("few-shot", "format", 1.0, [1.0, 1.0], 0.03, "better"),
    ]
    failures = {"n": 6, "failed": 6, "format": 1, "context": 5, "persistent": 0, "format_ci": [0.03, 0.56]}
    ceiling = {"mean": 1.0, "ci": [1.0, 1.0]}
    axis, recommendation = _verdict(effects, failures, ceiling, "oracle+few-shot", "strict", "format")
    assert axis == "behaviour"
    techniques = [r["technique"] for r in recommendation]
    assert techniques[0].startswith("few-shot") and techniques[-1] == "more cases, to tell"
    assert "+0.83 [+0.50, +1.00], p=0.062 over 6 cases" in recommendation[-1]["why"]
    text = _summary(axis, effects, failures, ceiling, "oracle+few-shot", "strict")
    assert "has what it needs" not in text
    assert "too few cases (6) to call" in text


def test_a_small_neutral_effect_stays_neutral() -> None:
    effects = [_effect("context", "correct", 0.02, [-0.1, 0.15], 0.7, "no detectable difference")]
    failures = {"n": 40, "failed": 10, "format": 0, "context": 1, "persistent": 9, "format_ci": [0.0, 0.09]}
    axis, recommendation = _verdict(effects, failures, {"mean": 0.7, "ci": None}, "oracle", "correct", None)
    assert axis == "neither"
    assert [r["technique"] for r in recommendation] == ["more cases, or a stronger model"]
