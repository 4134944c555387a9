"""The log pages' domain: a page of logs behind a cursor, a trace as a tree of spans, feedback as the CLI
and the web UI give it, and one log added to a dataset."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from honed.datasets import get_dataset
from honed.errors import InvalidInputError, NotFoundError
from honed.logs.browse import Span, log_page, parse_cursor, trace_tree
from honed.logs.curate import add_log_to_dataset
from honed.logs.feedback import feedback_rows, record_feedback
from honed.logs.record import LogRecord
from honed.store import Store
from honed.store.logs import LogFilter

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'honed.db'}") as opened:
        yield opened


def add(store: Store, *logs: dict[str, Any]) -> list[str]:
    """Insert logs one second apart, in the order given."""
    rows = [
        LogRecord(**{"model": "m", "inputs": {"q": n}, "created_at": T0 + timedelta(seconds=n), **f}).row()
        for n, f in enumerate(logs)
    ]
    store.logs.insert_many(rows)
    return [r["id"] for r in rows]


def score(log_id: str, evaluator: str, value: float) -> dict[str, Any]:
    """A `log_scores` row as `honed logs eval` writes one."""
    return {
        "log_id": log_id,
        "evaluator": evaluator,
        "evaluator_version": "sha256:" + "0" * 64,
        "value": value,
        "passed": None,
        "reason": None,
        "error": None,
        "created_at": T0,
    }


def shape(spans: list[Span]) -> list[Any]:
    return [(s.log["id"], shape(s.children)) if s.children else s.log["id"] for s in spans]


def test_a_trace_is_a_tree_of_its_spans_in_time_order(store: Store) -> None:
    add(
        store,
        {"id": "root", "trace_id": "t", "metadata": {"span_id": "a"}, "latency_s": 5.0},
        {"id": "tool", "trace_id": "t", "metadata": {"span_id": "b", "parent_span_id": "a"}},
        {"id": "llm", "trace_id": "t", "metadata": {"span_id": "c", "parent_id": "b"}},
        {"id": "second", "trace_id": "t", "metadata": {"parent_span_id": "a"}},
        {"id": "orphan", "trace_id": "t", "metadata": {"parent_span_id": "gone"}},
        {"id": "elsewhere", "trace_id": "u"},
    )
    tree = trace_tree(store, "t")
    assert shape(tree.roots) == [("root", [("tool", ["llm"]), "second"]), "orphan"]
    assert tree.spans == 5 and not tree.truncated
    assert tree.roots[1].offset_s == 4.0 and tree.duration_s == 5.0  # the root's latency ends last


def test_a_parent_loop_is_cut_and_a_repeated_span_id_keeps_both_logs(store: Store) -> None:
    add(
        store,
        {"id": "x", "trace_id": "t", "metadata": {"span_id": "p", "parent_span_id": "q"}},
        {"id": "y", "trace_id": "t", "metadata": {"span_id": "q", "parent_span_id": "p"}},
        {"id": "z", "trace_id": "t", "metadata": {"span_id": "q"}},
    )
    tree = trace_tree(store, "t")
    assert tree.spans == 3
    assert shape(tree.roots) in ([("x", ["y"]), "z"], [("y", ["x"]), "z"])
    with pytest.raises(NotFoundError, match="no logs in trace 'nope'"):
        trace_tree(store, "nope")


def test_pages_follow_the_cursor_and_carry_feedback_and_scores(store: Store) -> None:
    ids = add(store, *({"id": f"log-{n:02d}"} for n in range(7)))
    record_feedback(store, ids[6], feedback_rows(ids[6], thumbs="down"))
    store.logs.put_scores([score(ids[5], "judge", 0.5)])
    first = log_page(store, LogFilter(), limit=3)
    assert [r["id"] for r in first.rows] == ["log-06", "log-05", "log-04"]
    assert first.feedback["log-06"]["thumbs"] == 0.0 and first.scores["log-05"]["judge"]["value"] == 0.5
    assert first.next is not None and parse_cursor(first.next) == (T0 + timedelta(seconds=4), "log-04")
    second = log_page(store, LogFilter(), limit=3, after=first.next)
    last = log_page(store, LogFilter(), limit=3, after=second.next)
    assert [r["id"] for r in last.rows] == ["log-00"] and last.next is None
    with pytest.raises(InvalidInputError, match="malformed"):
        log_page(store, LogFilter(), limit=3, after="yesterday")


def test_feedback_is_checked_then_written_with_who_gave_it(store: Store) -> None:
    (log_id,) = add(store, {"id": "log-abcdef", "output": "Paris"})
    with pytest.raises(InvalidInputError, match="no feedback given"):
        feedback_rows("log-abc")
    with pytest.raises(InvalidInputError, match="up or down"):
        feedback_rows("log-abc", thumbs="sideways")
    rows = feedback_rows("log-abc", thumbs="up", correction="Paris.", source="ana")
    found, written = record_feedback(store, "log-abc", rows, by="ana")  # a unique prefix names the log
    assert found == log_id and {r["log_id"] for r in written} == {log_id}
    assert [(f["kind"], f["value"], f["text"]) for f in store.logs.get(log_id).feedback] == [
        ("thumbs", 1.0, None),
        ("correction", None, "Paris."),
    ]
    events, _ = store.audit.page(10, kind="log")
    assert [(e.user, e.action, e.name, e.detail) for e in events] == [
        ("ana", "log.feedback", log_id, {"kinds": ["thumbs", "correction"]})
    ]


def test_a_log_becomes_a_case_in_a_new_dataset_version(store: Store) -> None:
    a, b, failed = add(
        store,
        {
            "id": "a",
            "inputs": None,
            "messages": [{"role": "user", "content": "Capital of France?"}],
            "output": "Lyon",
        },
        {"id": "b", "inputs": {"country": "Spain"}, "output": "Madrid"},
        {"id": "failed", "error": "timeout"},
    )
    record_feedback(store, a, feedback_rows(a, correction="Paris"))
    first = add_log_to_dataset(store, a, "from-logs", by="ana")
    assert (first.dataset.ref, first.status) == ("from-logs@v1", "new")
    second = add_log_to_dataset(store, b, "from-logs")
    again = add_log_to_dataset(store, b, "from-logs")
    assert second.dataset.ref == "from-logs@v2" and again.status == "unchanged"
    cases = get_dataset(store, "from-logs").cases
    assert [(c.id, c.inputs, c.reference) for c in cases] == [
        ("a", {"input": "Capital of France?"}, "Paris"),  # the correction is the reference
        ("b", {"country": "Spain"}, "Madrid"),
    ]
    with pytest.raises(InvalidInputError, match="log failed cannot become a case: it failed"):
        add_log_to_dataset(store, failed, "from-logs")
    events, _ = store.audit.page(10, kind="dataset")
    assert [(e.user, e.action, e.detail["log_id"]) for e in events] == [("ana", "dataset.add_log", "a")]
