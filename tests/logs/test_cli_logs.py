"""`honed logs list|show|feedback|eval` through the real console script (kept to a few runs: each costs a
second of start-up), and the time parsing the filters use."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from honed.api import connect
from honed.errors import InvalidInputError
from honed.logs.filters import parse_time
from tests.support.cli import assert_one_line_error, honed


def test_times_are_iso_or_a_span_back_from_now() -> None:
    now = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert parse_time("90m", now=now) == now - timedelta(minutes=90)
    assert parse_time("7d", now=now) == now - timedelta(days=7)
    assert parse_time("2026-01-30") == datetime(2026, 1, 30, tzinfo=UTC)
    assert parse_time("2026-01-30T10:00+02:00") == datetime(2026, 1, 30, 8, tzinfo=UTC)
    with pytest.raises(InvalidInputError, match="yesterday"):
        parse_time("yesterday")


def test_list_filters_show_and_feedback(workspace: Path) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    with connect() as h:
        a = h.log(model="vendor/a", inputs={"q": "one"}, output="first", prompt="qa", session_id="s1")
        b = h.log(model="vendor/b", inputs={"q": "two"}, output="second", prompt="qa")
        h.log(model="vendor/a", inputs={"q": "old"}, output="stale", created_at=old)
        h.log(model="vendor/a", inputs={"q": "bad"}, error="timeout")
        h.feedback(a, "thumbs", "down")
        h.feedback(b, "thumbs", "up")

    def ids(*args: str) -> set[str]:
        done = honed("logs", "list", *args, "--json", cwd=workspace)
        assert done.returncode == 0, done.stderr
        return {r["output"] or r["error"] for r in json.loads(done.stdout)}

    assert ids("--model", "vendor/a", "--since", "1d") == {"first", "timeout"}
    assert ids("--thumbs", "down", "--no-errors") == {"first"}
    assert ids("--errors") == {"timeout"}

    done = honed("logs", "feedback", b, "--rating", "4", "--comment", "good, but short", cwd=workspace)
    assert done.returncode == 0 and "rating, comment" in done.stdout, done.stderr
    shown = honed("logs", "show", b, cwd=workspace)
    assert shown.returncode == 0 and "second" in shown.stdout and "good, but short" in shown.stdout
    table = honed("logs", "list", "--session", "s1", cwd=workspace)
    assert a[:12] in table.stdout and b[:12] not in table.stdout and "down" in table.stdout

    missing = honed("logs", "feedback", "log-missing", "--thumbs", "up", cwd=workspace)
    assert_one_line_error(missing, "log-missing")
    with connect() as h:
        assert [f["kind"] for f in h.store.logs.get(b).feedback] == ["thumbs", "rating", "comment"]


def test_eval_scores_and_reports(workspace: Path) -> None:
    with connect() as h:
        for i in range(20):
            h.log(model="vendor/a", inputs={"i": i}, output="ok" if i < 15 else "nope")
    done = honed("logs", "eval", '{"type": "regex", "pattern": "^ok$"}', "--json", cwd=workspace)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["scored"], result["mean"]) == (20, 0.75)


def test_show_and_feedback_take_a_unique_id_prefix_and_show_feedback_readably(workspace: Path) -> None:
    with connect() as h:
        log_id = h.log(id="log-27cb8bdf0011", model="vendor/a", inputs={"q": "x"}, output="hi", prompt="qa")
        h.log(id="log-27cb8bdf9922", model="vendor/a", inputs={"q": "y"}, output="other")
        h.feedback(log_id, "thumbs", "down")

    done = honed("logs", "feedback", "log-27cb8bdf0", "--rating", "4", cwd=workspace)
    assert done.returncode == 0 and f"to {log_id}" in done.stdout, done.stderr
    shown = honed("logs", "show", "log-27cb8bdf0", cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    assert log_id in shown.stdout and "hi" in shown.stdout
    prompt_row = next(line for line in shown.stdout.splitlines() if " prompt " in line)
    assert "qa" in prompt_row and "None" not in prompt_row and "@" not in prompt_row
    assert "👎 down" in shown.stdout and "4/5" in shown.stdout and "0.0" not in shown.stdout, shown.stdout

    ambiguous = honed("logs", "show", "log-27cb8bdf", cwd=workspace)
    assert_one_line_error(ambiguous, "ambiguous: 2 logs match 'log-27cb8bdf'", "give more characters")
    assert_one_line_error(honed("logs", "show", "log-9", cwd=workspace), "no log 'log-9'")


def test_list_fits_100_columns_one_line_a_log_and_wide_shows_it_all(workspace: Path) -> None:
    long = "The answer, at some length: " + "and then some more words " * 12
    with connect() as h:
        ids = [
            h.log(
                model=model,
                inputs={"q": str(i)},
                output=f"{i} {long}",
                prompt="support-answers",
                latency_s=0.8,
                queue_s=406.1,
            )
            for i, model in enumerate(["local/smollm2-135m-instruct", "openai/gpt-4o-mini"] * 3)
        ]
        h.feedback(ids[0], "thumbs", "up")
        h.feedback(ids[0], "comment", text="good")
    done = honed("logs", "list", cwd=workspace, env={"COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, done.stdout
    rows = [line for line in lines if line.startswith("│ log-")]
    assert len(rows) == len(ids), done.stdout  # one line per log
    shown = [row.split("│")[1].strip() for row in rows]
    assert sorted(next(i for i in ids if i.startswith(s)) for s in shown) == sorted(ids), shown
    assert all(len(s) == 12 for s in shown), shown  # `log-` and 8 hex digits: unique here
    assert "800 ms" in done.stdout and "406" not in done.stdout  # time in the model; queueing apart
    assert "support-answers" in lines[0]  # what every row shares is said once, in the title
    again = honed("logs", "show", shown[0], cwd=workspace)  # a shown id is a prefix `show` takes
    assert again.returncode == 0 and shown[0] in again.stdout, again.stderr

    wide = honed("logs", "list", "--wide", cwd=workspace, env={"COLUMNS": "100"})
    assert wide.returncode == 0, wide.stderr
    assert all(i in wide.stdout for i in ids) and long.strip() in wide.stdout
    assert "406.10 s" in wide.stdout  # the queued time, in its own column
