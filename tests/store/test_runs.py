"""Experiment runs, results and scores, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from honed.errors import NotFoundError
from honed.store import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def result(
    run_id: str, case: str, sample: int = 0, *, error: str | None = None, cost: float = 0.5
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "variant": "v1",
        "case_id": case,
        "sample_index": sample,
        "request_key": "sha256:x",
        "prompt_hash": None,
        "dataset_hash": "sha256:d",
        "model": "scripted/m",
        "params": {},
        "output": "out",
        "parsed": None,
        "error": error,
        "input_tokens": 3,
        "output_tokens": 2,
        "latency_s": 0.1,
        "cost_usd": cost,
        "cached": False,
    }


def test_a_run_resumes_from_the_keys_it_finished(store: Store) -> None:
    run = store.runs.create({"a": 1}, "sha256:spec", name="nightly", budget_usd=2.0)
    assert run.status == "running" and store.runs.find_unfinished("sha256:spec") == run
    store.runs.put_results(
        [result(run.id, "c1"), result(run.id, "c2", error="boom"), result(run.id, "c1", 1)]
    )
    assert store.runs.done_keys(run.id) == {("v1", "c1", 0), ("v1", "c1", 1)}
    # the retried call replaces its errored row
    store.runs.put_results([result(run.id, "c2")])
    assert ("v1", "c2", 0) in store.runs.done_keys(run.id)
    assert len(store.runs.results(run.id)) == 3
    assert store.runs.spent(run.id) == pytest.approx(1.5)
    store.runs.set_status(run.id, "completed")
    assert store.runs.find_unfinished("sha256:spec") is None


def test_scores_keep_errors_and_raw_text(store: Store) -> None:
    run = store.runs.create({"a": 2}, "sha256:spec2")
    store.runs.put_results([result(run.id, "c1")])
    base = {
        "run_id": run.id,
        "variant": "v1",
        "case_id": "c1",
        "sample_index": 0,
        "evaluator_version": "sha256:e",
    }
    store.runs.put_scores(
        [
            {
                **base,
                "evaluator": "exact",
                "value": 1.0,
                "passed": True,
                "reason": "equal",
                "error": None,
                "raw": None,
                "details": None,
            },
            {
                **base,
                "evaluator": "judge",
                "value": None,
                "passed": None,
                "reason": None,
                "error": "unparseable judgment",
                "raw": "I'd say good",
                "details": {"samples": 1},
            },
        ]
    )
    rows = {r["evaluator"]: r for r in store.runs.scores(run.id)}
    assert rows["exact"]["value"] == 1.0 and rows["exact"]["passed"] is True
    assert rows["judge"]["value"] is None and rows["judge"]["raw"] == "I'd say good"


def test_runs_by_id_prefix_and_name(store: Store) -> None:
    a = store.runs.create({"x": 1}, "sha256:a", name="baseline")
    assert store.runs.get(a.id[:6]).id == a.id
    assert store.runs.get("baseline").id == a.id
    assert [r.id for r in store.runs.list()] == [a.id]
    with pytest.raises(NotFoundError, match="honed experiments list"):
        store.runs.get("nothing-like-it")
    store.runs.delete([a.id])
    assert store.runs.list() == []
