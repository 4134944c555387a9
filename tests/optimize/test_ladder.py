"""The ladder: plan files, a three-step run with its ledger, resume and replay, and the CLI.

The scripted provider plays the models (the local model cannot be made to improve on cue): with the
instructed prompt it answers right on 9 cases in 10, with the bare prompt on 1 in 4, and the "fine-tuned"
model answers exactly like the base, so the last step buys nothing measurable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from honed.api import Honed
from honed.config import load_settings
from honed.datasets import Case, record_cases
from honed.errors import InvalidInputError, ProviderError
from honed.models.types import ChatRequest
from honed.optimize import load_plan, parse_plan, run_ladder, stored_ledger
from honed.testing import scripted
from tests.support.cli import assert_one_line_error, honed

N_TEST = 30
PLAN = """\
name: catalogue-ladder
dataset: catalogue@latest
split: test
primary: correct
evaluators: [{type: contains, name: correct}, {type: exact, name: exact}]
steps:
  - {id: baseline, prompt: prompts/bare.yaml, model: scripted/base, params: {temperature: 0}}
  - {id: instructions, prompt: prompts/instructed.yaml}
  - {id: fine-tuned, model: scripted/tuned, note: same behaviour as the base}
"""


def _prompt(name: str, system: str | None) -> str:
    head = f"name: {name}\nmessages:\n"
    sys_msg = f"  - role: system\n    content: {system}\n" if system else ""
    return head + sys_msg + "  - role: user\n    content: '{{ item }}'\n"


def setup(workspace: Path) -> Path:
    (workspace / "plans" / "prompts").mkdir(parents=True)
    (workspace / "plans" / "prompts" / "bare.yaml").write_text(_prompt("bare", None), encoding="utf-8")
    instructed = _prompt("instructed", "Answer with the part code only.")
    (workspace / "plans" / "prompts" / "instructed.yaml").write_text(instructed, encoding="utf-8")
    plan = workspace / "plans" / "ladder.yaml"
    plan.write_text(PLAN, encoding="utf-8")
    h = Honed(load_settings(start=workspace))
    cases = [
        Case(id=f"c{i:02d}", inputs={"item": f"item{i}"}, reference=f"code{i}", split="test")
        for i in range(N_TEST)
    ]
    cases += [
        Case(id=f"t{i}", inputs={"item": f"item{i}"}, reference=f"code{i}", split="train") for i in range(5)
    ]
    record_cases(h.store, "catalogue", cases)
    h.close()
    return plan


class Model:
    """Answers by the prompt: right on i % 10 != 0 when instructed, else on i % 4 == 0. Counts its calls;
    `failing` makes the tuned model raise on the first five cases a non-retryable provider error."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False

    def __call__(self, req: ChatRequest) -> str:
        self.calls += 1
        i = int(req.messages[-1]["content"].removeprefix("item"))
        if self.failing and i < 5 and req.model == "scripted/tuned":
            raise ProviderError("the endpoint is down", provider="scripted")
        instructed = any(m["role"] == "system" for m in req.messages)
        right = i % 10 != 0 if instructed else i % 4 == 0
        return f"code{i}" if right else "unknown"


def test_steps_inherit_what_they_do_not_set(tmp_path: Path) -> None:
    data = {
        "name": "l",
        "dataset": "d",
        "evaluators": [{"type": "exact"}],
        "steps": [
            {"id": "a", "prompt": "p.yaml", "model": "m1", "params": {"temperature": 0}},
            {"id": "b", "prompt": "q.yaml"},
            {"id": "c", "model": "m2", "params": {"max_tokens": 5}},
        ],
    }
    plan = parse_plan(data, base=tmp_path)
    assert [(s.prompt, s.model, s.params) for s in plan.steps] == [
        ("p.yaml", "m1", {"temperature": 0}),
        ("q.yaml", "m1", {"temperature": 0}),
        ("q.yaml", "m2", {"max_tokens": 5}),  # params set replace the previous ones whole
    ]
    assert plan.primary is None and plan.base == tmp_path


@pytest.mark.parametrize(
    ("steps", "fragments"),
    [
        ([{"id": "a", "model": "m"}], ["steps.0.prompt", "first step must set a prompt"]),
        ([{"id": "a", "prompt": "p"}, {"id": "a", "model": "m"}], ["steps.1.id", "'a'"]),
        ([{"id": "a", "prompt": "p"}, {"id": "b", "promt": "p"}], ["unknown key 'steps.1.promt'"]),
        ([], ["steps"]),
    ],
)
def test_a_bad_plan_is_a_one_line_error_naming_file_and_field(
    tmp_path: Path, steps: list[dict[str, str]], fragments: list[str]
) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_text(json.dumps({"dataset": "d", "evaluators": [{"type": "exact"}], "steps": steps}))
    with pytest.raises(InvalidInputError) as exc:
        load_plan(path)
    line = exc.value.one_line()
    assert "\n" not in line and line.startswith(str(path)), line
    for fragment in fragments:
        assert fragment in line, line


