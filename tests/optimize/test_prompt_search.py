"""`honed optimize prompt`: few-shot and instruction candidates under a budget, chosen on dev, judged on test.

The scripted student answers right only when the prompt shows it demonstrations or its instructions say
KEYWORD, so each strategy has something to find; it counts its calls, so a rerun can show it repeats none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from honed.api import Honed
from honed.config import load_settings
from honed.datasets import Case, record_cases
from honed.errors import BudgetExceededError, InvalidInputError
from honed.models.types import ChatRequest
from honed.optimize.prompt import load_search, optimize_prompt, parse_search, stored_search
from honed.optimize.prompt.report import render_search_html
from honed.testing import scripted
from tests.support.cli import assert_one_line_error, honed

START = """\
name: qa
messages:
  - {role: system, content: Answer the question.}
  - {role: user, content: '{{ q }}'}
"""


def spec(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "qa-search",
        "prompt": "start.yaml",
        "dataset": "qa@latest",
        "evaluators": [{"type": "exact", "name": "exact"}],
        "student": "scripted/student",
        "proposer": "scripted/proposer",
        "budget": {"calls": 300},
        "strategies": {"few_shot": {"k": [1, 2], "bootstrap_cases": 4}},
    }
    return {**base, **over}


class Student:
    """Right when the prompt has demonstrations or its system message says KEYWORD; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, req: ChatRequest) -> str:
        self.calls += 1
        q = req.messages[-1]["content"]
        demos = sum(1 for m in req.messages if m["role"] == "assistant")
        keyword = "KEYWORD" in req.messages[0]["content"]
        return q.replace("q", "a") if demos or keyword else "no idea"


def cases(test_offset: int = 0) -> list[Case]:
    out = [Case(id=f"tr{i:02d}", inputs={"q": f"q{i}"}, reference=f"a{i}", split="train") for i in range(8)]
    out += [
        Case(id=f"dv{i:02d}", inputs={"q": f"q{100 + i}"}, reference=f"a{100 + i}", split="dev")
        for i in range(12)
    ]
    out += [
        Case(
            id=f"te{i:02d}", inputs={"q": f"q{200 + i}"}, reference=f"a{200 + i + test_offset}", split="test"
        )
        for i in range(16)
    ]
    return out


@pytest.fixture
def ws(workspace: Path) -> Path:
    (workspace / "start.yaml").write_text(START, encoding="utf-8")
    h = Honed(load_settings(start=workspace))
    record_cases(h.store, "qa", cases())
    h.close()
    return workspace


def run(ws: Path, data: dict[str, Any], student: Student, proposer: Any = "no change") -> dict[str, Any]:
    with scripted("student", student), scripted("proposer", [proposer]):
        h = Honed(load_settings(start=ws))
        try:
            return optimize_prompt(h, parse_search(data, base=ws), n_boot=500).to_dict()
        finally:
            h.close()


def test_few_shot_candidates_are_versions_with_lineage_and_the_verdict_is_on_test(ws: Path) -> None:
    student = Student()
    result = run(ws, spec(), student)
    assert result["start"]["version"] == "qa@v1"
    assert result["start"]["dev"]["mean"] == 0.0 and result["start"]["test"]["mean"] == 0.0
    fewshot = [c for c in result["candidates"] if c["strategy"] == "few-shot"]
    assert [c["parent"] for c in fewshot] == ["qa@v1", "qa@v1"]
    assert all(c["dev"]["mean"] == 1.0 and c["version"].startswith("qa@v") for c in fewshot)
    # Ties on dev go to the earlier candidate: the one demonstration, the shorter prompt.
    best = result["best"]
    assert best["version"] == fewshot[0]["version"] and "1 bootstrapped" in best["change"]
    assert [step["version"] for step in best["lineage"]] == ["qa@v1", best["version"]]
    assert best["test"]["mean"] == 1.0
    diff = result["diff"]
    assert diff["mean"] == 1.0 and diff["verdict"] == "better" and diff["p"] < 0.01 and diff["ci"][0] > 0
    # Every distinct request is one call: start on dev 12 + bootstrap 4 + two candidates on dev 24 + test 32.
    assert result["calls"] == student.calls == 12 + 4 + 24 + 32
    assert result["budget"]["used_calls"] == result["calls"] <= 300
    assert {"start", "bootstrap", "few-shot", "test"} <= set(result["phases"])
    h = Honed(load_settings(start=ws))
    try:
        history = {v.number: v for v in h.store.names.history("prompt", "qa")}
        note = history[int(best["version"].split("@v")[1])].note or ""
        assert "from qa@v1" in note and "bootstrapped" in note
        assert stored_search(h, "qa-search") == json.loads(json.dumps(result))
    finally:
        h.close()
    html = render_search_html(result)
    assert "<svg" in html and best["version"] in html and "better" in html

    # Run again: every call comes from the response cache, and the search takes the same path.
    again = Student()
    replay = run(ws, spec(), again)
    assert again.calls == 0
    assert replay["best"]["version"] == best["version"] and replay["calls"] == result["calls"]
    assert replay["fresh_calls"] == 0 and replay["diff"] == result["diff"]


