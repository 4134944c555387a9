"""`honed import openai-evals` end to end, for the openai/evals registry and the hosted Evals API, on the
scripted echo model (its output is the last user message) with scripted graders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.importers.support import means, nothing_imported, only, run_import, workspace, write
from tests.support.cli import assert_one_line_error, honed

REGISTRY = """
test-match:
  id: test-match.s1.simple-v0
  metrics: [accuracy]
test-match.s1.simple-v0:
  class: evals.elsuite.basic.match:Match
  args:
    samples_jsonl: basic/samples.jsonl
test-includes:
  id: test-includes.s1.simple-v0
test-includes.s1.simple-v0:
  class: evals.elsuite.basic.includes:Includes
  args:
    samples_jsonl: basic/samples.jsonl
test-fuzzy:
  id: test-fuzzy.s1.simple-v0
test-fuzzy.s1.simple-v0:
  class: evals.elsuite.basic.fuzzy_match:FuzzyMatch
  args:
    samples_jsonl: basic/samples.jsonl
test-fact:
  id: test-fact.dev.v0
test-fact.dev.v0:
  class: evals.elsuite.modelgraded.classify:ModelBasedClassify
  args:
    samples_jsonl: basic/samples.jsonl
    modelgraded_spec: fact
test-closedqa:
  id: test-closedqa.dev.v0
test-closedqa.dev.v0:
  class: evals.elsuite.modelgraded.classify:ModelBasedClassify
  args:
    samples_jsonl: basic/samples.jsonl
    modelgraded_spec: closedqa
    modelgraded_spec_args:
      criteria: {relevance: "relevance: Is the submission about geography?"}
test-battle:
  id: test-battle.v0
test-battle.v0:
  class: evals.elsuite.modelgraded.classify:ModelBasedClassify
  args: {samples_jsonl: basic/samples.jsonl, modelgraded_spec: battle}
test-other:
  id: test-other.v0
test-other.v0:
  class: evals.elsuite.multiple_choice:MultipleChoice
  args: {samples_jsonl: basic/samples.jsonl}
