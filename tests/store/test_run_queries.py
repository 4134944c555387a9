"""The queries analysis, review and ingestion ask the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from honed.logs.record import FeedbackRecord, LogRecord
from honed.store import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def result(run_id: str, variant: str, case: str, sample: int = 0, **over: Any) -> dict[str, Any]:
    row = {
        "run_id": run_id,
        "variant": variant,
        "case_id": case,
        "sample_index": sample,
        "request_key": "sha256:x",
        "prompt_hash": None,
        "dataset_hash": "sha256:d",
        "model": "scripted/m",
        "params": {},
        "output": "out",
        "parsed": None,
        "error": None,
        "input_tokens": 3,
        "output_tokens": 2,
        "latency_s": 0.5,
        "queue_s": None,
        "cost_usd": 0.25,
        "cached": False,
    }
    return {**row, **over}


def score(run_id: str, variant: str, case: str, sample: int = 0, **over: Any) -> dict[str, Any]:
    row = {
        "run_id": run_id,
        "variant": variant,
        "case_id": case,
        "sample_index": sample,
        "evaluator": "exact",
        "evaluator_version": "sha256:e",
        "value": 1.0,
        "passed": True,
        "reason": None,
        "error": None,
        "raw": None,
        "details": None,
    }
    return {**row, **over}


def test_a_snapshot_sums_usage_and_finds_absent_scores(store: Store) -> None:
    run = store.runs.create({}, "sha256:s")
    store.runs.put_results(
        [
            result(run.id, "a", "c1", queue_s=0.1),
            result(run.id, "a", "c2", cost_usd=None, cached=True),
            result(run.id, "a", "c3", output=None, error="timeout", input_tokens=7, output_tokens=7),
            result(run.id, "b", "c1", latency_s=1.5),
        ]
    )
    store.runs.put_scores(
        [
            score(run.id, "a", "c1", passed=None),
            score(run.id, "a", "c2", value=None, passed=None, error="no reference"),
            score(run.id, "b", "c1", value=0.0, passed=False),
            # a row without a value or an error (a label not given yet): no score by design either
            score(run.id, "a", "c1", evaluator="human", value=None, passed=None),
        ]
    )
    with store.runs.snapshot(run.id) as snap:
        assert snap.case_ids() == ["c1", "c2", "c3"]
        usage = snap.usage()
        calls, errors, cached, unpriced, cost, input_tokens, output_tokens = usage["a"]
        assert (calls, errors, cached, unpriced, input_tokens, output_tokens) == (3, 1, 1, 1, 6, 4)
        assert cost == pytest.approx(0.25)
        assert usage["b"][0] == 1 and usage["b"][4] == pytest.approx(0.25)
        # latencies of the calls that returned only (the timed-out call had none)
        assert snap.timings() == {"a": ([0.5, 0.5], [0.1]), "b": ([1.5], [])}
        assert snap.score_values("exact", "a") == [("c1", 0, 1.0, None)]
        assert snap.score_values("exact", "b") == [("c1", 0, 0.0, False)]
        # c1 has a value, c3's call timed out; c2's score error says "absent by design", so it is unscored
        assert snap.unscored("exact", "a", {"no reference"}) == [("c2", 0)]
        assert snap.unscored("exact", "a", set()) == []  # any other score error is the evaluator's failure
        assert sorted(snap.unscored("human", "a", set())) == [("c1", 0), ("c2", 0)]  # c2: no score row at all
        assert snap.unscored("exact", "b", set()) == []


def test_score_evaluators_and_deleting_one_score(store: Store) -> None:
    run = store.runs.create({}, "sha256:s")
    store.runs.put_results([result(run.id, "a", "c1"), result(run.id, "a", "c1", 1)])
    store.runs.put_scores(
        [score(run.id, "a", "c1"), score(run.id, "a", "c1", evaluator="human"), score(run.id, "a", "c1", 1)]
    )
    assert store.runs.evaluators(run.id) == {"exact", "human"}
    store.runs.delete_score(run.id, "a", "c1", 0, "human")
    store.runs.delete_score(run.id, "a", "c1", 0, "human")  # already gone: no error
    assert store.runs.evaluators(run.id) == {"exact"}
    left = [(s["evaluator"], s["sample_index"]) for s in store.runs.scores(run.id)]
    assert sorted(left) == [("exact", 0), ("exact", 1)]


def test_existing_ids_of_logs_and_feedback(store: Store) -> None:
    ids = [f"log-{i:04d}" for i in range(1_200)]  # more than one chunk of bound parameters
    store.logs.insert_many([LogRecord(id=i, model="m", inputs={}).row() for i in ids])
    store.logs.add_feedback([FeedbackRecord(id="fb-1", log_id=ids[0], kind="thumbs", value=1).row()])
    asked = [*ids[::2], "log-new", ids[0]]
    assert store.logs.existing_log_ids(asked) == set(ids[::2])
    assert store.logs.existing_log_ids([]) == set()
    assert store.logs.existing_feedback_ids(["fb-1", "fb-2"]) == {"fb-1"}
