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
from honed.store.logs import LogFilter
from honed.testing import scripted
from tests.support.cli import assert_one_line_error, honed

N_TEST = 30
PLAN = """\
name: catalogue-ladder
dataset: catalogue@latest
split: test
primary: correct
evaluators: [{type: contains, name: correct}, {type: exact, name: exact}]
latency_calls: 0  # latency is timed one at a time in its own test below; this one counts the run's calls
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
        ([{"id": "a", "model": "m"}], [":1: steps[0].prompt: the first step must set a prompt"]),
        ([{"id": "a", "prompt": "p"}, {"id": "a", "model": "m"}], [":1: steps[1].id: 'a' is used"]),
        ([{"id": "a", "prompt": "p"}, {"id": "b", "promt": "p"}], [":1: steps[1].promt: unknown key"]),
        ([], [":1: steps: needs at least 1 item(s)"]),
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
        honed("optimize", "run", "bad.yaml", cwd=workspace), "bad.yaml:", "splt: unknown key"
    )


def _yaml(path: Path) -> dict[str, object]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_latency_per_step_is_timed_one_at_a_time_and_a_free_model_gets_a_notional_price(
    workspace: Path,
) -> None:
    # Every call takes 0.05 s; the run makes two at a time.
    path = setup(workspace)
    with (workspace / "honed.toml").open("a", encoding="utf-8") as f:
        f.write(
            '\n[endpoints.scripted]\nprovider = "scripted"\nmax_concurrency = 2\ndelay_s = 0.05\n'
            '[prices."scripted/base"]\ninput = 100000.0\noutput = 200000.0\nnotional = true\n'
        )
    text = PLAN.replace("latency_calls: 0", "latency_calls: 4")
    text += "notional_prices: {scripted/tuned: {input: 1000000.0, output: 1000000.0}}\n"
    path.write_text(text, encoding="utf-8")
    model = Model()
    with scripted("base", model), scripted("tuned", model):
        h = Honed(load_settings(start=workspace))
        try:
            ledger = run_ladder(h, load_plan(path), n_boot=500)
            h.flush_logs()
            probes = h.store.logs.query(LogFilter(source="experiment", limit=1000))
            replay = run_ladder(h, load_plan(path), n_boot=500)
        finally:
            h.close()
    # The run's calls plus, per step, one warm-up call and four timed ones, made one at a time.
    assert model.calls == 3 * N_TEST + 3 * 5
    assert sum(1 for r in probes if r["metadata"].get("purpose") == "latency probe") == 3 * 5
    for s in ledger.steps:
        assert s.latency_mode == "one at a time" and s.latency_calls == 4, s
        assert s.latency_p50_s is not None and s.latency_p95_s is not None
        assert 0.045 <= s.latency_p50_s <= s.latency_p95_s < 0.2  # the call's own 0.05 s, not its queue
        assert s.queue_p50_s is not None  # the run's own queueing is kept apart
    # A free model's cost at a notional price: honed.toml's for the base, the plan's for the tuned one.
    base, _, tuned = ledger.steps
    assert base.cost_per_1k_usd == 0 and tuned.cost_per_1k_usd == 0  # nothing is charged
    assert base.notional_price == {"input": 100000.0, "output": 200000.0, "source": "honed.toml"}
    assert tuned.notional_price is not None and tuned.notional_price["source"] == "plan"
    assert base.mean_input_tokens is not None and base.mean_output_tokens is not None
    expected = (base.mean_input_tokens * 0.1 + base.mean_output_tokens * 0.2) * 1000
    assert base.notional_cost_per_1k_usd == pytest.approx(expected)
    # A replay of unchanged steps keeps their measured latency instead of timing them again.
    assert model.calls == 3 * N_TEST + 3 * 5
    assert [(s.latency_p50_s, s.latency_calls) for s in replay.steps] == [
        (s.latency_p50_s, s.latency_calls) for s in ledger.steps
    ]


def test_the_ledger_fits_100_columns_and_wide_shows_every_column(workspace: Path) -> None:
    path = setup(workspace)
    model = Model()
    with scripted("base", model), scripted("tuned", model):
        h = Honed(load_settings(start=workspace))
        try:
            run_ladder(h, load_plan(path), n_boot=500)
        finally:
            h.close()
    out = honed("optimize", "show", "catalogue-ladder", cwd=workspace, env={"COLUMNS": "100"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, out.stdout
    whole = ["baseline", "instructions", "fine-tuned", "▲ better", "▼ worse", "= no detectable difference"]
    for word in whole:
        assert any(word in line for line in lines), (word, out.stdout)
    rows = [line for line in lines if line.startswith("│ instructions ")]
    assert any("▲ +0.63 [+0.40, +0.87]" in row for row in rows), out.stdout  # a mark, not a folded word
    assert any("= +0.00 [+0.00, +0.00]" in line for line in lines if line.startswith("│ fine-tuned "))
    assert "time in the model" in " ".join(lines)

    wide = honed("optimize", "show", "catalogue-ladder", "--wide", cwd=workspace, env={"COLUMNS": "100"})
    assert wide.returncode == 0, wide.stderr
    row = next(line for line in wide.stdout.splitlines() if line.startswith("│ fine-tuned "))
    for cell in ("0.900 [0.767, 1.000]", "no detectable difference", "instructed@v1", "scripted/tuned"):
        assert cell in row, row
    assert len(row) > 100