def test_a_ladder_run_keeps_a_ledger_resumes_and_replays(workspace: Path) -> None:
    path = setup(workspace)
    model = Model()
    with scripted("base", model), scripted("tuned", model):
        h = Honed(load_settings(start=workspace))
        try:
            with pytest.raises(InvalidInputError, match="primary: no evaluator named 'nope'"):
                run_ladder(h, parse_plan({**_yaml(path), "primary": "nope"}, source="x", base=path.parent))
            assert model.calls == 0  # a bad plan makes no call

            # First run: the fine-tuned step's endpoint fails on five cases.
            model.failing = True
            plan = load_plan(path)
            broken = run_ladder(h, plan, n_boot=2000)
            assert broken.run_status == "failed" and [s.errors for s in broken.steps] == [0, 0, 5]
            first_calls = model.calls
            assert first_calls == 3 * N_TEST  # the split only: no train case is called

            # Second run resumes that run: only the five failed calls are made again.
            model.failing = False
            ledger = run_ladder(h, plan, n_boot=2000)
            assert ledger.run_id == broken.run_id and ledger.run_status == "completed"
            assert model.calls == first_calls + 5

            assert [s.id for s in ledger.steps] == ["baseline", "instructions", "fine-tuned"]
            assert ledger.n_cases == N_TEST and ledger.primary == "correct"
            base, instr, tuned = ledger.steps
            assert (base.model, instr.model, tuned.model) == (
                "scripted/base",
                "scripted/base",
                "scripted/tuned",
            )
            assert instr.prompt == tuned.prompt == "instructed@v1"
            assert base.params == tuned.params and base.params["temperature"] == 0
            assert tuned.note == "same behaviour as the base"
            assert base.quality["correct"]["mean"] == pytest.approx(8 / 30)
            assert instr.quality["correct"]["mean"] == pytest.approx(27 / 30)
            low, high = instr.quality["correct"]["ci"]
            assert low < 27 / 30 < high
            assert base.vs_previous is None and base.vs_first is None

            assert (
                instr.vs_previous is not None and tuned.vs_previous is not None and tuned.vs_first is not None
            )
            big = instr.vs_previous["correct"]
            assert big["verdict"] == "better" and big["p_value"] < 0.01 and big["ci"][0] > 0
            assert big["diff"] == pytest.approx(19 / 30) and big["against"] == "baseline"
            none = tuned.vs_previous["correct"]
            assert none["verdict"] == "no detectable difference" and none["against"] == "instructions"
            assert none["diff"] == pytest.approx(0.0)
            # Against the first step the fine-tuned model still carries the instructions' gain.
            assert tuned.vs_first["correct"]["verdict"] == "better"
            assert tuned.vs_first["correct"]["against"] == "baseline"

            assert instr.mean_input_tokens is not None and base.mean_input_tokens is not None
            assert instr.mean_input_tokens > base.mean_input_tokens  # the system message costs tokens
            assert tuned.cost_usd == 0.0 and tuned.cost_per_1k_usd == 0.0  # scripted models are free
            assert tuned.latency_p50_s is not None

            stored = stored_ledger(h, "catalogue-ladder")
            assert stored == ledger.to_dict()

            # A third run of the completed ladder is a new run served from the response cache.
            replay = run_ladder(h, plan, n_boot=2000)
            assert model.calls == first_calls + 5
            assert replay.run_id != ledger.run_id
            assert all(s.cached == s.calls == N_TEST for s in replay.steps)
            assert replay.step("instructions").vs_previous == ledger.step("instructions").vs_previous
        finally:
            h.close()

    # The CLI replays the same ladder from the cache (no script is registered in its process).
    out = honed("optimize", "run", str(path), "--json", cwd=workspace)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [s["id"] for s in data["steps"]] == ["baseline", "instructions", "fine-tuned"]
    assert data["steps"][1]["vs_previous"]["correct"]["verdict"] == "better"
    shown = honed("optimize", "show", "catalogue-ladder", cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    assert "instructions" in shown.stdout and "better" in shown.stdout and "no detectable" in shown.stdout
    (workspace / "bad.yaml").write_text(PLAN.replace("split:", "splt:"), encoding="utf-8")
    assert_one_line_error(
        honed("optimize", "run", "bad.yaml", cwd=workspace), "bad.yaml", "unknown key 'splt'"
    )


def _yaml(path: Path) -> dict[str, object]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data
