"""`honed finetune` through the real console script: jobs created, cancelled, listed and shown from
different processes, each a separate `honed` run against the same workspace."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import honed
from honed.finetune.jobs import get_job
from tests.finetune.lora_data import examples, write_jsonl
from tests.support.cli import assert_one_line_error
from tests.support.cli import honed as run_honed

pytestmark = pytest.mark.slow


def test_jobs_are_created_cancelled_listed_and_shown_across_processes(workspace: Path) -> None:
    bad = write_jsonl(
        workspace / "bad.jsonl", [*examples(1), {"messages": [{"role": "user", "content": "?"}]}]
    )
    assert_one_line_error(run_honed("finetune", "create", "--file", str(bad), cwd=workspace), "bad.jsonl:2")

    train = write_jsonl(workspace / "train.jsonl", examples(12))
    args = ["--batch-size", "4", "--max-seq-len", "64", "--epochs", "100", "--max-steps", "200"]
    created = run_honed("finetune", "create", "--file", str(train), *args, "--json", cwd=workspace)
    assert created.returncode == 0, created.stderr
    job_id = json.loads(created.stdout)["id"]

    with honed.connect(workspace) as h:  # this test process is yet another reader
        job = get_job(h, job_id)
        deadline = time.monotonic() + 300
        while not job.events(kind="metric"):
            assert time.monotonic() < deadline and not job.done(), job.error
            time.sleep(0.2)

    cancelled = run_honed("finetune", "cancel", job_id, cwd=workspace)
    assert cancelled.returncode == 0 and "cancel requested" in cancelled.stdout, cancelled.stderr
    waited = run_honed("finetune", "wait", job_id, "--timeout", "300", cwd=workspace)
    # progress on stderr as it happens, then the outcome as the one error line
    assert waited.returncode != 0 and "step 1: loss" in waited.stderr and "Traceback" not in waited.stderr
    assert waited.stderr.splitlines()[-1] == f"error: fine-tuning job {job_id} was cancelled"

    listed = run_honed("finetune", "list", "--json", cwd=workspace)
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["status"]) for r in rows] == [(job_id, "cancelled")]  # the bad file made no job
    assert 1 <= rows[0]["curve"]["steps"] < 200

    shown = json.loads(run_honed("finetune", "show", job_id, "--json", cwd=workspace).stdout)
    assert shown["status"] == "cancelled" and shown["source"] == {"file": str(train)}
    assert shown["hyperparameters"] == {"batch_size": 4, "max_seq_len": 64, "epochs": 100, "max_steps": 200}
    kinds = [e["kind"] for e in shown["events"]]
    assert "metric" in kinds and shown["events"][-1]["message"].startswith("cancelled")
    table = run_honed("finetune", "show", job_id, cwd=workspace)
    assert (
        table.returncode == 0 and "cancelled" in table.stdout and "loss first / last / best" in table.stdout
    )
