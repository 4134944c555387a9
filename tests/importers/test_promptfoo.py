"""`honed import promptfoo` end to end: real config files, the real CLI, runs on the scripted echo model
(its output is the prompt it was sent), and each assertion's mapping checked by the score it gets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.importers.support import means, nothing_imported, only, run_import, workspace, write
from tests.support.cli import assert_one_line_error, honed

HEAD = "prompts: ['{{ q }}']\nproviders: [openai:gpt]\n"
ONE_TEST = "tests: [{vars: {q: x}, assert: [{type: equals, value: x}]}]\n"
ECHO = ["--model-map", "openai:*=scripted/echo", "--model-map", "grader:*=judge/pass"]

CONFIG = """
description: every assertion
prompts:
  - "{{ q }}"
providers:
  - openai:gpt-4o-mini
defaultTest:
  options:
    provider: grader:gpt
  assert:
    - {type: latency, threshold: 60000}
    - {type: cost, threshold: 0.01}
tests:
  - vars: {q: "Paris is lovely"}
    assert:
      - {type: equals, value: "Paris is lovely", metric: equals-pass}
      - {type: equals, value: "paris", metric: equals-fail}
      - {type: not-equals, value: "paris", metric: not-equals-pass}
      - {type: contains, value: "{{ q | truncate(5, True, '') }}", metric: contains-template}
      - {type: contains, value: "paris", metric: contains-case}
      - {type: icontains, value: "PARIS", metric: icontains-pass}
      - {type: not-icontains, value: "LOVELY", metric: not-icontains-fail}
      - {type: contains-any, value: ["nope", "lovely"], metric: contains-any-pass}
      - {type: contains-all, value: ["Paris", "nope"], metric: contains-all-fail}
      - {type: icontains-any, value: "NOPE, LOVELY", metric: icontains-any-pass}
      - {type: icontains-all, value: ["PARIS", "LOVELY"], metric: icontains-all-pass}
      - {type: not-contains-any, value: ["Rome", "Oslo"], metric: not-contains-any-pass}
      - {type: regex, value: "^Paris\\\\s", metric: regex-pass}
      - {type: not-regex, value: "\\\\d", metric: not-regex-pass}
      - {type: starts-with, value: "Paris", metric: starts-with-pass}
      - {type: not-starts-with, value: "Paris", metric: not-starts-with-fail}
      - {type: python, value: "output.endswith('lovely')", metric: python-inline}
      - {type: python, value: "file://checks.py", metric: python-file}
      - {type: python, value: "file://checks.py:scored", threshold: 0.5, metric: python-score}
      - {type: javascript, value: "output.length > 3", metric: js-pass}
      - {type: not-javascript, value: "output.includes('Paris')", metric: not-js-fail}
      - {type: javascript, value: "file://checks.js", metric: js-file}
      - {type: llm-rubric, value: "Mentions a city", metric: llm-rubric}
      - {type: factuality, value: "Paris is a city", metric: factuality}
      - {type: model-graded-closedqa, value: "Is it about France?", metric: closedqa}
      - {type: contains, value: "PARIS", transform: "output.toUpperCase()", metric: js-transform}
      - {type: contains, value: "paris is lovely!", transform: "file://transform.py", metric: py-transform}
      - {type: contains, value: "Paris", weight: 3, metric: weighted}
      - {type: contains, value: "nope", weight: 1, metric: weighted}
  - vars: {q: '{"a": 1}'}
    assert:
      - {type: is-json, metric: is-json-pass}
      - {type: is-json, value: {type: object, required: [b]}, metric: is-json-schema-fail}
      - {type: not-is-json, metric: not-is-json-fail}
      - {type: equals, value: {a: 1}, metric: equals-json}
"""

CHECKS_PY = """
def get_assert(output, context):
    return {"pass": context["vars"]["q"] in output, "score": 1.0, "reason": "has the question"}


def scored(output, context):
    return 0.75
"""
TRANSFORM_PY = """
def get_transform(output, context):
    return output.lower() + "!"
