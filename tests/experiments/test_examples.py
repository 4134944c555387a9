"""The bundled examples stay valid: their prompts, spec and evaluator file load as honed reads them."""

from __future__ import annotations

from pathlib import Path

from honed.experiments import load_spec
from honed.experiments.gate import load_gate
from honed.prompts import load_prompt
from tests.conftest import PROJECT_ROOT

COMPARE = PROJECT_ROOT / "examples" / "compare"


def test_compare_example_files_load() -> None:
    v1 = load_prompt(COMPARE / "prompts" / "qa-v1.yaml")
    v2 = load_prompt(COMPARE / "prompts" / "qa-v2.yaml")
    assert v1.name == v2.name == "qa" and v1.version() != v2.version()
    assert len(v2.render({"question": "q"})) == len(v1.render({"question": "q"})) + 6  # three example pairs
    spec = load_spec(COMPARE / "experiment.yaml")
    assert [v.id for v in spec.all_variants()] == ["instructions", "few-shot"]
    assert load_gate(COMPARE / "experiment.yaml").experiment == spec


def test_compare_example_checker(tmp_path: Path) -> None:
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("checks", COMPARE / "checks.py")
    assert module_spec is not None and module_spec.loader is not None
    checks = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(checks)
    assert checks.answer_correct('{"answer": "The Beatles"}', ["beatles"])[0] is True
    assert checks.answer_correct("The Beatles", ["beatles"])[0] is False


LADDER = PROJECT_ROOT / "examples" / "ladder"


def test_ladder_example_plan_and_checks() -> None:
    import importlib.util

    from honed.optimize import load_plan

    plan = load_plan(LADDER / "ladder.yaml")
    assert [s.id for s in plan.steps] == ["baseline", "instructions", "few-shot", "rag", "fine-tuned"]
    assert all(s.model is None for s in plan.steps)  # one setting (default_model) picks the endpoint
    assert plan.diagnose is not None and plan.diagnose.step == "instructions"
    for name in ("bare", "instructions"):
        assert load_prompt(LADDER / "prompts" / f"{name}.yaml").model is None
    module_spec = importlib.util.spec_from_file_location("ladder_checks", LADDER / "checks.py")
    assert module_spec is not None and module_spec.loader is not None
    checks = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(checks)
    assert checks.strict('{"answer": "$89"}', "$89")[0] is True
    assert checks.strict('{"answer": "$189"}', "$89")[0] is False
    assert checks.correct("It costs $89.", "$89")[0] is True and checks.format("It costs $89.")[0] is False
    assert checks.correct('{"answer": "12 years"}', "2 years")[0] is False


GATE = PROJECT_ROOT / "examples" / "gate"


def test_gate_example_spec_loads_and_reuses_the_compare_example() -> None:
    gate = load_gate(GATE / "ci.yaml")
    assert gate.has_baseline and [v.id for v in gate.experiment.all_variants()] == ["baseline", "few-shot"]
    for v in gate.experiment.all_variants():
        assert load_prompt(GATE / v.prompt).name == "qa"  # the compare example's prompts, by path
    evaluators = {e.get("name") for e in gate.experiment.evaluators}
    assert set(gate.thresholds) <= evaluators
    function = next(e["function"] for e in gate.experiment.evaluators if e["type"] == "python")
    assert (GATE / function.split(":")[0]).is_file()
    limits = gate.limits
    assert None not in (limits.cost_usd, limits.cost_per_call_usd, limits.latency_p95_s, limits.errors)
    run_sh = (GATE / "run.sh").read_text()
    assert "eval run ci.yaml --junit reports/honed.xml" in run_sh and "nq_open/NQ-open.dev.jsonl" in run_sh
