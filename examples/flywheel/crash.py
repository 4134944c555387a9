"""Crash a running fine-tuning job on purpose, as a power cut would: wait for its first checkpoint, then
SIGKILL its worker process. `honed finetune resume JOB` then continues from that checkpoint.

python crash.py JOB_ID
"""

from __future__ import annotations

import os
import signal
import sys
import time

import honed
from honed.finetune.jobs import get_job


def main(job_id: str) -> None:
    with honed.connect() as h:
        job = get_job(h, job_id)
        deadline = time.monotonic() + 600
        while not job.events(kind="checkpoint"):
            if job.done() or time.monotonic() > deadline:
                raise SystemExit(f"job {job_id} ended ({job.status}) before its first checkpoint")
            time.sleep(0.5)
            job.refresh()
        step = job.events(kind="checkpoint")[-1]["data"]["step"]
        assert job.pid is not None
        os.kill(job.pid, signal.SIGKILL)
        while job.refresh().status != "interrupted":
            time.sleep(0.2)
        print(f"killed the worker of job {job_id} after its checkpoint at step {step}: {job.status}")


if __name__ == "__main__":
    main(sys.argv[1])
