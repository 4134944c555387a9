"""`honed logs list|show|feedback|eval` through the real console script (kept to a few runs: each costs a
second of start-up), and the time parsing the filters use."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from honed.api import connect
from honed.cli.logs import parse_time
from honed.errors import InvalidInputError
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
    assert a in table.stdout and b not in table.stdout and "thumbs" in table.stdout

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
