"""Names a user copies into the next command (model references, job ids) are never broken over lines, at
the common 100 columns, in `models list`, `finetune list` and `finetune compare`; the tables still fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

import honed
from honed.cli import common
from tests.support.cli import honed as run_honed

BASE = "local/smollm2-135m-instruct"
JOB = "ft-4bd1e595f694"
TUNED = f"{BASE}+{JOB}"  # 43 characters: what a local fine-tune is called
NARROW = {"COLUMNS": "100"}


def finished_job(workspace: Path) -> None:
    """A succeeded local job and its adapter folder, as a finished `finetune create` leaves them."""
    adapter = workspace / ".honed" / "adapters" / JOB
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    with honed.connect(workspace) as h:
        spec = {"backend": "local", "base_model": BASE, "training": "sha256:x"}
        h.store.jobs.create(JOB, "local", spec, status="succeeded")
        h.store.jobs.update(JOB, model=TUNED)


def whole_on_a_line(stdout: str, name: str) -> None:
    lines = stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, stdout
    assert any(name in line for line in lines), stdout


def test_models_list_keeps_each_name_on_one_line(workspace: Path) -> None:
    finished_job(workspace)
    listed = run_honed("models", "list", cwd=workspace, env=NARROW)
    assert listed.returncode == 0, listed.stderr
    whole_on_a_line(listed.stdout, TUNED)
    whole_on_a_line(listed.stdout, f"{BASE} (default)")
    row = next(line for line in listed.stdout.splitlines() if TUNED in line)
    assert row.split("│")[1].strip() == TUNED and JOB in row.split("│", 2)[2]  # its job, on its line


def test_finetune_list_prints_the_model_whole_under_a_table_too_narrow_for_it(workspace: Path) -> None:
    finished_job(workspace)
    listed = run_honed("finetune", "list", cwd=workspace, env=NARROW)
    assert listed.returncode == 0, listed.stderr
    whole_on_a_line(listed.stdout, TUNED)
    assert f"  {JOB}  {TUNED}" in listed.stdout.splitlines()  # keyed by the job that made it
    wide = run_honed("finetune", "list", cwd=workspace, env={"COLUMNS": "160"})
    row = next(line for line in wide.stdout.splitlines() if JOB in line)
    assert TUNED in row  # room enough: a column of the table


def test_finetune_compare_names_the_sides_on_lines_of_their_own(workspace: Path) -> None:
    with (workspace / "honed.toml").open("a", encoding="utf-8") as f:
        for endpoint in ("base", "local-ft"):
            f.write(f'\n[endpoints.{endpoint}]\nprovider = "scripted"\nreplies = ["capital0"]\n')
    (workspace / "caps.jsonl").write_text(
        "".join(
            json.dumps({"inputs": {"country": f"c{i}"}, "reference": f"capital{i}", "split": "test"}) + "\n"
            for i in range(8)
        ),
        encoding="utf-8",
    )
    (workspace / "p.yaml").write_text(
        "name: caps\nmessages:\n  - {role: user, content: '{{ country }}'}\n", encoding="utf-8"
    )
    for args in (("datasets", "import", "caps", "caps.jsonl"), ("prompts", "push", "p.yaml")):
        assert run_honed(*args, cwd=workspace).returncode == 0
    candidate = f"local-ft/smollm2-135m-instruct+{JOB}"
    shown = run_honed(
        "finetune", "compare", "--dataset", "caps", "--baseline-prompt", "caps@v1", "--candidate", candidate,
        "--baseline", "base/smollm2-135m-instruct", "--latency-calls", "0", cwd=workspace, env=NARROW,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    whole_on_a_line(shown.stdout, candidate)
    side = ["candidate", candidate, "with", "prompt", "caps@v1"]
    assert any(line.split() == side for line in shown.stdout.splitlines()), shown.stdout


def test_fits_whole_counts_the_names_whole_and_the_rest_squeezed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "console", Console(width=100))
    rows = [(TUNED, "adapter", JOB, "no key: set OPENAI_API_KEY")]
    columns = ["model", "kind", "job", "status"]
    # 43 + 15 whole, `kind` (7) and `status` (squeezed to 8), 2 of padding each and 5 rules: 96.
    assert common.fits_whole(columns, rows, whole={"model", "job"})
    assert not common.fits_whole(columns, rows, whole={"model", "job", "status"})  # 114
