"""A training worker killed with SIGKILL mid-run, then resumed: it continues from its last checkpoint and
ends where an uninterrupted run ends, step for step (real worker processes, the real local model)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import honed
from honed.api import Honed
from honed.errors import FinetuneError
from honed.finetune.backend import FinetuneSpec
from honed.finetune.jobs import FinetuneJob, create_job
from honed.finetune.worker import run_job
from tests.finetune.lora_data import BASE, TINY, examples

pytestmark = pytest.mark.slow


@pytest.fixture
def h(workspace: Path) -> Iterator[Honed]:
    with honed.connect(workspace) as opened:
        yield opened


def losses(job: FinetuneJob) -> dict[int, float]:
    """Step -> loss; a step trained twice (before a kill and after the resume) keeps its last value."""
    return {e["data"]["step"]: e["data"]["loss"] for e in job.events(kind="metric") if "loss" in e["data"]}


def until(condition: object, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_killed_worker_resumes_from_its_checkpoint(h: Honed) -> None:
    spec = FinetuneSpec(backend="local", base_model=BASE, training="", hyperparameters=TINY)
    reference = create_job(h, spec, examples(12), start=False)
    assert run_job(reference.id, h.settings) == 0

    job = create_job(h, spec, examples(12))
    assert job.pid is not None
    until(lambda: job.events(kind="checkpoint") or job.done(), "the first checkpoint")
    assert job.status == "running", job.error
    os.kill(job.refresh().pid or 0, signal.SIGKILL)
    until(lambda: job.refresh().status == "interrupted", "the job to read as interrupted", timeout=30)
    with pytest.raises(FinetuneError, match="interrupted"):
        job.result(timeout=0)
    killed_at = max(losses(job))
    assert 2 <= killed_at < 6

    job.resume()
    assert job.result(timeout=600) == f"{BASE}+ft-{job.id}"
    resumed = [e["data"]["resume_step"] for e in job.events(kind="checkpoint") if "resume_step" in e["data"]]
    assert len(resumed) == 1 and 2 <= resumed[0] <= killed_at
    statuses = [e["message"] for e in job.events(kind="status")]
    assert statuses.count("running") == 2 and "resume requested" in statuses

    # The same number of steps, and the steps after the checkpoint are the ones the uninterrupted run took.
    reference.refresh()
    assert job.metrics["step"] == reference.metrics["step"] == 6
    assert job.metrics["resumed_from"] == resumed[0]
    ours, theirs = losses(job), losses(reference)
    assert sorted(ours) == sorted(theirs) == [1, 2, 3, 4, 5, 6]
    for step in range(1, 7):
        assert ours[step] == pytest.approx(theirs[step], rel=1e-3), step
    assert (
        Path(h.settings.data_folder or "") / "adapters" / f"ft-{job.id}" / "adapter_config.json"
    ).is_file()
