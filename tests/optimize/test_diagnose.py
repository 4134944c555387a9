"""The diagnosis on a real knowledge base and real store, with scripted models that fail on one axis only.

Each model plays an application whose gap is known by construction, so the diagnosis can be checked:
one answers with the right value in free text (a pure format failure: behaviour), one answers in the
right form but knows the value only when the product's document is in its prompt (context), and one,
like the small local model, needs both demonstrations to keep the form and the facts to know the value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from honed.api import Honed
from honed.config import load_settings
from honed.errors import InvalidInputError
from honed.models.types import ChatRequest
from honed.optimize import diagnose_plan, load_plan, stored_diagnosis
from honed.testing import scripted
from tests.optimize.catalogue import as_json, demos_in, facts_in, question_of, setup_catalogue, value_for
from tests.support.cli import assert_one_line_error, honed

pytestmark = pytest.mark.slow  # the knowledge base embeds with the real local embedder

TAIL = """\
diagnose: {kb: shop, few_shot: {split: train, k: 2}}
steps:
  - {id: instructions, prompt: prompts/qa.yaml, model: scripted/app}
"""


def free_text(req: ChatRequest) -> str:
    """Knows every value, never uses the JSON form: all failures are format."""
    return f"The answer is {value_for(question_of(req.messages))}."


def needs_context(req: ChatRequest) -> str:
    """Always the JSON form; the right value only when the document is in the prompt."""
    q = question_of(req.messages)
    return as_json(value_for(q) if facts_in(req.messages, q) else "$10")


def needs_both(req: ChatRequest) -> str:
    """JSON only after demonstrations; the value only from the document, and then on the code questions
    alone (the model reads prices badly even when given them)."""
    q = question_of(req.messages)
    value = value_for(q) if facts_in(req.messages, q) and "code" in q else "unknown"
    return as_json(value) if demos_in(req.messages) else f"I think it is {value}"


def recording(seen: list[ChatRequest]) -> Callable[[ChatRequest], str]:
    """`needs_both`, appending each request it answers to `seen` (to count the calls that reach it)."""

    def answer(req: ChatRequest) -> str:
        seen.append(req)
        return needs_both(req)

    return answer


def diagnose(workspace: Path, model: Callable[[ChatRequest], str]) -> dict[str, object]:
    plan = setup_catalogue(workspace, TAIL)
    with scripted("app", model):
        h = Honed(load_settings(start=workspace))
        try:
            return diagnose_plan(h, load_plan(plan), n_boot=2000).to_dict()
        finally:
            h.close()


def effect(d: dict[str, object], name: str, evaluator: str) -> dict[str, object]:
    effects = d["effects"]
    assert isinstance(effects, list)
    [found] = [e for e in effects if e["name"] == name and e["evaluator"] == evaluator]
    return found  # type: ignore[no-any-return]


def test_pure_format_failures_are_behaviour(workspace: Path) -> None:
    d = diagnose(workspace, free_text)
    assert d["axis"] == "behaviour", d["summary"]
    assert [a["id"] for a in d["ablations"]] == ["as-is", "oracle-context", "few-shot", "oracle+few-shot"]  # type: ignore[union-attr]
    failures = d["failures"]
    assert isinstance(failures, dict)
    assert failures["n"] == 16 and failures["format"] == 16 and failures["context"] == 0
    assert effect(d, "context", "correct")["verdict"] == "no detectable difference"
    techniques = [r["technique"] for r in d["recommendation"]]  # type: ignore[union-attr]
    assert techniques[0].startswith("few-shot") and not any("retrieval" in t for t in techniques)
    assert "right content in the wrong form" in d["recommendation"][0]["why"]  # type: ignore[index]


def test_missing_knowledge_is_context(workspace: Path) -> None:
    d = diagnose(workspace, needs_context)
    assert d["axis"] == "context", d["summary"]
    ctx = effect(d, "context", "correct")
    assert ctx["verdict"] == "better" and ctx["diff"] == pytest.approx(1.0)
    assert d["failures"]["context"] == 16 and d["failures"]["format"] == 0  # type: ignore[index]
    assert effect(d, "few-shot", "format")["verdict"] == "no detectable difference"
    [rec] = d["recommendation"]  # type: ignore[misc]
    assert rec["technique"].startswith("retrieval")
    # The oracle gives each case its own product's document, never another's.
    oracle = next(a for a in d["ablations"] if a["id"] == "oracle-context")  # type: ignore[union-attr]
    assert oracle["quality"]["strict"]["mean"] == pytest.approx(1.0)


def test_both_axes_and_a_gap_left_for_fine_tuning(workspace: Path) -> None:
    d = diagnose(workspace, needs_both)
    assert d["axis"] == "both", d["summary"]
    assert effect(d, "few-shot", "format")["diff"] == pytest.approx(1.0)
    assert effect(d, "context", "correct")["verdict"] == "better"  # code questions: 8 of 16
    both = effect(d, "both", "strict")
    assert both["diff"] == pytest.approx(0.5)
    techniques = [r["technique"] for r in d["recommendation"]]  # type: ignore[union-attr]
    assert len(techniques) == 3 and techniques[-1].startswith("fine-tuning")
    assert d["failures"]["persistent"] == 8  # type: ignore[index]  # the price questions


def test_the_diagnosis_is_stored_and_shown_by_the_cli(workspace: Path) -> None:
    d = diagnose(workspace, needs_context)
    h = Honed(load_settings(start=workspace))
    try:
        assert stored_diagnosis(h, "shop-ladder") == d
    finally:
        h.close()
    # A replay in another process is served from the response cache (no script is registered there).
    out = honed("optimize", "diagnose", "ladder.yaml", "--json", cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["axis"] == "context"
    text = honed("optimize", "diagnose", "ladder.yaml", cwd=workspace)
    assert text.returncode == 0 and "axis = CONTEXT" in text.stdout and "next 1: retrieval" in text.stdout


def test_a_diagnosis_needs_gold_context_and_a_content_evaluator(workspace: Path) -> None:
    plan = setup_catalogue(workspace, TAIL)
    text = plan.read_text(encoding="utf-8")
    plan.write_text(text.replace("correct: correct\n", ""), encoding="utf-8")
    assert_one_line_error(
        honed("optimize", "diagnose", "ladder.yaml", cwd=workspace),
        "ladder.yaml",
        "diagnose: needs `correct:`",
    )
    plan.write_text(text.replace("diagnose: {kb: shop,", "diagnose: {kb: nope,"), encoding="utf-8")
    with scripted("app", needs_context):
        h = Honed(load_settings(start=workspace))
        try:
            with pytest.raises(InvalidInputError, match="nope"):
                diagnose_plan(h, load_plan(plan))
        finally:
            h.close()