def test_the_test_split_never_influences_the_choice(ws: Path) -> None:
    first = run(ws, spec(), Student())
    h = Honed(load_settings(start=ws))
    record_cases(h.store, "qa", cases(test_offset=1))  # every test reference changed: all wrong now
    h.close()
    second = run(ws, spec(), Student())
    assert second["dataset"] != first["dataset"]
    assert second["best"]["version"] == first["best"]["version"]
    assert [c["dev"] for c in second["candidates"]] == [c["dev"] for c in first["candidates"]]
    assert second["best"]["test"]["mean"] == 0.0


def test_instructions_come_from_gepa_with_the_proposer(ws: Path) -> None:
    student = Student()
    data = spec(strategies={"instructions": {"iterations": 2, "minibatch": 3}})
    result = run(ws, data, student, proposer="Here you go:\n```\nAnswer the question. KEYWORD\n```")
    assert result["search"]["used"] is True and result["search"]["proposals"] >= 1
    best = result["best"]
    assert best["change"].startswith("instructions") and best["parent"] == "qa@v1"
    assert best["dev"]["mean"] == 1.0 and result["diff"]["verdict"] == "better"
    assert result["phases"]["instructions"]["calls"] >= 1 + 3
    assert result["calls"] == result["budget"]["used_calls"] <= 300


def test_a_budget_too_small_stops_before_any_call(ws: Path) -> None:
    student = Student()
    with pytest.raises(BudgetExceededError) as exc:
        run(ws, spec(budget={"calls": 50}), student)
    assert student.calls == 0
    line = exc.value.one_line()
    assert "\n" not in line and "budget.calls 50 is below the 60 calls" in line, line


def test_the_budget_is_a_hard_stop_that_keeps_the_test_phase(ws: Path) -> None:
    student = Student()
    # Enough for start, bootstrap, one candidate on dev and the test phase (12 + 4 + 12 + 32 = 60): the
    # second candidate does not fit, so the search stops there and still gives its verdict.
    result = run(ws, spec(budget={"calls": 62}), student)
    assert result["calls"] == student.calls == 60 <= 62
    assert result["budget"]["stopped"] and "no room" in result["budget"]["stopped"]
    assert len([c for c in result["candidates"] if c["dev"] is not None]) == 2
    assert result["diff"]["verdict"] == "better"


def test_cli_errors_are_one_line(ws: Path) -> None:
    path = ws / "search.yaml"
    path.write_text(
        "prompt: start.yaml\ndataset: qa\nevaluators: [{type: exact}]\nbudget: {calls: 10}\n"
        "strategies:\n  few_shot: {k: [2], selekt: [similar]}\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInputError):
        load_search(path)
    out = honed("optimize", "prompt", str(path), cwd=ws)
    assert_one_line_error(out, f"{path}:6: strategies.few_shot.selekt")
    path.write_text(
        "prompt: start.yaml\ndataset: qa\nevaluators: [{type: exact}]\nstudent: scripted/echo\n"
        "budget: {calls: 10}\nstrategies: {few_shot: {k: [1]}}\n",
        encoding="utf-8",
    )
    out = honed("optimize", "prompt", str(path), "--json", cwd=ws)
    assert_one_line_error(out, "budget.calls 10 is below the")


def test_cli_prints_tables_at_100_columns_json_and_the_report(tmp_path: Path, workspace: Path) -> None:
    (workspace / "start.yaml").write_text(START, encoding="utf-8")
    h = Honed(load_settings(start=workspace))
    # scripted/echo repeats the question, which is its own reference: every prompt is right.
    echo = [
        Case(id=f"c{i:02d}", inputs={"q": f"q{i}"}, reference=f"q{i}", split=s)
        for i, s in enumerate(["train"] * 4 + ["dev"] * 6 + ["test"] * 8)
    ]
    record_cases(h.store, "qa", echo)
    h.close()
    path = workspace / "search.yaml"
    data = spec(student="scripted/echo", proposer="scripted/echo", strategies={"few_shot": {"k": [1]}})
    path.write_text(json.dumps(data), encoding="utf-8")
    out = honed("optimize", "prompt", str(path), "--report", "r.html", cwd=workspace, env={"COLUMNS": "100"})
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) <= 100, out.stdout
    assert "chosen vs start on test" in out.stdout and "budget 300 calls" in out.stdout
    assert (workspace / "r.html").read_text(encoding="utf-8").count("<svg") == 2
    out = honed("optimize", "prompt", str(path), "--json", cwd=workspace)
    body = json.loads(out.stdout)
    assert body["best"]["version"] == "qa@v1"  # a tie on dev keeps the start
    assert {"version", "test"} <= set(body["start"]) and {"mean", "ci"} <= set(body["start"]["test"])
    assert {"version", "dev", "test"} <= set(body["best"])
    assert set(body["diff"]) >= {"mean", "ci", "p", "verdict"}
    assert body["diff"]["verdict"] == "no detectable difference"
    assert isinstance(body["calls"], int) and body["cost_usd"] == 0.0 and body["budget"]["calls"] == 300
