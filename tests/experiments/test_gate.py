"""The CI gate: thresholds, a seeded regression, JUnit XML, exit codes."""

from __future__ import annotations

import json
import re
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
    # mean, pass_rate, and "errors <= 0" (a failed call or evaluation fails the gate unless allowed)
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "0"


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
    with pytest.raises(
        InvalidInputError,
        match=r"thresholds\.exact\.minimum: unknown key \(allowed keys here: mean, pass_rate\)",
    ):
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


def _run_gate(workspace: Path, *args: str, **extra: object) -> tuple[int, str, ET.Element | None]:
    """`honed eval run ci.yaml --junit junit.xml ARGS`: exit code, stdout, and the JUnit XML's root."""
    path = _gate_file(workspace, **extra)
    junit = workspace / "junit.xml"
    junit.unlink(missing_ok=True)
    r = honed("eval", "run", str(path), "--junit", str(junit), *args, cwd=workspace)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stdout, ET.parse(junit).getroot() if junit.exists() else None


def _failures(root: ET.Element | None) -> list[str]:
    assert root is not None, "no JUnit XML written"
    return [f.text or "" for f in root.iter("failure")]


def test_limits_that_hold_pass_and_each_is_a_junit_test_case(workspace: Path) -> None:
    _prepare(workspace)
    limits = {"cost_usd": 1, "cost_per_call_usd": 0.01, "latency_p95_s": 10, "errors": 0, "error_rate": 0}
    code, out, root = _run_gate(workspace, thresholds={"exact": {"pass_rate": 0.9}}, limits=limits)
    assert code == 0, out
    assert root is not None and root.find("testsuite").get("tests") == "6"  # type: ignore[union-attr]
    assert _failures(root) == []
    assert "exact pass_rate 1.00 >= 0.9 (variant qa@v2)" in out and "6 passed, 0 failed" in out


def test_a_missed_pass_rate_says_what_was_measured_and_lists_the_failing_cases(workspace: Path) -> None:
    _prepare(workspace)
    # 7 of the 12 cases get a reference the echoed answer cannot match: pass rate 5/12.
    from honed.api import Honed
    from honed.config import load_settings
    from honed.datasets import Case, record_cases

    h = Honed(load_settings(start=workspace))
    record_cases(
        h.store,
        "caps",
        [
            Case(
                id=f"c{i}",
                inputs={"country": f"country{i}"},
                reference=f"capital{i}" if i < 7 else f"country{i}",
            )
            for i in range(12)
        ],
    )
    h.close()
    code, out, root = _run_gate(workspace, "--show-cases", "2", thresholds={"exact": {"pass_rate": 0.8}})
    assert code == 1
    assert "FAIL exact pass_rate 0.42 < 0.8 (variant qa@v2)" in out
    assert "7 failing case(s), the first 2:" in out
    assert "  c0\n    output:    'country0'\n    reference: 'capital0'\n" in out
    assert "reason:    output 'country0' differs from the reference 'capital0'" in out
    assert "all of them: honed experiments cases" in out and "--failed exact" in out
    [failure] = _failures(root)
    assert (
        failure.startswith("exact pass_rate 0.42 < 0.8 (variant qa@v2)")
        and "output:    'country1'" in failure
    )


def test_cost_limits_fail_with_the_cost_measured(workspace: Path) -> None:
    _prepare(workspace, n_cases=4)
    (workspace / "honed.toml").write_text(
        '[endpoints.paid]\nprovider = "scripted"\nreplies = ["country"]\n'
        '[prices."paid/m"]\ninput = 1000.0\noutput = 1000.0\n'
    )
    limits = {"cost_usd": 0.0001, "cost_per_call_usd": 0.00001}
    code, out, root = _run_gate(workspace, variants=[{"prompt": "qa@v2", "model": "paid/m"}], limits=limits)
    assert code == 1
    assert re.search(r"FAIL cost \$0\.0\d+ > \$0\.0001 \(variant qa@v2 m, 4 calls\)", out), out
    assert re.search(r"FAIL cost per call \$0\.0\d+ > \$1e-05 \(variant qa@v2 m\)", out), out
    assert len(_failures(root)) == 2


def test_a_latency_limit_fails_with_the_p95_measured(workspace: Path) -> None:
    _prepare(workspace, n_cases=6)
    (workspace / "honed.toml").write_text(
        '[endpoints.slow]\nprovider = "scripted"\nreplies = ["country"]\ndelay_s = 0.2\n'
    )
    code, out, root = _run_gate(
        workspace, variants=[{"prompt": "qa@v2", "model": "slow/m"}], limits={"latency_p95_s": 0.05}
    )
    assert code == 1
    found = re.search(r"FAIL latency p95 (\d\.\d+) s > 0\.05 s \(variant qa@v2 m, 6 calls\)", out)
    assert found is not None and float(found.group(1)) >= 0.2, out
    assert len(_failures(root)) == 1


@pytest.mark.slow
def test_errors_fail_the_gate_unless_a_limit_allows_them(workspace: Path) -> None:
    _prepare(workspace)
    (workspace / "checks.py").write_text(
        "def check(output):\n"
        "    if output[-1] in '123':\n"
        "        raise ValueError(f'cannot check {output}')\n"
        "    return 1.0\n"
    )
    evaluators = [{"type": "exact"}, {"type": "python", "function": "checks.py:check"}]
    # country1, 2, 3 and 11: four of the twelve results
    code, out, root = _run_gate(workspace, evaluators=evaluators)
    assert code == 1
    assert "FAIL errors 4 > 0 (variant qa@v2: 0 failed call(s), 4 failed evaluation(s))" in out
    assert "reason:    python: ValueError: cannot check country1" in out
    assert "--errors" in out and len(_failures(root)) == 1
    code, out, _ = _run_gate(workspace, evaluators=evaluators, limits={"errors": 4})
    assert code == 0 and "errors 4 <= 4" in out
    code, out, _ = _run_gate(workspace, evaluators=evaluators, limits={"error_rate": 0.1})
    assert code == 1 and "FAIL error rate 0.33 > 0.1 (variant qa@v2: 4 of 12 calls)" in out
    code, out, _ = _run_gate(workspace, evaluators=evaluators, limits={"error_rate": 0.5})
    assert code == 0, out


def test_bad_limits_are_named(workspace: Path) -> None:
    _prepare(workspace, n_cases=2)
    path = _gate_file(workspace, limits={"latency_p99_s": 1})
    assert_one_line_error(
        honed("eval", "run", str(path), cwd=workspace),
        "limits.latency_p99_s: unknown key",
        "allowed keys here: cost_usd,",
    )
    path = _gate_file(workspace, limits={"error_rate": 2})
    assert_one_line_error(honed("eval", "run", str(path), cwd=workspace), "limits.error_rate")
