"""Ladder steps that change the prompt they inherit (few-shot on, retrieval added), failure categories per
step, the diagnosis kept with the ledger, and the report, on a real knowledge base with a scripted model.

The model (see `needs_both`) keeps the JSON form only after demonstrations and knows a product code only
from the product's document, so each step's effect and each failure category is known by construction.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from honed.api import Honed
from honed.config import load_settings
from honed.errors import InvalidInputError
from honed.models.types import ChatRequest
from honed.optimize import load_plan, run_ladder
from honed.prompts import get_prompt
from tests.optimize.catalogue import PRODUCTS, TRAIN, setup_catalogue
from tests.optimize.test_diagnose import recording
from tests.support.cli import assert_one_line_error, honed

pytestmark = pytest.mark.slow  # the knowledge base embeds with the real local embedder

TAIL = """\
diagnose: {step: instructions, kb: shop, few_shot: {split: train, k: 2}}
steps:
  - {id: instructions, prompt: prompts/qa.yaml, model: scripted/app}
  - {id: few-shot, few_shot: {split: train, k: 2}, note: demonstrations teach the form}
  - {id: rag, retrieve: {kb: shop, k: 2, into: facts}}
  - {id: one-fixed-shot, few_shot: {split: train, k: 1, select: fixed}}
"""


def test_steps_derive_their_prompts_and_the_ledger_says_why_results_fail(workspace: Path) -> None:
    from honed.testing import scripted

    plan = setup_catalogue(workspace, TAIL)
    seen: list[ChatRequest] = []
    with scripted("app", recording(seen)):
        h = Honed(load_settings(start=workspace))
        try:
            ledger = run_ladder(h, load_plan(plan), n_boot=2000)
            prompts = {s.id: get_prompt(h.store, s.prompt)[1] for s in ledger.steps}
        finally:
            h.close()
    steps = {s.id: s for s in ledger.steps}
    assert list(steps) == ["instructions", "few-shot", "rag", "one-fixed-shot"]

    # Each step's prompt is the previous one with the step's change, stored as a version.
    assert prompts["instructions"].examples_from is None and not prompts["instructions"].retrieve
    shots = prompts["few-shot"].examples_from
    assert shots is not None and shots.k == 2 and shots.split == "train"
    assert shots.output == '{"answer": "{{ reference }}"}' and shots.input == "{{ question }}"
    rag = prompts["rag"]
    assert rag.examples_from == shots and rag.retrieve is not None and rag.retrieve[0].into == "facts"
    assert rag.messages[-1].content == "Facts:\n{{ facts }}\n\n{{ question }}"
    fixed = prompts["one-fixed-shot"]
    assert fixed.examples_from is None and len(fixed.examples) == 1 and fixed.retrieve == rag.retrieve
    assert steps["few-shot"].changes == ["few-shot: 2 similar cases of train"]
    assert steps["rag"].changes == ["retrieval: 2 hybrid chunks of shop into facts"]

    # What the model was sent: demonstrations from train products only, then the retrieved facts.
    train_names = {PRODUCTS[s][0] for s in TRAIN}
    rag_calls = [r for r in seen if r.messages[-1]["content"].startswith("Facts:\n[1] (")]
    demos = [[m["content"] for m in r.messages[1:-1] if m["role"] == "user"] for r in rag_calls]
    # rag, then one fixed shot: 16 cases each, and 6 calls each timed one at a time for the latency
    assert sorted(len(d) for d in demos) == [1] * 22 + [2] * 22
    assert all(any(n in d for n in train_names) for ds in demos for d in ds)

    # Quality moves where the model says it should; failures are categorised per step.
    q = {sid: s.quality for sid, s in steps.items()}
    assert q["instructions"]["format"]["mean"] == 0 and q["few-shot"]["format"]["mean"] == 1
    assert q["few-shot"]["strict"]["mean"] == 0 and q["rag"]["strict"]["mean"] == pytest.approx(0.5)
    assert steps["rag"].vs_previous is not None and steps["rag"].vs_previous["strict"]["verdict"] == "better"
    # Latency is timed one at a time for every step, the one that retrieves too.
    assert all(s.latency_mode == "one at a time" and s.latency_calls == 5 for s in steps.values())
    f = {sid: s.failures for sid, s in steps.items()}
    assert f["instructions"] == {"n": 16, "ok": 0, "format": 0, "retrieval_miss": 0, "generation_miss": 0,
                                 "other": 16, "error": 0}  # fmt: skip
    assert f["rag"] is not None and f["rag"]["ok"] == 8 and f["rag"]["format"] == 0
    # The price questions fail with the document retrieved (generation) or without it (retrieval).
    assert f["rag"]["generation_miss"] + f["rag"]["retrieval_miss"] == 8

    assert ledger.diagnosis is not None and ledger.diagnosis["axis"] == "both"
    assert ledger.correct == "correct" and ledger.format == "format"

    # The CLI replays it from the cache and writes the report.
    out = honed("optimize", "run", "ladder.yaml", "--report", "ladder.html", cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert "axis = BOTH" in out.stdout and "why results failed" in out.stdout
    page = (workspace / "ladder.html").read_text(encoding="utf-8")
    assert "one-fixed-shot" in page and "<svg" in page
    again = honed("optimize", "report", "shop-ladder", "-o", "again.html", cwd=workspace)
    assert again.returncode == 0, again.stderr
    shown = json.loads(honed("optimize", "show", "shop-ladder", "--json", cwd=workspace).stdout)
    assert shown["steps"][2]["failures"] == f["rag"]


@pytest.mark.parametrize(
    ("tail", "fragment"),
    [
        ("steps:\n  - {id: a, prompt: prompts/qa.yaml, finetune: {split: test}}\n", "measured on"),
        (
            "steps:\n  - {id: a, prompt: prompts/qa.yaml, few_shot: {split: nope}}\n",
            "no cases in split 'nope'",
        ),
        ("steps:\n  - {id: a, prompt: prompts/qa.yaml, retrieve: {kb: shop, kk: 3}}\n", "unknown key"),
        ("steps:\n  - {id: a, prompt: prompts/qa.yaml, retrieve: {kb: none-such}}\n", "none-such"),
    ],
)
def test_a_bad_step_is_one_line_and_makes_no_call(workspace: Path, tail: str, fragment: str) -> None:
    setup_catalogue(workspace, tail)
    out = honed("optimize", "run", "ladder.yaml", cwd=workspace)
    assert_one_line_error(out, fragment)


def test_few_shot_input_cannot_read_retrieved_context(workspace: Path) -> None:
    tail = (
        "steps:\n  - {id: a, prompt: prompts/qa.yaml, retrieve: {kb: shop, into: facts,"
        ' query: "{{ question }}"}}\n  - {id: b, few_shot: {input: "{{ facts }}"}}\n'
    )
    plan = setup_catalogue(workspace, tail)
    h = Honed(load_settings(start=workspace))
    try:
        with pytest.raises(InvalidInputError, match=r"steps.1 \(b\): few_shot: .* facts"):
            run_ladder(h, load_plan(plan))
    finally:
        h.close()
