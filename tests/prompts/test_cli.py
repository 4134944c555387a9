"""`honed prompts ...` as a user runs it: the real console script in a subprocess, in a fresh workspace.

Each call costs most of a second (a new process), so each test walks through a whole user story.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.prompts.conftest import QA
from tests.support.cli import assert_one_line_error, honed

CHAIN = """\
steps:
  - prompt: qa@production
    output: facts
  - output: answer
    prompt:
      messages:
        - role: user
          content: "Using {{ facts }}: {{ question }}"
"""


@pytest.fixture
def ws(workspace: Path) -> Path:
    (workspace / "honed.toml").write_text('default_model = "scripted/echo"\n')
    (workspace / "prompts").mkdir()
    (workspace / "prompts" / "qa.yaml").write_text(QA)
    return workspace


def ok(*args: str, cwd: Path) -> str:
    r = honed("prompts", *args, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.slow
def test_push_list_show_label_diff(ws: Path) -> None:
    out = ok("push", "prompts", "--note", "first", cwd=ws)
    assert "qa" in out and "v1" in out and "new" in out
    (ws / "prompts" / "qa.yaml").write_text(QA.replace("temperature: 0", "temperature: 0.5"))
    pushed = json.loads(ok("push", "prompts", "--label", "production", "--json", cwd=ws))
    assert (
        pushed[0]["version"] == 2 and pushed[0]["status"] == "new" and pushed[0]["labels"] == ["production"]
    )

    listing = json.loads(ok("list", "--json", cwd=ws))
    assert [(r["name"], r["versions"], r["latest"], r["labels"]) for r in listing] == [
        ("qa", 2, pushed[0]["hash"], {"production": 2})
    ]
    shown = json.loads(ok("show", "qa@v1", "--json", cwd=ws))
    assert shown["version"] == 1 and shown["note"] == "first" and shown["body"]["params"]["temperature"] == 0
    text = ok("show", "qa@production", cwd=ws)
    assert "prompt qa v2" in text and "labels: production" in text and "temperature: 0.5" in text
    history = json.loads(ok("show", "qa", "--history", "--json", cwd=ws))
    assert [(v["version"], v["labels"]) for v in history] == [(1, []), (2, ["production"])]

    assert "production -> qa v1" in ok("label", "qa@v1", "production", cwd=ws)
    d = ok("diff", "qa", cwd=ws)  # previous vs latest
    assert "-  temperature: 0\n" in d and "+  temperature: 0.5\n" in d and "params.temperature (changed)" in d
    data = json.loads(ok("diff", "qa@production", "@v2", "--json", cwd=ws))  # production is v1 now
    assert data["old"].startswith("qa@v1") and [c["path"] for c in data["changes"]] == ["params.temperature"]

    # show --yaml writes a file that pushes back as the same version; a file diffs against the store
    (ws / "copy").mkdir()
    (ws / "copy" / "qa.yaml").write_text(ok("show", "qa", "--yaml", cwd=ws))
    assert "unchanged" in ok("push", "copy/qa.yaml", cwd=ws)
    (ws / "copy" / "qa.yaml").write_text(QA.replace("briefly", "in detail"))
    assert "Answer in detail." in ok("diff", "copy/qa.yaml", cwd=ws)


@pytest.mark.slow
def test_run_prompts_and_chains(ws: Path) -> None:
    (ws / "flows").mkdir()
    (ws / "flows" / "answer.yaml").write_text(CHAIN)
    ok("push", "prompts", "--label", "production", cwd=ws)
    r = honed("prompts", "run", "qa", "--var", "question=Why?", cwd=ws)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Question: Why?"
    assert "qa v1" in r.stderr and "in /" in r.stderr and "out tokens" in r.stderr

    (ws / "vars.json").write_text(json.dumps({"question": "From file", "unused": [1, 2]}))
    data = json.loads(ok("run", "prompts/qa.yaml", "--vars-file", "vars.json", "--json", cwd=ws))
    assert data["text"] == "Question: From file" and data["messages"][0]["content"] == "Answer briefly."
    assert data["model"] == "scripted/echo" and data["input_tokens"] > 0

    assert_one_line_error(honed("prompts", "run", "qa", cwd=ws), "undefined variable 'question'")

    chain = json.loads(ok("run", "flows/answer.yaml", "--var", "question=why", "--json", cwd=ws))
    assert chain["outputs"] == {"facts": "Question: why", "answer": "Using Question: why: why"}
    assert [s["prompt"] for s in chain["steps"]] == ["qa", "answer"]
    human = ok("run", "flows/answer.yaml", "--var", "question=why", cwd=ws)
    assert "step 1: facts" in human and "step 2: answer" in human


def test_user_errors_are_one_line_and_a_bad_file_records_nothing(ws: Path) -> None:
    (ws / "prompts" / "zz.yaml").write_text("messages:\n  - role: user\n    content: hi\n    colour: red\n")
    r = honed("prompts", "push", "prompts", cwd=ws)
    assert_one_line_error(r, "zz.yaml:4: messages[0].colour: unknown key")
    assert_one_line_error(honed("prompts", "show", "qa", cwd=ws), "no prompt or chain named 'qa'")
    assert_one_line_error(honed("prompts", "push", "missing.yaml", cwd=ws), "missing.yaml: no such file")


@pytest.mark.slow
def test_run_with_the_local_model(ws: Path) -> None:
    r = honed(
        "prompts", "run", "prompts/qa.yaml", "--model", "local/smollm2-135m-instruct", "--max-tokens", "3",
        "--var", "question=What is 2+2?", "--json", cwd=ws, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["model"] == "local/smollm2-135m-instruct" and 1 <= data["output_tokens"] <= 3
