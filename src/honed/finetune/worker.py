"""The process that runs one fine-tuning job: `python -m honed.finetune.worker JOB_ID`.

Started detached by `create_job`/`resume` with the workspace's settings in its environment. It marks the
job running, touches its row every few seconds (the heartbeat other processes read), runs the backend and
writes the outcome. If it is killed, nothing is written: the job then reads as interrupted.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import traceback

from honed.config import Settings, load_settings
from honed.errors import FinetuneCancelled, HonedError
from honed.finetune.backend import FinetuneSpec
from honed.finetune.jobs import FINISHED, HEARTBEAT_S, StoredJobContext
from honed.finetune.registry import get_backend
from honed.store import Store

_LIVE = frozenset({"queued", "running"})


def run_job(job_id: str, settings: Settings) -> int:
    """Run job `job_id` to its end in this process; returns the exit code (0 unless it failed)."""
    store = Store.open(settings.resolved_database_url())
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, job_id, stop), name="heartbeat", daemon=True)
    try:
        row = store.jobs.get(job_id)
        if row.status in FINISHED:
            print(f"job {job_id} is already {row.status}; nothing to do", flush=True)
            return 0
        jobs = store.jobs
        if row.cancel_requested:
            jobs.update(job_id, status="cancelled", only_if_status=_LIVE)
            jobs.add_event(job_id, "status", "cancelled before it started", {"status": "cancelled"})
            return 0
        if not jobs.update(job_id, status="running", pid=os.getpid(), only_if_status=_LIVE):
            print(f"job {job_id} finished before its worker started; nothing to do", flush=True)
            return 0
        data = {"status": "running", "pid": os.getpid(), "host": socket.gethostname()}
        jobs.add_event(job_id, "status", "running", data)
        beat.start()
        spec = FinetuneSpec.from_dict(row.spec)
        ctx = StoredJobContext(store, settings, job_id, spec)
        try:
            result = get_backend(spec.backend).run(ctx)
        except FinetuneCancelled as exc:
            jobs.update(job_id, status="cancelled", only_if_status=_LIVE)
            jobs.add_event(job_id, "status", f"cancelled: {exc.one_line()}", {"status": "cancelled"})
            return 0
        except HonedError as exc:
            _fail(store, job_id, exc.one_line())
            return 1
        except Exception as exc:
            traceback.print_exc()
            _fail(store, job_id, f"{type(exc).__name__}: {exc}")
            return 1
        jobs.update(job_id, status="succeeded", model=result.model, result=result.metrics, error=None)
        jobs.add_event(job_id, "status", f"succeeded: {result.model}", {"status": "succeeded"})
        print(f"job {job_id} succeeded: {result.model}", flush=True)
        return 0
    finally:
        stop.set()
        if beat.is_alive():
            beat.join()
        store.close()


def _fail(store: Store, job_id: str, error: str) -> None:
    line = " ".join(error.split())
    store.jobs.update(job_id, status="failed", error=line)
    store.jobs.add_event(job_id, "status", f"failed: {line}", {"status": "failed"})
    print(f"job {job_id} failed: {line}", file=sys.stderr, flush=True)


def _heartbeat(store: Store, job_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            store.jobs.heartbeat(job_id)
        except HonedError as exc:  # a busy database: the next beat will do
            print(f"heartbeat failed: {exc.one_line()}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m honed.finetune.worker JOB_ID", file=sys.stderr)
        return 2
    try:
        settings = load_settings({})
    except HonedError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 1
    return run_job(args[0], settings)


if __name__ == "__main__":
    sys.exit(main())
