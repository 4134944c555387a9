"""`honed datasets ...` as a user runs it.

The main flows run the real console script in a subprocess. The many small checks around them call the
same entry point (`honed.cli.main.run`) in process, because each subprocess costs ~1 s of imports.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import pytest

from honed.cli.main import run
from tests.conftest import PROJECT_ROOT
from tests.support.cli import assert_one_line_error, honed

EXAMPLE = PROJECT_ROOT / "examples" / "datasets" / "faq.jsonl"
SPLIT = ["--split-by", "product", "--split-ratios", "train=0.5,test=0.5", "--seed", "1"]

InProcess = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(workspace: Path, capsys: pytest.CaptureFixture[str]) -> InProcess:
    """`cli(*args)` -> (exit code, stdout, stderr) of `honed ARGS` run in this process."""

    def _run(*args: str) -> tuple[int, str, str]:
        code = 0
        with patch.object(sys, "argv", ["honed", *args]):
            try:
                run()
            except SystemExit as exc:
                code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return _run


def test_import_export_round_trip(workspace: Path, cli: InProcess) -> None:
    first = honed("datasets", "import", "faq", str(EXAMPLE), *SPLIT, cwd=workspace)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("dataset faq v1 · ") and first.stdout.rstrip().endswith("· new")
    assert "8 cases (train " in first.stdout and "warning: only 3 group(s) of product" in first.stderr
    summary = json.loads(cli("datasets", "import", "faq", str(EXAMPLE), *SPLIT, "--json")[1])
    assert summary["status"] == "unchanged" and summary["version"] == 1 and summary["cases"] == 8
    assert summary["inputs"] == ["question"] and sum(summary["splits"].values()) == 8

    out = workspace / "faq-export.jsonl"
    written = honed("datasets", "export", "faq@v1", "-o", str(out), cwd=workspace)
    assert written.returncode == 0 and "wrote 8 cases" in written.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 8 and json.loads(lines[0])["id"] == "price-aurora"
    assert cli("datasets", "export", "faq")[1] == out.read_text(encoding="utf-8")  # stdout: the same bytes
    copy = json.loads(honed("datasets", "import", "copy", str(out), "--json", cwd=workspace).stdout)
    assert copy["hash"] == summary["hash"] and copy["status"] == "new"


def test_show_list_and_split_export(cli: InProcess) -> None:
    assert cli("datasets", "list")[1].startswith("no datasets yet")
    assert cli("datasets", "import", "faq", str(EXAMPLE), *SPLIT)[0] == 0
    code, out, _ = cli("datasets", "show", "faq@v1", "--json", "--limit", "2")
    shown = json.loads(out)
    assert code == 0 and len(shown["shown"]) == 2 and shown["versions"] == 1 and shown["cases"] == 8
    code, out, _ = cli("datasets", "show", "faq", "--split", "train")
    assert code == 0 and "inputs: question" in out and "in train" in out and "price-" in out
    listed = json.loads(cli("datasets", "list", "--json")[1])
    assert [(d["name"], d["versions"], d["cases"]) for d in listed] == [("faq", 1, 8)]
    assert "faq" in cli("datasets", "list")[1]
    test_only = cli("datasets", "export", "faq", "--split", "test")[1].splitlines()
    assert 0 < len(test_only) < 8 and all(json.loads(line)["split"] == "test" for line in test_only)


def test_csv_import_new_version_and_history(workspace: Path, cli: InProcess) -> None:
    data = workspace / "t.csv"
    data.write_text(
        'ticket,text,queue\nT1,"Refund, please",billing\nT2,"Login\nbroken",tech\n', encoding="utf-8"
    )
    args = ["datasets", "import", "tickets", str(data), "--id", "ticket", "--reference", "queue"]
    assert "· new" in honed(*args, cwd=workspace).stdout
    data.write_text(data.read_text(encoding="utf-8") + "T3,Where is my parcel?,shipping\n", encoding="utf-8")
    second = honed(*args, "--note", "added T3", cwd=workspace)
    assert second.stdout.startswith("dataset tickets v2 · ") and "3 cases" in second.stdout
    versions = json.loads(cli("datasets", "show", "tickets", "--history", "--json")[1])
    assert [(v["version"], v["cases"], v["note"]) for v in versions] == [
        (1, 2, "imported from t.csv"),
        (2, 3, "added T3"),
    ]
    text = cli("datasets", "show", "tickets", "--history")[1]
    assert "v1" in text and "added T3" in text
    # Importing the first content again names the version that has it; latest stays v2.
    data.write_text(data.read_text(encoding="utf-8").rsplit("T3,", 1)[0], encoding="utf-8")
    code, out, err = cli(*args)
    assert code == 0 and out.startswith("dataset tickets v1 ") and "existing" in out
    assert "latest is still v2" in err


def test_user_errors_are_one_line(workspace: Path) -> None:
    bad = workspace / "bad.jsonl"
    bad.write_text('{"inputs": {"q": "ok"}}\n{"inputs": {"q": "x"}, "answer": "y"}\n', encoding="utf-8")
    assert_one_line_error(honed("datasets", "import", "qa", str(bad), cwd=workspace), f"{bad}:2:", "'answer'")
    assert_one_line_error(honed("datasets", "show", "qa", cwd=workspace), "no dataset named 'qa'")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["import", "qa", str(EXAMPLE), "--split-ratios", "train=0.7"], "add up to 0.7"),
        (["import", "qa", str(EXAMPLE), "--seed", "3"], "--seed only matters"),
        (["import", "qa", "qa.txt"], "cannot tell the format"),
        (["import", "a b", str(EXAMPLE)], "not a valid dataset name"),
        (["import", "qa", str(EXAMPLE), "--split-by", "colour"], "has no 'colour' to group by"),
        (["export", "faq", "--split", "dev"], "no cases in split 'dev'"),
        (["show", "faq@v9"], "has 1 version(s), not 9"),
        (["show", "faq@v1", "--history"], "give the name alone"),
        (["export", "faq", "-o", "no/such/folder/x.jsonl"], "does not exist"),
        (["export", "faq", "-o", "."], "cannot be written"),
    ],
)
def test_more_user_errors(cli: InProcess, args: list[str], fragment: str) -> None:
    assert cli("datasets", "import", "faq", str(EXAMPLE))[0] == 0
    code, _, err = cli("datasets", *args)
    assert code != 0 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert fragment in err, err
