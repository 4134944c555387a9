"""`honed prompts run` logs its generation with the prompt's name and version, as every call through honed
is, so `honed logs list --prompt NAME` finds it (the real console script, in a fresh workspace)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.prompts.conftest import QA
from tests.support.cli import honed


def test_a_prompt_run_from_the_cli_is_logged_with_its_prompt_version(workspace: Path) -> None:
    (workspace / "honed.toml").write_text('default_model = "scripted/echo"\n')
    (workspace / "prompts").mkdir()
    (workspace / "prompts" / "qa.yaml").write_text(QA)
    pushed = honed("prompts", "push", "prompts", "--label", "production", "--json", cwd=workspace)
    assert pushed.returncode == 0, pushed.stderr
    version = json.loads(pushed.stdout)[0]["hash"]

    stored = honed("prompts", "run", "qa@production", "--var", "question=Why?", cwd=workspace)
    assert stored.returncode == 0, stored.stderr
    from_file = honed("prompts", "run", "prompts/qa.yaml", "--var", "question=From a file?", cwd=workspace)
    assert from_file.returncode == 0, from_file.stderr

    listed = honed("logs", "list", "--prompt", "qa", "--json", cwd=workspace)
    assert listed.returncode == 0, listed.stderr
    logs = sorted(json.loads(listed.stdout), key=lambda row: str(row["created_at"]))
    assert [(r["prompt"], r["prompt_version"], r["inputs"]) for r in logs] == [
        ("qa", version, {"question": "Why?"}),
        ("qa", version, {"question": "From a file?"}),  # the file is the pushed version: same hash
    ]
    assert [r["source"] for r in logs] == ["api", "api"]  # honed's own calls outside experiments
    assert logs[0]["output"] == "Question: Why?"
