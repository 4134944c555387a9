"""A real data set: NQ-open dev (3,610 questions with gold answers), converted to JSONL and CSV and imported.

Only these tests may skip, and only when ../shared/data is missing (see tests/support/realdata.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from honed.datasets import Columns, SplitPlan, export_jsonl, get_dataset, import_file, parse_ratios
from honed.store import Store
from tests.support.realdata import require

NQ_FILE = ("nq_open", "NQ-open.dev.jsonl")
NQ_CASES = 3610


def _nq_rows() -> list[dict[str, object]]:
    path = require(*NQ_FILE)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_nq_open_as_flat_jsonl(store: Store, tmp_path: Path) -> None:
    path = require(*NQ_FILE)  # the file as published: {"question": ..., "answer": [...]} per line
    plan = SplitPlan(parse_ratios("train=0.6,dev=0.2,test=0.2"), seed=0)
    cols = Columns(inputs=("question",), reference="answer")
    result = import_file(store, "nq", path, columns=cols, plan=plan)
    dv = result.dataset
    assert len(dv) == NQ_CASES and dv.input_names() == ["question"]
    counts = dv.split_counts()
    assert sum(counts.values()) == NQ_CASES and abs(counts["train"] / NQ_CASES - 0.6) < 0.03
    assert all(isinstance(c.reference, list) and c.reference for c in dv.cases)
    exported = tmp_path / "nq-export.jsonl"
    export_jsonl(dv.cases, exported)
    assert import_file(store, "nq-copy", exported).dataset.hash == dv.hash


def test_nq_open_as_csv_with_answers_in_a_metadata_cell(store: Store, tmp_path: Path) -> None:
    rows = _nq_rows()
    path = tmp_path / "nq.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "question", "reference", "metadata"])
        for i, row in enumerate(rows, 1):
            answers = row["answer"]
            assert isinstance(answers, list)
            writer.writerow([f"nq-{i}", row["question"], answers[0], json.dumps({"answers": answers})])
    dv = import_file(store, "nq-csv", path).dataset
    assert len(dv) == len(rows) == NQ_CASES
    first = get_dataset(store, "nq-csv@v1").cases[0]
    assert first.id == "nq-1" and first.inputs == {"question": rows[0]["question"]}
    assert first.metadata["answers"] == rows[0]["answer"] and first.reference == first.metadata["answers"][0]
