"""A ladder step that searches for its prompt (`optimize: {...}`), run through the console script.

The scripted student (the prompt search's, see `test_prompt_search.Student`) answers right only when the
prompt shows it demonstrations, so the search has something to find and the step a gain to show. The
search's verdict is on the ladder's split, so its test phase sends the requests the ladder's run of the
step sends: those come from the response cache, and the step's row agrees with the search's verdict.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from honed.api import Honed
from honed.cli.main import run as console_script
from honed.config import load_settings
from honed.datasets import record_cases
from honed.errors import InvalidInputError
from honed.optimize import load_plan
from honed.optimize.prompt import stored_search
from honed.prompts import get_prompt
from honed.testing import scripted
from tests.optimize.test_prompt_search import START, Student, cases
from tests.support.cli import assert_one_line_error, honed

PLAN = """\
name: qa-ladder
dataset: qa@latest
split: test
primary: exact
evaluators: [{type: exact, name: exact}, {type: contains, name: contains}]
latency_calls: 0
steps:
  - {id: baseline, prompt: start.yaml, model: scripted/student}
  - id: searched
    optimize:
      train: train
      dev: dev
      budget: {calls: 300}
      strategies: {few_shot: {k: [1, 2], bootstrap_cases: 4}}
  - {id: shorter, params: {max_tokens: 20}}
"""
N_TRAIN, N_DEV, N_TEST = 8, 12, 16


@pytest.fixture
def ws(workspace: Path) -> Path:
    (workspace / "start.yaml").write_text(START, encoding="utf-8")
    (workspace / "ladder.yaml").write_text(PLAN, encoding="utf-8")
    h = Honed(load_settings(start=workspace))
    record_cases(h.store, "qa", cases())
    h.close()
    return workspace


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The console script's own entry point, in this process (where the scripted model is registered);
    its stdout, once it exited 0."""
    monkeypatch.setattr(sys, "argv", ["honed", *args])
    with pytest.raises(SystemExit) as exc:
        console_script()
    out = capsys.readouterr()
    assert exc.value.code == 0, out.err
    return out.out


