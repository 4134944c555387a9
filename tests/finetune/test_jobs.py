"""Fine-tuning jobs as persisted, Future-like objects: the store, statuses, cancel, interruption.

These tests never train (no worker is started: `start=False`); training is in test_local/test_resume.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

import honed
from honed.api import Honed
from honed.errors import FinetuneCancelled, FinetuneError, InvalidInputError, NotFoundError
from honed.finetune.backend import FinetuneSpec
from honed.finetune.jobs import create_job, curve_summary, get_job, list_jobs, read_chat_jsonl
from honed.store import Store
from honed.store.schema import finetune_jobs, objects, utcnow
from tests.finetune.lora_data import BASE, TINY, examples, write_jsonl


def spec(**hp: object) -> FinetuneSpec:
    return FinetuneSpec(backend="local", base_model=BASE, training="", hyperparameters={**TINY, **hp})


@pytest.fixture
def h(workspace: Path) -> Iterator[Honed]:
    with honed.connect(workspace) as opened:
        yield opened


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_repository_orders_events_and_lists_newest_first(database_url: str) -> None:
    with Store.open(database_url) as store:
        store.jobs.create("a1", "local", {"backend": "local"})
        store.jobs.create("b2", "local", {"backend": "local"})
        assert [j.id for j in store.jobs.list()] == ["b2", "a1"]
        assert store.jobs.add_event("a1", "status", "created", {"status": "queued"}) == 1
        assert store.jobs.add_event("a1", "metric", None, {"step": 1, "loss": 2.5}) == 2
        assert store.jobs.add_event("b2", "metric", None, {"step": 1, "loss": 9.0}) == 1
        assert [e["seq"] for e in store.jobs.events("a1")] == [1, 2]
        assert [e["data"]["loss"] for e in store.jobs.events("a1", after_seq=1)] == [2.5]
        assert store.jobs.events("a1", kind="status")[0]["message"] == "created"
        assert not store.jobs.cancel_requested("a1")
        store.jobs.update("a1", cancel_requested=True, status="running", pid=42)
        row = store.jobs.get("a1")
        assert row.cancel_requested and row.status == "running" and row.pid == 42
        # a conditional update that does not apply changes nothing
        assert not store.jobs.update("a1", status="succeeded", only_if_status=frozenset({"queued"}))
        assert store.jobs.get("a1").status == "running"
        with pytest.raises(NotFoundError, match="no fine-tuning job 'zz'"):
            store.jobs.get("zz")


def test_bad_training_data_is_refused_before_anything_is_stored(h: Honed) -> None:
    bad = [*examples(3), {"messages": [{"role": "user", "content": "no answer"}]}]
    with pytest.raises(InvalidInputError, match="training example 4: the last message must be the assistant"):
        create_job(h, spec(), bad)
    with pytest.raises(InvalidInputError, match="no hyperparameter 'lora_rank'"):
        create_job(h, spec(lora_rank=4), examples(3))
    with pytest.raises(InvalidInputError, match="trains only local/smollm2-135m-instruct"):
        create_job(h, FinetuneSpec(backend="local", base_model="openai/gpt-4o", training=""), examples(3))
    with pytest.raises(InvalidInputError, match=r"unknown training backend 'nope'.*known: local"):
        create_job(h, FinetuneSpec(backend="nope", base_model=BASE, training=""), examples(3))
    assert h.store.jobs.list() == []
    with h.store.read() as conn:
        assert conn.execute(objects.select().where(objects.c.kind == "finetune_examples")).first() is None


def test_a_training_file_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n\n{oops\n'
    )
    with pytest.raises(InvalidInputError, match=r"train.jsonl:3: not valid JSON"):
        read_chat_jsonl(path)
    write_jsonl(path, [{"messages": [{"role": "robot", "content": "x"}]}])
    with pytest.raises(InvalidInputError, match=r"train.jsonl:1: message 0: role must be"):
        read_chat_jsonl(path)
    assert len(read_chat_jsonl(write_jsonl(path, examples(3)))) == 3


def test_data_is_frozen_by_content_and_the_job_is_listed(h: Honed) -> None:
    job = create_job(h, spec(), examples(12), examples(4, start=50), start=False)
    again = create_job(h, spec(), examples(12), start=False)
    assert job.status == "queued" and job.spec.training == again.spec.training  # same data, same hash
    assert job.spec.training.startswith("sha256:") and job.spec.validation is not None
    assert h.store.objects.get(job.spec.training)["examples"] == examples(12)
    assert [j.id for j in list_jobs(h)] == [again.id, job.id]
    assert get_job(h, job.id).spec.hyperparameters == TINY
    assert job.events()[0]["message"] == "created: 12 training, 4 validation examples"


def test_a_queued_job_without_a_worker_is_cancelled_at_once(h: Honed) -> None:
    job = create_job(h, spec(), examples(4), start=False)
    assert job.cancel() is True
    assert job.status == "cancelled" and job.done()
    with pytest.raises(FinetuneCancelled):
        job.result(timeout=1)
    assert job.cancel() is False  # already finished
    with pytest.raises(FinetuneError, match="only interrupted or failed jobs can be resumed"):
        job.resume()


def test_a_running_job_whose_worker_died_reads_as_interrupted(h: Honed) -> None:
    job = create_job(h, spec(), examples(4), start=False)
    h.store.jobs.update(job.id, status="running", pid=dead_pid())
    assert job.refresh().status == "interrupted" and job.done()
    with pytest.raises(FinetuneError, match=f"honed finetune resume {job.id}"):
        job.result(timeout=1)


def test_a_worker_on_another_machine_is_judged_by_its_heartbeat(h: Honed) -> None:
    job = create_job(h, spec(), examples(4), start=False)
    h.store.jobs.update(job.id, status="running", pid=dead_pid())
    h.store.jobs.add_event(job.id, "status", "running", {"status": "running", "host": "elsewhere", "pid": 1})
    assert job.refresh().status == "running"  # fresh heartbeat: alive, whatever our pid table says
    with pytest.raises(FinetuneError, match=r"still running after 0\.2 s"):
        job.wait(timeout=0.2)
    with h.store.write() as conn:
        stale = utcnow() - timedelta(minutes=5)
        conn.execute(update(finetune_jobs).where(finetune_jobs.c.id == job.id).values(updated_at=stale))
    assert job.refresh().status == "interrupted"
    # cancelling a job nobody runs any more finishes it
    assert job.cancel() and job.status == "cancelled"


def test_curve_summary() -> None:
    events = [
        {"data": {"step": 1, "loss": 3.0}},
        {"data": {"step": 2, "loss": 1.0}},
        {"data": {"step": 2, "val_loss": 1.5}},
        {"data": {"step": 3, "loss": 2.0}},
        {"data": {"step": 3, "val_loss": 1.7}},
    ]
    assert curve_summary(events) == {
        "steps": 3,
        "points": 3,
        "first_loss": 3.0,
        "last_loss": 2.0,
        "best_loss": 1.0,
        "last_val_loss": 1.7,
        "best_val_loss": 1.5,
        "best_val_step": 2,
    }
