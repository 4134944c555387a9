"""`honed kb finetune` as a user runs it: it says first what it is about to train (pairs, epochs, steps),
then how far it is; on a stderr that is no terminal (as here) as plain lines, since rich would draw its
bar only once training is over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import honed

DOCS = {
    "returns.md": "# Returns\n\nYou can return any product within 30 days of delivery for a full refund.\n",
    "shipping.md": "# Shipping\n\nExpress shipping costs $12 and arrives the next day.\n",
    "warranty.md": "# Warranty\n\nAll electronics carry a 2-year warranty covering defects.\n",
    "gifts.md": "# Gift cards\n\nGift cards never expire and work online or in store.\n",
}
QUERIES = {
    "returns.md": "how long do I have to return a product",
    "shipping.md": "price of express shipping",
    "warranty.md": "warranty on electronics",
    "gifts.md": "do gift cards expire",
}


@pytest.mark.slow
def test_kb_finetune_says_what_it_trains_then_reports_progress(workspace: Path) -> None:
    (workspace / "docs").mkdir()
    for name, text in DOCS.items():
        (workspace / "docs" / name).write_text(text, encoding="utf-8")
    (workspace / "qs.jsonl").write_text(
        "".join(
            json.dumps({"id": f"q{i}", "inputs": {"query": q}, "context_ids": [doc], "split": "train"}) + "\n"
            for i, (doc, q) in enumerate(QUERIES.items())
        ),
        encoding="utf-8",
    )
    for args in (
        ("kb", "create", "docs"),
        ("kb", "ingest", "docs", "docs"),
        ("datasets", "import", "qs", "qs.jsonl"),
    ):
        done = honed(*args, cwd=workspace)
        assert done.returncode == 0, done.stderr

    tuned = honed(
        "kb", "finetune", "docs", "--dataset", "qs", "--split", "train", "-o", "docs-ft", "--batch-size", "2",
        "--epochs", "2", cwd=workspace, timeout=300,
    )  # fmt: skip
    assert tuned.returncode == 0, tuned.stderr
    lines = tuned.stderr.splitlines()
    assert lines[0] == (
        "fine-tuning local/all-MiniLM-L6-v2 into local/docs-ft on 4 (query, document) pairs of qs split "
        "train: 2 epoch(s), 4 steps of up to 2 pairs, on the CPU"
    ), tuned.stderr
    assert [line.split(" (")[0] for line in lines[1:]] == [f"training: {i}/4" for i in range(5)], tuned.stderr
    assert "\r" not in tuned.stderr
    assert tuned.stdout.startswith("trained local/docs-ft on 4 pairs in 4 steps")

    quiet = honed(
        "kb", "finetune", "docs", "--dataset", "qs", "-o", "docs-ft2", "--batch-size", "4", "--json",
        cwd=workspace, timeout=300,
    )  # fmt: skip
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and json.loads(quiet.stdout)["steps"] == 1
