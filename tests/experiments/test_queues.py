"""Review queues' domain functions on a real store: Cohen's kappa between two reviewers against a value
computed by hand, progress, audit events, and queues made from logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from honed.errors import InvalidInputError
from honed.experiments import queues
from honed.logs.filters import build_filter
from honed.store import Store
from honed.store.review import Queue
from honed.store.schema import utcnow

# Two reviewers on ten items. alice: pass 0-4, fail 5-9. bob: pass 0-3 and 5-6, fail 4 and 7-9.
#              bob pass  bob fail
# alice pass       4         1
# alice fail       2         3
# observed agreement p_o = 7/10; by chance p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4
ALICE = {i: i < 5 for i in range(10)}
BOB = {i: i < 4 or i in (5, 6) for i in range(10)}


def test_kappa_matches_the_value_computed_by_hand() -> None:
    n, accuracy, kappa = queues.kappa({**ALICE, 10: True}, {**BOB, 11: False})  # 10, 11: one label each
    assert n == 10 and accuracy == pytest.approx(0.7) and kappa == pytest.approx(0.4)
    assert queues.kappa(ALICE, {})[0] == 0
    # One label for everything on both sides: chance agreement is 1 and kappa is undefined, not a number.
    assert queues.kappa({0: True, 1: True}, {0: True, 1: True}) == (2, 1.0, None)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'honed.db'}") as opened:
        yield opened


def ten_item_queue(store: Store) -> Queue:
    run = store.runs.create({"variants": [], "evaluators": []}, "sha256:x", name="r")
    items = [
        {
            "variant": "v",
            "case_id": f"c{i}",
            "sample_index": 0,
            "log_id": None,
            "input": None,
            "output": f"o{i}",
            "reference": None,
        }
        for i in range(12)
    ]
    queue = Queue("q-ten", "ten", "run", run.id, {"run": run.id}, "pass_fail", None, "alice", utcnow())
    return store.review.create(queue, items)


def test_a_queue_view_measures_two_reviewers_and_records_who_did_what(store: Store) -> None:
    queue = ten_item_queue(store)
    for i, passed in ALICE.items():
        queues.label(store, queue.id, i, by="alice", passed=passed)
    for i, passed in BOB.items():
        queues.label(store, queue.id, i, by="bob", passed=passed)
    queues.label(store, queue.id, 11, by="bob", passed=True)  # one more, that alice did not label
    queues.label(store, queue.id, 0, by="alice", comment="ok")  # a comment changes no verdict
    queues.assign(store, queue.id, "bob", by="alice")
    shown = queues.view(store, queue.id, "alice")
    (pair,) = shown.pairs
    assert (pair.first, pair.second, pair.n) == ("alice", "bob", 10)
    assert pair.kappa == pytest.approx(0.4) and pair.accuracy == pytest.approx(0.7)
    assert shown.reviewers == {"alice": 10, "bob": 11}
    assert shown.progress == queues.Progress(labelled=11, mine=10, total=12)
    assert shown.next_position == 10 and shown.queue.assignee == "bob"
    events = store.audit.page(100, kind="queue", name=queue.id)[0]
    assert len(events) == 10 + 11 + 1 + 1
    assert events[0].action == "queue.assign" and events[0].detail == {"from": None, "to": "bob"}
    assert events[1].user == "alice" and events[1].detail == {"position": 0, "comment": "ok"}


def test_labels_are_checked(store: Store) -> None:
    queue = ten_item_queue(store)
    with pytest.raises(InvalidInputError, match="not on the scale"):
        queues.label(store, queue.id, 0, by="alice", rating=6)
    with pytest.raises(InvalidInputError, match="nothing to label"):
        queues.label(store, queue.id, 0, by="alice")
    assert queues.undo(store, queue.id, by="alice") is None
    with pytest.raises(InvalidInputError, match="unknown scale"):
        queues.create_log_queue(store, build_filter(), by="alice", scale="1-10")


def test_a_queue_from_logs_takes_those_with_an_output(store: Store) -> None:
    store.logs.insert_many(
        [
            {
                "id": f"log-{i}",
                "created_at": utcnow(),
                "source": "app",
                "model": "m" if i < 3 else "other",
                "inputs": {"q": i},
                "output": None if i == 0 else f"a{i}",
                "params": {},
                "metadata": {},
            }
            for i in range(5)
        ]
    )
    queue = queues.create_log_queue(store, build_filter(model="m"), by="carol", described="--model m")
    assert sorted(i.log_id or "" for i in store.review.items(queue.id)) == ["log-1", "log-2"]
    assert queue.name == "logs: --model m" and queue.source == {"filter": "--model m", "limit": 200}
    with pytest.raises(InvalidInputError, match="no log with an output"):
        queues.create_log_queue(store, build_filter(model="nobody"), by="carol")
