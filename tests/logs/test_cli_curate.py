"""`honed logs curate` and `honed finetune export` through the real console script: curate logged
generations into a dataset, export it for OpenAI and Hugging Face, and fail in one line on bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import honed
from datasets import DatasetDict, load_from_disk
from honed.finetune.chat_format import check_chat_jsonl
from honed.logs.record import FeedbackRecord, LogRecord
from tests.support.cli import assert_one_line_error
from tests.support.cli import honed as run

SYSTEM = "You are Acme's support assistant. Follow the refund policy. Answer in one sentence. " * 10


def seed_logs(workspace: Path) -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(24):
        question = f"Can I change order {n}?" if n != 23 else "Reach me at bob@example.com about order 22"
        rows.append(
            LogRecord(
                id=f"log-{n:02d}",
                created_at=t0 + timedelta(minutes=n),
                model="scripted/bot",
                prompt="support",
                inputs={"question": question},
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
                output=f"Order {n} can be changed." if n != 5 else None,
                error="timeout" if n == 5 else None,
            ).row()
        )
    rows.append(
        LogRecord(
            id="dup",
            created_at=t0 + timedelta(hours=1),
            model="scripted/bot",
            prompt="support",
            inputs={"question": "can I CHANGE order 3?"},
            output="Yes.",
        ).row()
    )
    with honed.connect(workspace) as h:
        h.store.logs.insert_many(rows)
        h.store.logs.add_feedback(
            [FeedbackRecord(log_id="log-07", kind="correction", text="Yes, until it ships.").row()]
        )


def test_curate_then_export_for_openai_and_hugging_face(workspace: Path) -> None:
    seed_logs(workspace)
    curated = run(
        "logs",
        "curate",
        "support-train",
        "--prompt",
        "support",
        "--exact-only",
        "--scrub",
        "--split",
        "train=0.75,test=0.25",
        "--json",
        cwd=workspace,
    )
    assert curated.returncode == 0, curated.stderr
    report = json.loads(curated.stdout)
    assert report["dataset"] == "support-train@v1"
    assert (report["selected"], report["dropped_errors"], report["exact_duplicates"], report["cases"]) == (
        25,
        1,
        1,
        23,
    )
    assert report["scrubbed"]["email"] == 2  # the input and the logged user message
    assert sum(report["splits"].values()) == 23

    out = workspace / "train.jsonl"
    exported = run(
        "finetune",
        "export",
        "support-train",
        "--split",
        "train",
        "--mode",
        "input-output",
        "--system",
        "Acme support.",
        "-o",
        str(out),
        "--json",
        cwd=workspace,
    )
    assert exported.returncode == 0, exported.stderr
    summary = json.loads(exported.stdout)
    assert summary["examples"] == report["splits"]["train"] and check_chat_jsonl(out) == []
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(SYSTEM not in json.dumps(line) for line in lines)
    assert "bob@example.com" not in out.read_text(encoding="utf-8")
    corrected = [line for line in lines if line["messages"][1]["content"] == "Can I change order 7?"]
    assert all(line["messages"][-1]["content"] == "Yes, until it ships." for line in corrected)

    hf = run(
        "finetune", "export", "support-train", "--format", "hf", "-o", str(workspace / "hf"), cwd=workspace
    )
    assert hf.returncode == 0, hf.stderr
    assert "wrote 23 examples" in hf.stdout
    loaded = load_from_disk(str(workspace / "hf"))
    assert isinstance(loaded, DatasetDict) and sum(len(loaded[s]) for s in loaded) == 23
    assert loaded["train"][0]["messages"][0]["content"] == SYSTEM  # full mode keeps the logged prompt


def test_bad_input_is_one_line_and_writes_nothing(workspace: Path) -> None:
    seed_logs(workspace)
    missing = run("logs", "curate", "support-train", "--leakage-check", "no-such-eval", cwd=workspace)
    assert_one_line_error(missing, "no-such-eval")
    with honed.connect(workspace) as h:
        assert h.store.names.names("dataset") == []