"""

# The echo model answers with the last user message: the ideal answers are chosen against that.
SAMPLES = [
    {
        "input": [
            {"role": "system", "content": "Answer."},
            {"role": "user", "content": "Paris is the capital"},
        ],
        "ideal": "Paris",
    },
    {
        "input": [
            {"role": "system", "content": "Answer."},
            {"role": "user", "content": "the capital is Rome"},
        ],
        "ideal": ["Rome", "rome"],
    },
    {
        "input": [{"role": "system", "content": "Answer."}, {"role": "user", "content": "Oslo."}],
        "ideal": "oslo",
    },
]


def registry(root: Path) -> None:
    write(
        root,
        {
            "registry/evals/test.yaml": REGISTRY,
            "registry/data/basic/samples.jsonl": "".join(json.dumps(s) + "\n" for s in SAMPLES),
        },
    )


GRADER_MAP = ["-m", "openai:gpt-3.5-turbo=scripted/echo"]


@pytest.mark.parametrize(
    ("eval_id", "expected"),
    [
        # Match: the output starts with an ideal answer (case-sensitive): only "Paris is the capital".
        ("test-match", {"match": 1 / 3}),
        # Includes: contains one, case-sensitive: "Paris", "Rome", but not "oslo" in "Oslo.".
        ("test-includes", {"includes": 2 / 3}),
        # FuzzyMatch: normalised containment either way: all three; f1 from token overlap.
        (
            "test-fuzzy",
            {"accuracy": 1.0, "f1_score": pytest.approx((2 * (1 / 3) / (1 + 1 / 3) + 0.5 + 1.0) / 3)},
        ),
    ],
)
@pytest.mark.slow
def test_registry_basic_evals(tmp_path: Path, eval_id: str, expected: dict[str, float]) -> None:
    root = workspace(tmp_path)
    registry(root)
    report = run_import(root, "openai-evals", "registry/evals/test.yaml", "--eval", eval_id, *GRADER_MAP)
    got = {k: only(v) for k, v in means(root, report).items()}
    assert got == pytest.approx(expected)
    spec = report["run"]["spec"]
    assert spec["variants"][0]["model"] == "scripted/echo"


@pytest.mark.parametrize(
    ("eval_id", "evaluator"), [("test-fact", "fact"), ("test-closedqa", "closedqa-relevance")]
)
@pytest.mark.slow
def test_registry_model_graded_evals_run_a_judge(tmp_path: Path, eval_id: str, evaluator: str) -> None:
    root = workspace(tmp_path)
    registry(root)
    # One completion function: it is the grader too, as oaieval does.
    report = run_import(
        root,
        "openai-evals",
        "registry/evals/test.yaml",
        "--eval",
        eval_id,
        "--model",
        "judge",
        "-m",
        "openai:judge=judge/pass",
    )
    assert {k: only(v) for k, v in means(root, report).items()} == {evaluator: 1.0}


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--eval", "test-battle"], ["test-battle.v0", "battle"]),
        (["--eval", "test-other"], ["MultipleChoice"]),
        ([], ["pick one with --eval", "test-match"]),
        (["--eval", "test-match", "--model", "gpt-4"], ["openai:gpt-4", "--model-map"]),
    ],
    ids=["modelgraded-spec", "class", "several", "unmapped"],
)
def test_registry_refusals(tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    root = workspace(tmp_path)
    registry(root)
    done = honed("import", "openai-evals", "registry/evals/test.yaml", *args, *GRADER_MAP, cwd=root)
    assert_one_line_error(done, *fragments)
    nothing_imported(root, root / "registry" / "evals" / "honed-import")


HOSTED = {
    "name": "capitals",
    "data_source_config": {
        "type": "custom",
        "item_schema": {
            "type": "object",
            "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
            "required": ["question", "answer"],
        },
        "include_sample_schema": True,
    },
    "testing_criteria": [
        {
            "type": "string_check",
            "name": "eq",
            "input": "{{ sample.output_text }}",
            "reference": "{{ item.answer }}",
            "operation": "eq",
        },
        {
            "type": "string_check",
            "name": "ne",
            "input": "{{sample.output_text}}",
            "reference": "{{item.answer}}",
            "operation": "ne",
        },
        {
            "type": "string_check",
            "name": "like",
            "input": "{{sample.output_text}}",
            "reference": "Paris",
            "operation": "like",
        },
        {
            "type": "string_check",
            "name": "ilike",
            "input": "{{sample.output_text}}",
            "reference": "PARIS",
            "operation": "ilike",
        },
        {
            "type": "label_model",
            "name": "label",
            "model": "judge-4o",
            "input": [
                {
                    "role": "developer",
                    "content": "Label the answer to {{item.question}} as correct or incorrect.",
                },
                {"role": "user", "content": "{{sample.output_text}}"},
            ],
            "labels": ["correct", "incorrect"],
            "passing_labels": ["correct"],
        },
        {
            "type": "score_model",
            "name": "score",
            "model": "scorer-4o",
            "input": [{"role": "user", "content": "Score {{sample.output_text}} from 1 to 10."}],
            "range": [1, 10],
            "pass_threshold": 7,
        },
        {
            "type": "python",
            "name": "py",
            "source": "def grade(sample, item) -> float:\n"
            "    return 1.0 if item['answer'] in sample['output_text'] else 0.25\n",
            "pass_threshold": 0.5,
        },
    ],
    "data_source": {
        "type": "completions",
        "model": "gpt-4o-mini",
        "input_messages": {
            "type": "template",
            "template": [
                {"role": "developer", "content": "Answer briefly."},
                {"role": "user", "content": {"type": "input_text", "text": "{{ item.question }}"}},
            ],
        },
    },
}
ITEMS = [
    {"item": {"question": "Paris", "answer": "Paris"}},
    {"question": "Where is Rome? In Italy", "answer": "Italy"},
]


@pytest.mark.slow
def test_hosted_definition_every_grader(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    write(
        root, {"eval.json": json.dumps(HOSTED), "items.jsonl": "".join(json.dumps(i) + "\n" for i in ITEMS)}
    )
    report = run_import(
        root,
        "openai-evals",
        "eval.json",
        "--data",
        "items.jsonl",
        "-m",
        "openai:gpt-4o-mini=scripted/echo",
        "-m",
        "openai:judge-*=judge/pass",
        "-m",
        "openai:scorer-*=scorer/eight",
    )
    got = {k: only(v) for k, v in means(root, report).items()}
    assert got == pytest.approx(
        {"eq": 0.5, "ne": 0.5, "like": 0.5, "ilike": 0.5, "label": 1.0, "score": 8.0, "py": 1.0}
    )


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (
            {
                "testing_criteria": [
                    {
                        "type": "text_similarity",
                        "name": "t",
                        "input": "{{sample.output_text}}",
                        "reference": "{{item.answer}}",
                        "evaluation_metric": "bleu",
                        "pass_threshold": 0.5,
                    }
                ]
            },
            ["testing_criteria[0]", "bleu"],
        ),
        (
            {
                "testing_criteria": [
                    {
                        "type": "string_check",
                        "name": "s",
                        "input": "{{item.answer}}",
                        "reference": "x",
                        "operation": "eq",
                    }
                ]
            },
            ["testing_criteria[0]", "input"],
        ),
        (
            {
                "testing_criteria": [
                    {
                        "type": "string_check",
                        "name": "s",
                        "input": "{{sample.output_text}}",
                        "reference": "x",
                        "operation": "regex",
                    }
                ]
            },
            ["operation 'regex'"],
        ),
        ({"data_source_config": {"type": "logs"}}, ["logs"]),
        ({"testing_criteria": [{"type": "multi", "name": "m"}]}, ["'multi'"]),
    ],
    ids=["bleu", "input", "operation", "source", "grader-type"],
)
def test_hosted_refusals(tmp_path: Path, change: dict[str, object], fragments: list[str]) -> None:
    root = workspace(tmp_path)
    write(
        root,
        {
            "eval.json": json.dumps({**HOSTED, **change}),
            "items.jsonl": "".join(json.dumps(i) + "\n" for i in ITEMS),
        },
    )
    done = honed(
        "import",
        "openai-evals",
        "eval.json",
        "--data",
        "items.jsonl",
        "-m",
        "openai:*=scripted/echo",
        cwd=root,
    )
    assert_one_line_error(done, *fragments)
    nothing_imported(root, root / "honed-import")


def test_hosted_items_are_checked_against_the_item_schema(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    write(
        root, {"eval.json": json.dumps(HOSTED), "items.jsonl": json.dumps({"question": "no answer"}) + "\n"}
    )
    done = honed(
        "import",
        "openai-evals",
        "eval.json",
        "--data",
        "items.jsonl",
        "-m",
        "openai:*=scripted/echo",
        cwd=root,
    )
    assert_one_line_error(done, "items.jsonl:1", "item_schema")
    nothing_imported(root, root / "honed-import")