"""
CHECKS_JS = "module.exports = (output, context) => ({pass: output.startsWith(context.vars.q), score: 1});\n"

EXPECTED = {
    "latency": 1.0,
    "cost": 1.0,
    "equals-pass": 1.0,
    "equals-fail": 0.0,
    "not-equals-pass": 1.0,
    "contains-template": 1.0,
    "contains-case": 0.0,
    "icontains-pass": 1.0,
    "not-icontains-fail": 0.0,
    "contains-any-pass": 1.0,
    "contains-all-fail": 0.0,
    "icontains-any-pass": 1.0,
    "icontains-all-pass": 1.0,
    "not-contains-any-pass": 1.0,
    "regex-pass": 1.0,
    "not-regex-pass": 1.0,
    "starts-with-pass": 1.0,
    "not-starts-with-fail": 0.0,
    "python-inline": 1.0,
    "python-file": 1.0,
    "python-score": 0.75,
    "js-pass": 1.0,
    "not-js-fail": 0.0,
    "js-file": 1.0,
    "llm-rubric": 1.0,
    "factuality": 1.0,
    "closedqa": 1.0,
    "js-transform": 1.0,
    "py-transform": 1.0,
    "weighted": 0.75,
    "is-json-pass": 1.0,
    "is-json-schema-fail": 0.0,
    "not-is-json-fail": 0.0,
    "equals-json": 1.0,
}


@pytest.mark.slow
def test_every_assertion_maps_to_the_score_promptfoo_gives(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    write(
        root,
        {
            "suite/promptfooconfig.yaml": CONFIG,
            "suite/checks.py": CHECKS_PY,
            "suite/transform.py": TRANSFORM_PY,
            "suite/checks.js": CHECKS_JS,
        },
    )
    report = run_import(root, "promptfoo", "suite/promptfooconfig.yaml", *ECHO)
    got = {name: only(v) for name, v in means(root, report).items()}
    assert got == pytest.approx(EXPECTED)
    assert not report["errors"] or all(e["message"].startswith("no reference") for e in report["errors"])
    # The honed files are there, and the spec runs as `honed experiments run` runs it.
    out = root / "suite" / "honed-import"
    assert (out / "experiment.yaml").is_file() and (out / "dataset.jsonl").is_file()
    assert (out / "promptfoo_checks.py").is_file()
    again = honed("experiments", "run", str(out / "experiment.yaml"), "--json", cwd=root)
    assert again.returncode == 0, again.stderr
    assert {k: only(v) for k, v in means(root, json.loads(again.stdout)).items()} == pytest.approx(EXPECTED)


def test_prompts_tests_files_default_test_and_nunjucks(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    write(
        root,
        {
            "s/promptfooconfig.yaml": """
prompts:
  - file://prompts.txt
  - file://chat.json
  - id: file://chat.yaml
    label: yaml-chat
  - - {role: system, content: "Be brief."}
    - {role: user, content: "{{ q | upper }}"}
providers:
  - id: openai:gpt-4o-mini
    label: mini
    config: {temperature: 0, max_tokens: 64, apiKey: sk-not-used}
defaultTest:
  vars: {lang: fr}
  assert:
    - {type: icontains, value: "{{ q }}", metric: has-q}
