"""The CI gate: thresholds, a seeded regression, JUnit XML, exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from honed.errors import InvalidInputError
from honed.experiments.gate import parse_gate
from tests.experiments.test_runner import setup
from tests.support.cli import assert_one_line_error, honed


def _prepare(workspace: Path, n_cases: int = 12) -> None:
    # `scripted/echo` echoes the user message ("countryN"); a case's reference is "countryN" when we want
    # the prompt to pass, so the same model gives a controlled score.
    from honed.datasets import Case, record_cases

    h = setup(workspace, "scripted/echo", n_cases=n_cases)
    record_cases(
        h.store,
        "caps",
        [
            Case(id=f"c{i}", inputs={"country": f"country{i}"}, reference=f"country{i}")
            for i in range(n_cases)
        ],
    )
    h.close()


def _gate_file(workspace: Path, **extra: object) -> Path:
    path = workspace / "ci.yaml"
    body = {
        "name": "ci",
        "dataset": "caps",
        "variants": [{"prompt": "qa@v2"}],
        "evaluators": [{"type": "exact"}],
        **extra,
    }
    path.write_text(json.dumps(body))
    return path


def test_thresholds_pass_and_junit_is_written(workspace: Path) -> None:
    _prepare(workspace)
    path = _gate_file(workspace, thresholds={"exact": {"mean": 0.9, "pass_rate": 0.9}})
    r = honed("eval", "run", str(path), "--junit", "out/junit.xml", cwd=workspace)
    assert r.returncode == 0, r.stdout + r.stderr
    root = ET.parse(workspace / "out" / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "0"


def test_a_seeded_regression_fails_the_gate(workspace: Path) -> None:
    _prepare(workspace)
    # The candidate's prompt wraps the answer, so exact match fails on every case: a real regression.
    (workspace / "worse.yaml").write_text(
        "name: qa\nmodel: scripted/echo\nmessages:\n"
        "  - role: user\n    content: 'The answer: {{ country }}'\n"
    )
    path = _gate_file(workspace, baseline={"prompt": "qa@v2"}, variants=[{"prompt": "worse.yaml"}])
    r = honed("eval", "run", str(path), "--junit", "junit.xml", "--json", cwd=workspace)
    assert r.returncode == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    [regression] = [c for c in out["checks"] if "regression" in c["name"]]
    assert regression["passed"] is False and "worse" in regression["detail"]
    failure = ET.parse(workspace / "junit.xml").getroot().find("testsuite/testcase/failure")
    assert failure is not None


def test_a_missed_threshold_fails_and_noise_does_not(workspace: Path) -> None:
    _prepare(workspace, n_cases=4)
    path = _gate_file(workspace, baseline={"prompt": "qa@v2"}, thresholds={"exact": {"mean": 1.01}})
    r = honed("eval", "run", str(path), "--json", cwd=workspace)
    assert r.returncode == 1
    checks = json.loads(r.stdout)["checks"]
    assert [c["passed"] for c in checks if c["name"].startswith("mean")] == [False]
    assert [c["passed"] for c in checks if "regression" in c["name"]] == [True]  # same prompt: no regression


def test_bad_gate_specs_are_named(workspace: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"thresholds\.exact\.minimum"):
        parse_gate(
            {
                "name": "x",
                "dataset": "d",
                "variants": [{"prompt": "p"}],
                "evaluators": [{"type": "exact"}],
                "thresholds": {"exact": {"minimum": 1}},
            }
        )
    assert_one_line_error(honed("eval", "run", "nope.yaml", cwd=workspace), "no such eval spec")
