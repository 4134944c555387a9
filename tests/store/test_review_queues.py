"""Review queues in the store, on SQLite and PostgreSQL: labels as events per reviewer, undo, the run's
`human` score and the log's feedback kept in step, and two reviewers labelling at once losing nothing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from honed.store import Store
from honed.store.review import Queue
from honed.store.schema import utcnow

N_ITEMS = 12


def run_queue(store: Store, scale: str = "pass_fail") -> Queue:
    run = store.runs.create({"variants": [], "evaluators": []}, "sha256:x", name="r")
    items = [
        {
            "variant": "v1",
            "case_id": f"c{i:02d}",
            "sample_index": 0,
            "log_id": None,
            "input": {"q": i},
            "output": f"out {i}",
            "reference": None,
        }
        for i in range(N_ITEMS)
    ]
    queue = Queue("q-test", "test", "run", run.id, {"run": run.id}, scale, None, "alice", utcnow())
    return store.review.create(queue, items)


def human(store: Store, run_id: str) -> dict[str, tuple[float, bool | None, str]]:
    return {
        s["case_id"]: (s["value"], s["passed"], s["details"]["reviewer"])
        for s in store.runs.scores(run_id)
        if s["evaluator"] == "human"
    }


def test_labels_undo_and_the_human_score_follow_each_other(database_url: str) -> None:
    with Store.open(database_url) as store:
        queue = run_queue(store)
        assert queue.run_id is not None
        store.review.label(queue.id, 0, "alice", {"passed": True})
        store.review.label(queue.id, 0, "alice", {"comment": "fine"})  # keeps the pass
        store.review.label(queue.id, 1, "alice", {"passed": False, "rating": 2})
        assert human(store, queue.run_id) == {"c00": (1.0, True, "alice"), "c01": (0.0, False, "alice")}
        (score,) = [s for s in store.runs.scores(queue.run_id) if s["case_id"] == "c00"]
        assert score["details"]["comment"] == "fine"
        # Undo pops alice's latest event (item 1), then the comment (item 0 keeps its pass).
        assert store.review.undo(queue.id, "alice").position == 1  # type: ignore[union-attr]
        assert human(store, queue.run_id) == {"c00": (1.0, True, "alice")}
        undone = store.review.undo(queue.id, "alice")
        assert undone is not None and undone.comment == "fine"
        assert store.review.labels(queue.id)[(0, "alice")].comment is None
        # A second reviewer's later label decides the score; undoing it gives alice's back.
        store.review.label(queue.id, 0, "bob", {"passed": False})
        assert human(store, queue.run_id)["c00"] == (0.0, False, "bob")
        assert store.review.undo(queue.id, "bob") is not None
        assert human(store, queue.run_id)["c00"] == (1.0, True, "alice")
        store.review.undo(queue.id, "alice")
        assert human(store, queue.run_id) == {} and store.review.undo(queue.id, "alice") is None
        assert store.review.labelled_counts([queue.id], {queue.id: "pass_fail"}) == {queue.id: 0}
        assert len(store.review.events(queue.id)) == 4  # every change kept, undone ones marked


def test_log_labels_are_feedback_rows_that_undo_removes(database_url: str) -> None:
    with Store.open(database_url) as store:
        store.logs.insert_many(
            [
                {
                    "id": "log-1",
                    "created_at": utcnow(),
                    "source": "app",
                    "model": "m",
                    "inputs": {"q": 1},
                    "output": "hi",
                    "params": {},
                    "metadata": {},
                }
            ]
        )
        queue = Queue("q-logs", "logs", "logs", None, {}, "pass_fail", None, "alice", utcnow())
        store.review.create(
            queue,
            [
                {
                    "variant": None,
                    "case_id": None,
                    "sample_index": None,
                    "log_id": "log-1",
                    "input": {"q": 1},
                    "output": "hi",
                    "reference": None,
                }
            ],
        )
        store.review.label(queue.id, 0, "alice", {"passed": True, "correction": "Hello."})
        store.review.label(queue.id, 0, "alice", {"passed": False})
        kinds = [(f["kind"], f["value"], f["text"], f["source"]) for f in store.logs.get("log-1").feedback]
        assert kinds[:2] == [("thumbs", 1.0, None, "alice"), ("correction", None, "Hello.", "alice")]
        assert kinds[2:] == [("thumbs", 0.0, None, "alice")]  # the latest thumbs is down
        store.review.undo(queue.id, "alice")
        assert [f["value"] for f in store.logs.get("log-1").feedback if f["kind"] == "thumbs"] == [1.0]


def test_two_reviewers_labelling_at_once_lose_no_label(database_url: str) -> None:
    with Store.open(database_url) as store:
        queue = run_queue(store)
        assert queue.run_id is not None
        start = threading.Barrier(2)

        def work(reviewer: str) -> None:
            start.wait()
            # Both label every item, in opposite orders, with a comment after each: the same item rows
            # are contended from both ends.
            positions = range(N_ITEMS) if reviewer == "alice" else reversed(range(N_ITEMS))
            for p in positions:
                store.review.label(queue.id, p, reviewer, {"passed": (p % 2 == 0) == (reviewer == "alice")})
                store.review.label(queue.id, p, reviewer, {"comment": f"{reviewer} {p}"})

        with ThreadPoolExecutor(2) as pool:
            for done in [pool.submit(work, "alice"), pool.submit(work, "bob")]:
                done.result()
        labels = store.review.labels(queue.id)
        assert len(labels) == 2 * N_ITEMS
        for (p, reviewer), x in labels.items():
            assert x.passed == ((p % 2 == 0) == (reviewer == "alice")) and x.comment == f"{reviewer} {p}"
        assert len(store.review.events(queue.id)) == 4 * N_ITEMS
        # Every item has one human score, that of whoever labelled it last.
        scores = human(store, queue.run_id)
        assert len(scores) == N_ITEMS
        for case_id, (value, _, reviewer) in scores.items():
            assert labels[(int(case_id[1:]), reviewer)].passed == (value == 1.0)
        assert store.review.labelled_counts([queue.id], {queue.id: "pass_fail"}) == {queue.id: N_ITEMS}