tests:
  - file://cases.csv
  - file://more.jsonl
  - file://more.yaml
  - vars: {q: "inline one", doc: file://doc.txt}
""",
            "s/prompts.txt": "{% if lang === 'fr' %}FR{% elseif lang !== 'x' %}X{% endif %}: {{ q }}\n---\n"
            "{{ q }} as JSON: {{ {'q': q} | dump }}\n",
            "s/chat.json": json.dumps(
                [{"role": "system", "content": "You answer."}, {"role": "user", "content": "{{ q }}"}]
            ),
            "s/chat.yaml": "- role: user\n  content: '{{ q }}'\n",
            "s/cases.csv": "q,__expected1,__expected2,__description\n"
            "csv one,icontains:CSV,not-contains:zzz,from csv\n"
            "csv two,csv two,regex:^c,\n",
            "s/more.jsonl": json.dumps(
                {"vars": {"q": "jsonl one"}, "assert": [{"type": "contains", "value": "jsonl"}]}
            )
            + "\n",
            "s/more.yaml": "- vars: {q: yaml one}\n  assert: [{type: starts-with, value: yaml}]\n",
            "s/doc.txt": "a document",
        },
    )
    report = run_import(root, "promptfoo", "s/promptfooconfig.yaml", "-m", "openai:*=scripted/echo")
    scores = means(root, report)
    # 5 prompts (2 from the text file) x 1 provider; defaultTest's assertion on all 6 tests.
    assert len(report["variants"]) == 5
    assert set(scores) == {"has-q", "icontains", "not-contains", "equals", "regex", "contains", "starts-with"}
    assert scores["has-q"] == {v: 1.0 for v in report["variants"]}
    # The CSV's plain value is `equals`: only the bare `{{ q }}` prompts echo exactly "csv two".
    assert sorted(float(v or 0) for v in scores["equals"].values()) == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert all(v == 1.0 for v in scores["not-contains"].values())
    spec = report["run"]["spec"]
    assert {v["params"].get("max_tokens") for v in spec["variants"]} == {64}
    cases = honed("experiments", "cases", report["run"]["id"], "--json", "--full", "-n", "50", cwd=root)
    outputs = {
        o["output"]
        for c in json.loads(cases.stdout)["cases"]
        for runs in c["outputs"].values()
        for o in runs
        if c["case_id"] == "t1"
    }
    assert "FR: csv one" in outputs  # elseif, ===, the defaultTest var
    assert 'csv one as JSON: {"q":"csv one"}' in outputs  # dump
    assert "CSV ONE" in outputs  # the inline chat prompt's filter


@pytest.mark.parametrize(
    ("config", "files", "fragments"),
    [
        (
            "prompts: ['{{ q }}']\nproviders: [anthropic:claude]\n" + ONE_TEST,
            {},
            ["anthropic:claude", "--model-map"],
        ),
        (
            HEAD + "tests:\n  - vars: {q: x}\n    assert:\n"
            "      - {type: equals, value: x}\n      - {type: rouge-n, value: x}\n",
            {},
            ["promptfooconfig.yaml:7", "tests[0].assert[1]", "rouge-n"],
        ),
        (
            HEAD + "tests: file://t.csv\n",
            {"t.csv": "q,__expected\nx,equals:x\ny,bleu:y\n"},
            ["t.csv:3", "bleu"],
        ),
        (
            HEAD + "scenarios: []\ntests: [{vars: {q: x}}]\n",
            {},
            ["promptfooconfig.yaml:3", "scenarios"],
        ),
        (
            "prompts: [file://p.py]\nproviders: [openai:gpt]\n" + ONE_TEST,
            {"p.py": "def f(): pass\n"},
            ["prompt function"],
        ),
        (
            "prompts: ['{{ q | shout }}']\nproviders: [openai:gpt]\n" + ONE_TEST,
            {},
            ["Nunjucks", "shout"],
        ),
        (
            "prompts: ['{{ q }} {{ other }}']\nproviders: [openai:gpt]\n" + ONE_TEST,
            {},
            ["tests[0]", "'other'"],
        ),
        (
            HEAD + "tests: [{vars: {q: x}, assert: [{type: llm-rubric, value: ok, provider: o:j}]}]\n",
            {},
            ["o:j", "--model-map"],
        ),
    ],
    ids=[
        "unmapped-provider",
        "unknown-assertion",
        "csv-row",
        "scenarios",
        "prompt-function",
        "filter",
        "missing-var",
        "grader",
    ],
)
def test_what_cannot_be_mapped_is_one_line_and_imports_nothing(
    tmp_path: Path, config: str, files: dict[str, str], fragments: list[str]
) -> None:
    root = workspace(tmp_path)
    write(root, {"s/promptfooconfig.yaml": config, **{f"s/{k}": v for k, v in files.items()}})
    done = honed("import", "promptfoo", "s/promptfooconfig.yaml", "-m", "openai:*=scripted/echo", cwd=root)
    assert_one_line_error(done, *fragments)
    nothing_imported(root, root / "s" / "honed-import")


def test_javascript_without_node_is_refused_naming_it(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    write(
        root,
        {
            "s/promptfooconfig.yaml": HEAD
            + "tests: [{vars: {q: x}, assert: [{type: javascript, value: 'output.length > 0'}]}]\n"
        },
    )
    # A PATH with the virtual environment only: python and honed, no node.
    env = {"PATH": str(Path(sys.executable).parent)}
    done = honed(
        "import", "promptfoo", "s/promptfooconfig.yaml", "-m", "openai:*=scripted/echo", cwd=root, env=env
    )
    assert_one_line_error(done, "tests[0].assert[0]", "javascript", "Node.js")
    nothing_imported(root, root / "s" / "honed-import")


def test_import_without_run_prints_what_it_wrote(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    write(
        root,
        {
            "s/promptfooconfig.yaml": HEAD + ONE_TEST,
        },
    )
    out = root / "elsewhere"
    done = honed(
        "import",
        "promptfoo",
        "s/promptfooconfig.yaml",
        "-m",
        "openai:*=scripted/echo",
        "--out",
        str(out),
        "--json",
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["spec"] == str(out / "experiment.yaml")
    assert body["dataset"]["status"] == "new" and body["dataset"]["cases"] == 1
    assert [p["version"] for p in body["prompts"]] == [1]
    listed = json.loads(honed("datasets", "list", "--json", cwd=root).stdout)
    assert [d["name"] for d in listed] == [body["dataset"]["name"]]


@pytest.mark.slow
def test_similar_maps_to_embedding_similarity(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    write(
        root,
        {
            "s/promptfooconfig.yaml": HEAD + "tests:\n"
            "  - vars: {q: The cat sat on the mat.}\n    assert:\n"
            "      - {type: similar, value: A cat was sitting on the mat., threshold: 0.6, metric: close}\n"
            "      - {type: not-similar, value: Quarterly revenue grew by four percent., metric: far}\n"
        },
    )
    report = run_import(root, "promptfoo", "s/promptfooconfig.yaml", "-m", "openai:*=scripted/echo")
    scores = {k: only(v) for k, v in means(root, report).items()}
    assert scores["close"] is not None and scores["close"] > 0.6
    assert scores["far"] == 1.0


@pytest.mark.slow
def test_a_suite_runs_on_the_local_model(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    write(
        root,
        {
            "s/promptfooconfig.yaml": "prompts: ['Answer in one word: {{ q }}']\n"
            "providers: [{id: openai:gpt-4o-mini, config: {max_tokens: 8, temperature: 0}}]\n"
            "tests: [{vars: {q: 'What is the capital of France?'},\n"
            "         assert: [{type: icontains, value: paris}]}]\n"
        },
    )
    report = run_import(
        root, "promptfoo", "s/promptfooconfig.yaml", "-m", "openai:*=local/smollm2-135m-instruct"
    )
    assert report["run"]["status"] == "completed"
    assert set(means(root, report)) == {"icontains"}
