"""Shared by the importer tests: a workspace with scripted graders, the real CLI, and run scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from honed.config import init_workspace
from tests.support.cli import honed

#: Graders: `judge/*` always passes, `scorer/*` always gives 8 (on an integer scale).
GRADERS = (
    '\n[endpoints.judge]\nprovider = "scripted"\nreplies = [\'{"reasoning": "fine", "score": "pass"}\']\n'
    '\n[endpoints.scorer]\nprovider = "scripted"\nreplies = [\'{"reasoning": "good", "score": 8}\']\n'
)


def workspace(root: Path) -> Path:
    init_workspace(root)
    with (root / "honed.toml").open("a", encoding="utf-8") as f:
        f.write(GRADERS)
    return root


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def run_import(root: Path, *args: str) -> dict[str, Any]:
    """`honed import ARGS --run --json`: the run's report (the import itself must succeed)."""
    done = honed("import", *args, "--run", "--json", cwd=root)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def means(root: Path, report: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per evaluator, per variant: the mean score, as `honed experiments show RUN --json` reports it."""
    shown = honed("experiments", "show", report["run"]["id"], "--json", cwd=root)
    assert shown.returncode == 0, shown.stderr
    stats = json.loads(shown.stdout)["evaluators"]
    return {ev: {v: s["mean"] for v, s in body["summaries"].items()} for ev, body in stats.items()}


def only(values: dict[str, float | None]) -> float | None:
    """The one variant's value."""
    assert len(values) == 1, values
    return next(iter(values.values()))


def nothing_imported(root: Path, out: Path) -> None:
    """No output folder, no prompt versions, no dataset versions."""
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    prompts = honed("prompts", "list", "--json", cwd=root)
    assert json.loads(prompts.stdout or "[]") == [], prompts.stdout
    datasets = honed("datasets", "list", "--json", cwd=root)
    assert json.loads(datasets.stdout or "[]") == [], datasets.stdout
