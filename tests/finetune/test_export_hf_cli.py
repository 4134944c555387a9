"""`honed finetune export --format hf` as a user runs it: a dataset folder, never a folder named like a
file, and no `datasets` progress bars on the terminal."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import assert_one_line_error, honed


def test_hf_export_writes_a_folder_quietly_and_refuses_a_file_name(workspace: Path) -> None:
    (workspace / "qa.jsonl").write_text(
        "".join(
            json.dumps({"inputs": {"q": f"q{i}"}, "reference": f"a{i}", "split": "train"}) + "\n"
            for i in range(12)
        ),
        encoding="utf-8",
    )
    assert honed("datasets", "import", "qa-train", "qa.jsonl", cwd=workspace).returncode == 0
    args = ("finetune", "export", "qa-train", "--format", "hf", "--mode", "input-output")

    refused = honed(*args, "--out", "train-hf.jsonl", cwd=workspace)
    assert_one_line_error(refused, "train-hf.jsonl is a file name", "give a folder name, e.g. --out train-hf")
    assert not (workspace / "train-hf.jsonl").exists()

    done = honed(*args, "--out", "train-hf", cwd=workspace)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "Saving the dataset" not in done.stderr, done.stderr
    assert (workspace / "train-hf" / "dataset_dict.json").is_file()
    assert done.stdout.startswith("wrote 12 examples (train 12)")
