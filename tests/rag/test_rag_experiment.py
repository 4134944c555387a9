"""A RAG prompt in an experiment, end to end: the example catalogue (examples/rag) as a knowledge base,
the real local model answering closed-book and from retrieved facts, and the report a user reads:
correctness compared with paired statistics, faithfulness per answer, and each wrong answer attributed
to retrieval or to generation.

The faithfulness judge is a scripted model (a fake): the local 135M model cannot produce the judge's
JSON reliably, and what is under test here is the wiring (what retrieval put into the prompt reaches the
judge; its scores reach the report), not a judge's wisdom. The fake is rule-based, not canned: it splits
the answer into one claim and calls it supported only when the claim's value appears in the passages it
was actually sent, so the scores depend on the real retrieval and the real model output.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest

import honed
from honed.datasets import Case, record_cases
from honed.experiments import analyse, parse_spec, resolve, run_experiment
from honed.models.types import ChatRequest
from honed.rag.index.kb import KnowledgeBaseConfig, create_kb, get_kb
from honed.testing import scripted
from tests.conftest import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "rag"
pytestmark = pytest.mark.slow


def judge(request: ChatRequest) -> str:
    """Rule-based stand-in for a strong judge (see the module docstring)."""
    prompt = request.messages[-1]["content"]
    if "[Claims]" in prompt:
        passages = prompt.split("[Passages]", 1)[1].split("[Claims]", 1)[0]
        claims = re.findall(r"^\d+\. (.*)$", prompt.split("[Claims]", 1)[1], flags=re.M)
        verdicts = []
        for i, claim in enumerate(claims, 1):
            values = re.findall(r"\$?\d[\d,]*|[A-Z]{2}-\d{4}", claim)
            supported = bool(values) and all(v in passages for v in values)
            verdicts.append(
                {
                    "claim": i,
                    "supported": supported,
                    "reason": "value in passages" if supported else "not found",
                }
            )
        return json.dumps({"verdicts": verdicts})
    text = prompt.split("[Text]", 1)[1].split("List the factual claims", 1)[0].strip()
    answer = text
    with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
        answer = str(json.loads(text.splitlines()[0])["answer"])
    return json.dumps({"claims": [answer] if answer.strip() else []})


def test_a_rag_prompt_reports_faithfulness_and_the_failure_split(workspace: Path) -> None:
    h = honed.connect(workspace)
    create_kb(h.store, "catalogue", KnowledgeBaseConfig())
    kb = get_kb(h.store, h.settings, "catalogue")
    kb.ingest([EXAMPLE / "docs"])
    kb.close()
    rows = [json.loads(line) for line in (EXAMPLE / "questions.jsonl").read_text().splitlines()]
    cases = [
        Case(
            id=r["id"],
            inputs={"question": r["question"]},
            reference=r["reference"],
            context_ids=r["context_ids"],
        )
        for r in rows[:9]
    ]
    record_cases(h.store, "catalogue", cases)
    with scripted("judge", judge) as judge_model:
        spec = parse_spec(
            {
                "name": "catalogue-rag",
                "dataset": "catalogue",
                "variants": [
                    {"id": "closed-book", "prompt": "prompts/closed.yaml", "params": {"max_tokens": 16}},
                    {"id": "rag", "prompt": "prompts/rag.yaml", "params": {"max_tokens": 16}},
                ],
                "evaluators": [
                    {"type": "contains", "name": "correct"},
                    {"type": "faithfulness", "name": "faithfulness", "model": judge_model},
                ],
            }
        )
        exp = resolve(h, spec, base=EXAMPLE)
        assert dict(exp.knowledge)["catalogue"] == get_kb(h.store, h.settings, "catalogue").version.hash
        run = run_experiment(h, exp)
    report = analyse(h.store, run.id)
    assert run.status == "completed"
    # Every rag answer was judged for faithfulness against what was retrieved for it; closed-book answers
    # had no context, so they are errors (named as such), never scores.
    faith = report.stats["faithfulness"].summaries
    assert faith["rag"].n_scored == len(cases) and faith["closed-book"].n_scored == 0
    assert faith["closed-book"].n_errors == len(cases)
    stored = [
        s for s in h.store.runs.scores(run.id) if s["evaluator"] == "faithfulness" and s["variant"] == "rag"
    ]
    assert all(s["reason"] for s in stored)
    # The retrieval section: gold documents retrieved, and the wrong answers split by stage.
    retrieval = report.retrieval["rag"]
    assert report.retrieval_judge == "correct"
    assert retrieval["with_gold"] == len(cases) and retrieval["gold_retrieved"] == len(cases)
    kinds = retrieval["attribution"]["kinds"]
    assert sum(k["count"] for k in kinds.values()) == len(cases)
    correct = report.stats["correct"].summaries["rag"]
    assert kinds["ok"]["count"] == round(correct.pass_rate * len(cases))  # type: ignore[operator]
    # Every gold document was retrieved, so every wrong answer is the generation's.
    assert kinds["retrieval_miss"]["count"] == 0
    assert kinds["generation_miss"]["count"] == len(cases) - kinds["ok"]["count"]
    assert "closed-book" not in report.retrieval
    h.close()
