"""Human review: the labelling loop with scripted replies, the label log, `honed review` through typer's
CliRunner, and the `human` evaluator that turns the labels into scores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from honed.cli.review import review
from honed.errors import InvalidInputError
from honed.evals.evaluators import BuildContext, EvalInput, Scale, build_evaluator
from honed.evals.review import (
    Progress,
    ReviewItem,
    append_record,
    read_labels,
    read_review_items,
    review_loop,
)

ITEMS = [ReviewItem(i, f"output {i}", input=f"question {i}") for i in ("a", "b", "c")]


class Session:
    """Scripted replies in, shown items, notices and records out."""

    def __init__(self, replies: list[str]) -> None:
        self.replies: Iterator[str] = iter(replies)
        self.shown: list[str] = []
        self.notices: list[str] = []
        self.records: list[dict[str, Any]] = []

    def run(self, items: list[ReviewItem] = ITEMS, scale: str = "1-5", **kw: Any) -> Any:
        def show(item: ReviewItem, progress: Progress) -> None:
            self.shown.append(item.id)

        return review_loop(
            items,
            Scale.parse(scale),
            show=show,
            ask=lambda prompt: next(self.replies),
            record=self.records.append,
            notify=self.notices.append,
            now=lambda: "2026-01-01T00:00:00+00:00",
            **kw,
        )


def test_label_skip_undo_and_quit() -> None:
    s = Session(["4", "s", "u", "5", "2", "q"])
    summary = s.run(reviewer="ann")
    # a=4, skip b, at c undo a (shown again), a=5, b shown again and labelled 2, quit at c
    assert s.shown == ["a", "b", "c", "a", "b", "c"]
    assert [(r["id"], r.get("label"), r.get("undo")) for r in s.records] == [
        ("a", "4", None),
        ("a", None, True),
        ("a", "5", None),
        ("b", "2", None),
    ]
    assert s.records[0] == {
        "id": "a",
        "label": "4",
        "value": 4.0,
        "scale": "1-5",
        "reviewer": "ann",
        "at": "2026-01-01T00:00:00+00:00",
    }
    assert summary.labelled == ["a", "b"] and summary.undone == ["a"] and summary.skipped == []
    assert summary.quit and summary.remaining == 1


def test_bad_replies_are_explained_and_asked_again() -> None:
    s = Session(["u", "9", "great", "3", "3", "3"])
    summary = s.run()
    assert s.notices[0] == "nothing to undo in this session"
    assert "'9' is not a label" in s.notices[1] and "1-5" in s.notices[1] and "'great'" in s.notices[2]
    assert summary.labelled == ["a", "b", "c"] and not summary.quit and summary.remaining == 0


def test_pass_fail_labels() -> None:
    s = Session(["p", "FAIL", "s"])
    summary = s.run(scale="pass_fail")
    assert [(r["label"], r["value"]) for r in s.records] == [("pass", 1.0), ("fail", 0.0)]
    assert summary.skipped == ["c"]


def test_resume_skips_already_labelled_ids() -> None:
    s = Session(["1"])
    summary = s.run(already={"a", "b"})
    assert s.shown == ["c"] and summary.already == 2 and summary.remaining == 0


def test_the_label_log_replays_undos(tmp_path: Path) -> None:
    log = tmp_path / "labels.jsonl"
    assert read_labels(log) == {}
    for record in (
        {"id": "a", "label": "4", "value": 4, "scale": "1-5"},
        {"id": "b", "label": "2", "value": 2, "scale": "1-5"},
        {"id": "a", "undo": True},
        {"id": "b", "label": "3", "value": 3, "scale": "1-5", "reviewer": "bo"},
    ):
        append_record(log, record)
    labels = read_labels(log)
    assert list(labels) == ["b"] and labels["b"].value == 3.0 and labels["b"].reviewer == "bo"
    log.write_text(log.read_text() + '{"id": "c"}\n')
    with pytest.raises(InvalidInputError, match=r"labels\.jsonl:5: not a label record"):
        read_labels(log)


def write_outputs(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_outputs_files_are_validated_with_line_numbers(tmp_path: Path) -> None:
    path = write_outputs(tmp_path / "o.jsonl", [{"id": 1, "output": "x", "extra": 1}, {"id": "2"}])
    with pytest.raises(InvalidInputError, match=r"o\.jsonl:2: each line needs an 'id' and a string 'output'"):
        read_review_items(path)
    write_outputs(path, [{"id": 1, "output": "x"}, {"id": "1", "output": "y"}])
    with pytest.raises(InvalidInputError, match="duplicate id '1'"):
        read_review_items(path)
    path.write_text('{"id": 1, "output": "x"}\nnot json\n')
    with pytest.raises(InvalidInputError, match=r"o\.jsonl:2: not valid JSON"):
        read_review_items(path)
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_review_items(tmp_path / "nope.jsonl")


# -- the CLI --------------------------------------------------------------------------------------------

app = typer.Typer()
app.command()(review)


@app.callback()
def _group() -> None:
    """Keeps `review` a named subcommand, as in `honed review`."""


def cli(*args: str, input: str) -> Any:
    return CliRunner().invoke(app, ["review", *args], input=input, env={"COLUMNS": "120"})


OUTPUTS = [
    {"id": "q1", "input": {"question": "2+2?"}, "output": "4 [final]", "reference": "4"},
    {"id": "q2", "input": "Capital of France?", "output": "Lyon"},
    {"id": "q3", "input": "Say hi", "output": "hi"},
]


def test_review_command_labels_quits_and_resumes(tmp_path: Path) -> None:
    outputs = write_outputs(tmp_path / "outputs.jsonl", OUTPUTS)
    first = cli(str(outputs), "--reviewer", "ann", input="5\nx\n1\nq\n")
    assert first.exit_code == 0, first.output
    assert (
        "4 [final]" in first.output and "reference" in first.output and "'x' is not a label" in first.output
    )
    assert "labelled 2 this session, 2/3 in all" in first.output and "1 left" in first.output
    labels_path = tmp_path / "outputs.labels.jsonl"
    assert {k: v.value for k, v in read_labels(labels_path).items()} == {"q1": 5.0, "q2": 1.0}
    # resume: only q3 is shown; running out of input quits cleanly
    second = cli(str(outputs), input="")
    assert second.exit_code == 0, second.output
    assert "resuming: 2 output(s) already labelled" in second.output and "q3" in second.output
    assert "q1" not in second.output.split("resuming", 1)[1].split("\n", 1)[1]
    third = cli(str(outputs), "--out", str(labels_path), input="u\n4\n")
    assert "nothing to undo" in third.output and "3/3 in all" in third.output
    assert read_labels(labels_path)["q3"].value == 4.0


def test_review_command_refuses_mixing_scales(tmp_path: Path) -> None:
    outputs = write_outputs(tmp_path / "outputs.jsonl", OUTPUTS)
    out = tmp_path / "labels.jsonl"
    assert cli(str(outputs), "--out", str(out), input="3\nq\n").exit_code == 0
    result = cli(str(outputs), "--out", str(out), "--scale", "pass_fail", input="p\n")
    assert isinstance(result.exception, InvalidInputError) and "scale 1-5" in str(result.exception)


# -- the human evaluator --------------------------------------------------------------------------------


def test_human_evaluator_scores_from_labels(tmp_path: Path) -> None:
    log = tmp_path / "labels.jsonl"
    append_record(log, {"id": "q1", "label": "4", "value": 4, "scale": "1-5", "reviewer": "ann"})
    append_record(log, {"id": "q2", "label": "2", "value": 2, "scale": "1-5"})
    ev = build_evaluator(
        {"type": "human", "labels": "labels.jsonl", "threshold": 3}, context=BuildContext(root=tmp_path)
    )
    q1, q2, q3, anon = ev.run(
        [EvalInput("x", id="q1"), EvalInput("y", id="q2"), EvalInput("z", id="q3"), EvalInput("w")]
    )
    assert (q1.value, q1.passed, q1.reason) == (4.0, True, "human label 4 by ann")
    assert (q2.value, q2.passed) == (2.0, False)
    assert q3.error == "not labelled" and "q3" in q3.reason
    assert anon.error == "not labelled" and "no id" in anon.reason
    other = build_evaluator(
        {"type": "human", "labels": "labels.jsonl", "scale": "pass_fail"}, context=BuildContext(root=tmp_path)
    )
    assert other(EvalInput("x", id="q1")).error == "label on another scale"
    missing = build_evaluator({"type": "human", "labels": "none.jsonl"}, context=BuildContext(root=tmp_path))
    with pytest.raises(InvalidInputError, match="honed review"):
        missing(EvalInput("x", id="q1"))