def test_the_step_searches_from_its_inherited_prompt_and_later_steps_inherit_the_choice(
    ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    student = Student()
    with scripted("student", student):
        out = cli(monkeypatch, capsys, "optimize", "run", "ladder.yaml", "--json")
    ledger = json.loads(out)
    steps = {s["id"]: s for s in ledger["steps"]}
    assert list(steps) == ["baseline", "searched", "shorter"]
    base, searched, shorter = steps["baseline"], steps["searched"], steps["shorter"]

    # The search started from the inherited prompt and its choice is the step's prompt, then the next's.
    search = searched["search"]
    assert search["name"] == "qa-ladder.searched" and search["start"] == base["prompt"] == "qa@v1"
    assert searched["prompt"] == search["chosen"] != base["prompt"]
    assert shorter["prompt"] == searched["prompt"] and shorter["changes"] == ["params: max_tokens=20"]
    assert searched["model"] == shorter["model"] == "scripted/student"
    # Ties on dev go to the earlier candidate: one bootstrapped demonstration.
    assert "1 bootstrapped" in search["change"] and searched["changes"] == [
        f"prompt search: {search['change']} (chosen on dev of 3 candidates)"
    ]
    assert search["dev"] == {"split": "dev", "start": 0.0, "chosen": 1.0}
    h = Honed(load_settings(start=ws))
    try:
        chosen = get_prompt(h.store, searched["prompt"])[1]
        stored = stored_search(h, "qa-ladder.searched")
    finally:
        h.close()
    assert len(chosen.examples) == 1 and chosen.examples[0].input.startswith("q")
    assert stored["best"]["version"] == searched["prompt"] and stored["splits"]["test"]["name"] == "test"
    # The search never saw the ladder's split before its verdict: its candidates were built from train
    # and chosen on dev, and the demonstration is a train case.
    assert stored["splits"]["train"]["name"] == "train" and stored["splits"]["dev"]["name"] == "dev"
    assert chosen.examples[0].input in {c.inputs["q"] for c in cases() if c.split == "train"}

    # The step is measured on the ladder's split like every step: what the search bought, with CI and p.
    assert base["quality"]["exact"]["mean"] == 0.0 and searched["quality"]["exact"]["mean"] == 1.0
    gain = searched["vs_previous"]["exact"]
    assert gain["against"] == "baseline" and gain["verdict"] == "better"
    assert gain["p_value"] < 0.01 and gain["ci"][0] > 0 and gain["diff"] == pytest.approx(1.0)
    assert search["verdict"]["mean"] == pytest.approx(gain["diff"])  # the search's verdict, same cases
    assert shorter["vs_previous"]["exact"]["verdict"] == "no detectable difference"

    # Calls: the search's, then only the last step's (new params); the first two steps' requests on the
    # ladder's split are the ones the search's verdict already sent.
    assert search["calls"] == N_DEV + 4 + 2 * N_DEV + 2 * N_TEST and search["budget"]["used_calls"] <= 300
    assert base["cached"] == searched["cached"] == N_TEST and shorter["cached"] == 0
    assert student.calls == search["calls"] + N_TEST

    # A rerun by the console script in a process with no script registered (a call would fail): every
    # search trial and every step is answered from the cache, and the same prompt is chosen.
    again = honed("optimize", "run", "ladder.yaml", "--json", cwd=ws)
    assert again.returncode == 0, again.stderr
    replay = {s["id"]: s for s in json.loads(again.stdout)["steps"]}
    assert replay["searched"]["prompt"] == searched["prompt"]
    assert replay["searched"]["search"]["fresh_calls"] == 0
    assert replay["searched"]["search"]["calls"] == search["calls"]
    assert all(s["cached"] == s["calls"] == N_TEST for s in replay.values())
    assert replay["searched"]["vs_previous"] == searched["vs_previous"]

    # The terminal ledger, at 100 columns, has a line for the search: where it started, what it chose,
    # the dev means and what it spent.
    table = honed("optimize", "show", "qa-ladder", cwd=ws, env={"COLUMNS": "100"})
    assert table.returncode == 0, table.stderr
    assert max(len(line) for line in table.stdout.splitlines()) <= 100
    searches = table.stdout[table.stdout.index("prompt searches") :]
    row = next(line for line in searches.splitlines() if line.split("│")[1:2] == [" searched "])
    for shown in ("qa@v1", searched["prompt"], "0.000", "1.000", f"{search['calls']} of 300"):
        assert shown in row, (shown, row)


@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ("{train: train, dev: dev, budget: {calls: 300}, strategies: {fewshot: {}}}",
         "ladder.yaml:9: steps[1].optimize.strategies.fewshot: unknown key"),
        ("{train: train, dev: dev, budget: {}, strategies: {few_shot: {}}}",
         "ladder.yaml:9: steps[1].optimize.budget: give calls and/or usd"),
        ("{train: train, dev: dev, strategies: {few_shot: {}}}",
         "ladder.yaml:9: steps[1].optimize.budget: is required"),
        ("{train: train, dev: test, budget: {calls: 300}, strategies: {few_shot: {}}}",
         "ladder.yaml:9: steps[1].optimize.dev: 'test' is the split the ladder is measured on"),
        ("{train: dev, dev: dev, budget: {calls: 300}, strategies: {few_shot: {}}}",
         "ladder.yaml:9: steps[1].optimize.dev: 'dev' is also the train split"),
        ("{budget: {calls: 300}, strategies: {few_shot: {k: [0]}}}",
         "ladder.yaml:9: steps[1].optimize.strategies.few_shot.k: each k is between 1 and 50"),
    ],
)  # fmt: skip
def test_a_bad_optimize_field_is_one_line_naming_file_line_and_field(
    ws: Path, step: str, fragment: str
) -> None:
    text = PLAN.split("  - id: searched")[0] + f"  - {{id: searched, optimize: {step}}}\n"
    (ws / "ladder.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError) as exc:
        load_plan(ws / "ladder.yaml")
    line = exc.value.one_line()
    assert "\n" not in line and line.startswith(str(ws / "ladder.yaml")) and fragment in line, line


def test_the_console_script_refuses_a_bad_optimize_step_before_any_call(ws: Path) -> None:
    # Without the ladder's split the search would judge on cases it was built from.
    (ws / "ladder.yaml").write_text(PLAN.replace("split: test\n", ""), encoding="utf-8")
    out = honed("optimize", "run", "ladder.yaml", cwd=ws)
    assert_one_line_error(out, "ladder.yaml:9: steps[1].optimize: needs the ladder's `split:`")
    # A budget the search cannot live on stops it before its first call (no script: a call would fail
    # with another message).
    (ws / "ladder.yaml").write_text(PLAN.replace("calls: 300", "calls: 20"), encoding="utf-8")
    out = honed("optimize", "run", "ladder.yaml", cwd=ws)
    assert_one_line_error(out, "steps.1 (searched).optimize: budget.calls 20 is below the")
