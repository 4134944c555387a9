"""Fine-tuning jobs: persisted, Future-like objects that any process can follow, cancel or resume.

`create_job` checks the data with the backend, freezes it content-hashed in the objects table, records the
job and starts a detached worker process (`python -m honed.finetune.worker JOB_ID`) that trains and writes
the outcome back to the database. A `FinetuneJob` is only a view of that row: `refresh()` re-reads it, so a
job created in one shell is listed, awaited or cancelled from another.

`interrupted` is never stored. A job reads as interrupted when its row says queued or running but its
worker is gone: the pid is dead (checked when the worker ran on this machine) or its heartbeat, the row's
`updated_at` which the worker touches every few seconds, is stale (a worker on another machine).
`resume()` starts a new worker, and the backend continues from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honed.config import Settings
from honed.errors import FinetuneCancelled, FinetuneError, InvalidInputError
from honed.finetune.backend import ChatExample, FinetuneSpec
from honed.finetune.registry import get_backend
from honed.store.schema import utcnow
from honed.userfiles import json_lines

if TYPE_CHECKING:
    from honed.store import Store
    from honed.store.jobs import JobRow
    from honed.workspace import Workspace

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
_LIVE = ("queued", "running")
EXAMPLES_KIND = "finetune_examples"
WORKER_MODULE = "honed.finetune.worker"
#: how often a worker touches its row, and how old a heartbeat may be before its job reads as interrupted
HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0
_POLL_S = 0.5


def job_workdir(settings: Settings, job_id: str) -> Path:
    """`<workspace>/.honed/finetune/<job id>`: the job's checkpoints, state and worker log."""
    if settings.data_folder is None:
        raise FinetuneError(
            "fine-tuning jobs need a workspace folder for their checkpoints and logs",
            hint="run `honed init` in your project folder, or set HONED_HOME",
        )
    return settings.data_folder / "finetune" / job_id


class StoredJobContext:
    """The `JobContext` a backend runs with: the job's row, data and events in the store."""

    def __init__(self, store: Store, settings: Settings, job_id: str, spec: FinetuneSpec) -> None:
        self._store = store
        self._settings = settings
        self._job_id = job_id
        self._spec = spec

    @property
    def job_id(self) -> str:
        return self._job_id

    @property
    def spec(self) -> FinetuneSpec:
        return self._spec

    @property
    def workdir(self) -> Path:
        return job_workdir(self._settings, self._job_id)

    @property
    def settings(self) -> Settings:
        return self._settings

    def training_examples(self) -> list[ChatExample]:
        return _load_examples(self._store, self._spec.training)

    def validation_examples(self) -> list[ChatExample] | None:
        return _load_examples(self._store, self._spec.validation) if self._spec.validation else None

    def event(self, message: str, *, kind: str = "message", data: dict[str, Any] | None = None) -> None:
        self._store.jobs.add_event(self._job_id, kind, message, data)

    def metric(self, step: int, **values: float) -> None:
        self._store.jobs.add_event(self._job_id, "metric", None, {"step": step, **values})

    def cancel_requested(self) -> bool:
        return self._store.jobs.cancel_requested(self._job_id)


class FinetuneJob:
    """A fine-tuning job as last read from the store; `refresh()` reads it again.

    Like a `concurrent.futures.Future`: `done()`, `result(timeout)`, `cancel()`, plus `events()` (the
    loss curve and messages) and `resume()` for a job whose worker died.
    """

    def __init__(self, store: Store, settings: Settings, row: JobRow) -> None:
        self._store = store
        self._settings = settings
        self._row = row
        self._status = _effective_status(store, row)

    # -- what it is ---------------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._row.id

    @property
    def status(self) -> str:
        """queued, running, succeeded, failed, cancelled or interrupted (its worker died; resumable)."""
        return self._status

    @property
    def spec(self) -> FinetuneSpec:
        return FinetuneSpec.from_dict(self._row.spec)

    @property
    def backend(self) -> str:
        return self._row.backend

    @property
    def model(self) -> str | None:
        """The trained model's reference once the job succeeded (e.g. `local/...+ft-<id>`)."""
        return self._row.model

    @property
    def metrics(self) -> dict[str, Any]:
        """The backend's final metrics once the job succeeded."""
        return dict(self._row.result or {})

    @property
    def error(self) -> str | None:
        return self._row.error

    @property
    def pid(self) -> int | None:
        return self._row.pid

    @property
    def cancel_requested(self) -> bool:
        return self._row.cancel_requested

    @property
    def created_at(self) -> datetime:
        return self._row.created_at

    @property
    def updated_at(self) -> datetime:
        return self._row.updated_at

    @property
    def workdir(self) -> Path:
        return job_workdir(self._settings, self.id)

    # -- the Future-like part -----------------------------------------------------------------------------

    def refresh(self) -> FinetuneJob:
        """Read the job again from the store; returns self."""
        self._row = self._store.jobs.get(self.id)
        self._status = _effective_status(self._store, self._row)
        return self

    def done(self) -> bool:
        """True once nothing is running it: finished, or interrupted (then `resume()` can continue it)."""
        return self.refresh().status in FINISHED or self._status == "interrupted"

    def events(self, after_seq: int = 0, *, kind: str | None = None) -> list[dict[str, Any]]:
        """The job's events after `after_seq` (seq, kind, message, data, created_at), oldest first."""
        return self._store.jobs.events(self.id, after_seq=after_seq, kind=kind)

    def wait(self, timeout: float | None = None) -> FinetuneJob:
        """Block until `done()` (or `timeout` seconds: then FinetuneError); returns self."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done():
            if deadline is not None and time.monotonic() >= deadline:
                raise FinetuneError(
                    f"fine-tuning job {self.id} is still {self.status} after {timeout:g} s",
                    hint=f"wait longer, or follow it with `honed finetune wait {self.id}`",
                )
            time.sleep(_POLL_S)
        return self

    def result(self, timeout: float | None = None) -> str:
        """Wait for the job and return its model reference.

        Raises FinetuneCancelled if it was cancelled, FinetuneError if it failed or was interrupted.
        """
        self.wait(timeout)
        if self.status == "succeeded" and self.model:
            return self.model
        if self.status == "cancelled":
            raise FinetuneCancelled(f"fine-tuning job {self.id} was cancelled")
        if self.status == "interrupted":
            raise FinetuneError(
                f"fine-tuning job {self.id} was interrupted (its worker stopped)",
                hint=f"continue it from its last checkpoint with `honed finetune resume {self.id}`",
            )
        raise FinetuneError(
            f"fine-tuning job {self.id} failed: {self.error or 'no error recorded'}",
            hint=f"see `honed finetune show {self.id}` and {self.workdir / 'worker.log'}",
        )

    def cancel(self) -> bool:
        """Ask the job to stop; returns False if it had already finished.

        A running worker stops at its backend's next safe point (a training step); remote work (an
        OpenAI job) is cancelled remotely now. A job with no live worker is cancelled at once.
        """
        if self.refresh().status in FINISHED:
            return False
        jobs = self._store.jobs
        jobs.update(self.id, cancel_requested=True)
        jobs.add_event(self.id, "status", "cancel requested", {"cancel_requested": True})
        backend = get_backend(self.backend)
        backend.cancel(StoredJobContext(self._store, self._settings, self.id, self.spec))
        no_worker = self.status == "interrupted" or (self.status == "queued" and self.pid is None)
        if no_worker and jobs.update(self.id, status="cancelled", only_if_status=frozenset(_LIVE)):
            jobs.add_event(self.id, "status", "cancelled", {"status": "cancelled"})
        self.refresh()
        return True

    def resume(self) -> FinetuneJob:
        """Start a new worker for an interrupted or failed job; the backend continues from its checkpoint."""
        status = self.refresh().status
        if status not in ("interrupted", "failed"):
            raise FinetuneError(
                f"fine-tuning job {self.id} is {status}; only interrupted or failed jobs can be resumed",
                hint="see `honed finetune show " + self.id + "`",
            )
        self._store.jobs.update(self.id, status="queued", error=None, pid=None, cancel_requested=False)
        self._store.jobs.add_event(self.id, "status", "resume requested", {"status": "queued"})
        start_worker(self._store, self._settings, self.id)
        return self.refresh()

    def summary(self) -> dict[str, Any]:
        """The job as plain JSON-able data, with its loss-curve summary."""
        return {
            "id": self.id,
            "status": self.status,
            "backend": self.backend,
            "base_model": self.spec.base_model,
            "model": self.model,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "hyperparameters": self.spec.hyperparameters,
            "source": self.spec.source,
            "metrics": self.metrics,
            "curve": curve_summary(self.events(kind="metric")),
        }

    def __repr__(self) -> str:
        return f"FinetuneJob({self.id!r}, status={self.status!r}, model={self.model!r})"


# -- creating and finding jobs ---------------------------------------------------------------------------


def create_job(
    h: Workspace,
    spec: FinetuneSpec,
    training_examples: list[ChatExample],
    validation_examples: list[ChatExample] | None = None,
    *,
    start: bool = True,
) -> FinetuneJob:
    """Check, freeze and record a job, then (with `start`) run it in a detached worker process.

    The spec's `training`/`validation` hashes are set here from the examples. The backend checks the job
    first: data it cannot train on is an InvalidInputError and nothing is stored.
    """
    backend = get_backend(spec.backend)
    if not training_examples:
        raise InvalidInputError("there are no training examples", hint="give at least one chat example")
    backend.check(spec, training_examples, validation_examples)
    job_workdir(h.settings, "x")  # refuse early, before storing anything, outside a workspace
    store = h.store
    training = store.objects.put(EXAMPLES_KIND, {"examples": training_examples})
    validation = (
        store.objects.put(EXAMPLES_KIND, {"examples": validation_examples}) if validation_examples else None
    )
    spec = dataclasses.replace(spec, training=training, validation=validation)
    job_id = uuid.uuid4().hex[:12]
    row = store.jobs.create(job_id, spec.backend, spec.to_dict())
    counts = {"training": len(training_examples), "validation": len(validation_examples or [])}
    message = f"created: {counts['training']} training, {counts['validation']} validation examples"
    store.jobs.add_event(job_id, "status", message, {"status": "queued", **counts})
    if start:
        start_worker(store, h.settings, job_id)
    return FinetuneJob(store, h.settings, row).refresh()


def get_job(h: Workspace, job_id: str) -> FinetuneJob:
    """The job `job_id`; NotFoundError if there is none."""
    return FinetuneJob(h.store, h.settings, h.store.jobs.get(job_id))


def list_jobs(h: Workspace, *, limit: int | None = None) -> list[FinetuneJob]:
    """Jobs, newest first."""
    return [FinetuneJob(h.store, h.settings, row) for row in h.store.jobs.list(limit=limit)]


def start_worker(store: Store, settings: Settings, job_id: str) -> int:
    """Start `python -m honed.finetune.worker JOB_ID` detached from this process; returns its pid.

    The worker gets this workspace's settings through its environment (HONED_HOME, the database URL,
    the model cache), its own session (so closing this shell does not stop it), and writes its output
    to `worker.log` in the job's folder.
    """
    workdir = job_workdir(settings, job_id)
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if settings.root is not None:
        env["HONED_HOME"] = str(settings.root)
    env["HONED_DATABASE_URL"] = settings.resolved_database_url()
    env["HONED_MODEL_CACHE"] = str(settings.local.resolved_cache_dir())
    with open(workdir / "worker.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, job_id],
            cwd=str(settings.root or workdir),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # Until the child has exec'ed the worker, /proc shows this process's command line, and a reader would
    # take the job for interrupted: wait for the exec (or the child's death) before recording the pid.
    deadline = time.monotonic() + 30
    while proc.poll() is None and not pid_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    # Recorded here as well as by the worker, so a worker that dies before its first write still reads
    # as interrupted rather than queued forever.
    store.jobs.update(job_id, pid=proc.pid, only_if_status=frozenset({"queued"}))
    _SPAWNED.append(proc)
    return proc.pid


#: workers this process started: kept so their exit status is collected (no zombie lingers)
_SPAWNED: list[subprocess.Popen[bytes]] = []


def _reap() -> None:
    _SPAWNED[:] = [p for p in _SPAWNED if p.poll() is None]


def read_chat_jsonl(path: Path) -> list[ChatExample]:
    """Chat examples from an OpenAI fine-tuning JSONL file; a malformed line is an error naming FILE:LINE."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read {path}: {exc.strerror}", hint="give an existing JSONL file"
        ) from None
    examples: list[ChatExample] = []
    for n, item in json_lines(path, text, hint='each line is {"messages": [...]}'):
        problem = example_problem(item)
        if problem:
            raise InvalidInputError(f"{path}:{n}: {problem}", hint=_FORMAT_HINT)
        examples.append(item)
    if not examples:
        raise InvalidInputError(f"{path} has no examples", hint=_FORMAT_HINT)
    return examples


_FORMAT_HINT = (
    'each line is {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]} '
    "ending with the assistant turn to learn"
)
_ROLES = frozenset({"system", "user", "assistant"})


def example_problem(item: Any) -> str | None:
    """What is wrong with one chat example (OpenAI's chat fine-tuning format), or None."""
    if not isinstance(item, dict) or not isinstance(item.get("messages"), list):
        return 'an example must be an object with a "messages" list'
    messages = item["messages"]
    if not messages:
        return '"messages" is empty'
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            return f"message {i}: role must be system, user or assistant"
        if not isinstance(m.get("content"), str):
            return f"message {i}: content must be a string"
    if messages[-1]["role"] != "assistant":
        return "the last message must be the assistant's (the output to learn)"
    if not messages[-1]["content"].strip():
        return "the assistant's message is empty"
    if not any(m["role"] == "user" for m in messages):
        return "an example needs a user message"
    return None


def curve_summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    """First, last and best training loss, steps and validation loss, from a job's metric events."""
    losses = [(e["data"]["step"], e["data"]["loss"]) for e in events if "loss" in (e.get("data") or {})]
    vals = [(e["data"]["step"], e["data"]["val_loss"]) for e in events if "val_loss" in (e.get("data") or {})]
    out: dict[str, Any] = {"steps": max((s for s, _ in losses), default=0), "points": len(losses)}
    if losses:
        out["first_loss"] = losses[0][1]
        out["last_loss"] = losses[-1][1]
        out["best_loss"] = min(v for _, v in losses)
    if vals:
        best = min(vals, key=lambda sv: sv[1])
        out["last_val_loss"] = vals[-1][1]
        out["best_val_loss"] = best[1]
        out["best_val_step"] = best[0]
    return out


def loss_curve_svg(events: list[dict[str, Any]], *, width: int = 860, height: int = 320) -> str | None:
    """The training loss (and validation loss, where measured) by step, as an inline SVG line chart of the
    report kit; None when the job recorded no loss yet. Lines, not dots: steps are many and evenly spaced."""
    from honed.reports import ACCENT, GRID, HIGHLIGHT, INK, MUTED, nice_ticks, svg_open, svg_text, tick_format

    series = [
        (name, colour, [(e["data"]["step"], e["data"][key]) for e in events if key in (e.get("data") or {})])
        for name, key, colour in (("training", "loss", ACCENT), ("validation", "val_loss", HIGHLIGHT))
    ]
    series = [s for s in series if s[2]]
    if not series:
        return None
    steps = [p[0] for _, _, points in series for p in points]
    values = [p[1] for _, _, points in series for p in points]
    ticks_x, ticks_y = nice_ticks(min(steps), max(steps)), nice_ticks(min(values), max(values))
    fx, fy = tick_format(ticks_x), tick_format(ticks_y)
    left, right, top, bottom = 64.0, 130.0, 14.0, float(height - 40)

    def sx(v: float) -> float:
        return left + (v - ticks_x[0]) / (ticks_x[-1] - ticks_x[0]) * (width - left - right)

    def sy(v: float) -> float:
        return bottom - (v - ticks_y[0]) / (ticks_y[-1] - ticks_y[0]) * (bottom - top)

    parts = [svg_open(width, height, "loss by training step")]
    for t in ticks_y:
        parts.append(
            f'<line x1="{left}" y1="{sy(t):.1f}" x2="{width - right}" y2="{sy(t):.1f}" stroke="{GRID}"/>'
        )
        parts.append(svg_text(left - 8, sy(t) + 4, fy(t), anchor="end"))
    for t in ticks_x:
        parts.append(svg_text(sx(t), bottom + 18, fx(t), anchor="middle"))
    parts.append(f'<path d="M{left},{top} V{bottom} H{width - right}" fill="none" stroke="{INK}"/>')
    parts.append(
        svg_text(
            left + (width - left - right) / 2, height - 6, "step", anchor="middle", extra=f' fill="{MUTED}"'
        )
    )
    for i, (name, colour, points) in enumerate(series):
        path = " ".join(f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for j, (x, y) in enumerate(points))
        parts.append(f'<path class="{name}" d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if len(points) == 1:  # a lone point draws no line
            parts.append(
                f'<circle cx="{sx(points[0][0]):.1f}" cy="{sy(points[0][1]):.1f}" r="3" fill="{colour}"/>'
            )
        x, y = width - right + 12, top + 14 + 18 * i
        parts.append(
            f'<line x1="{x}" y1="{y - 4}" x2="{x + 20}" y2="{y - 4}" stroke="{colour}" stroke-width="2"/>'
        )
        parts.append(svg_text(width - right + 38, y, f"{name} loss"))
    parts.append("</svg>")
    return "".join(parts)


# -- liveness ---------------------------------------------------------------------------------------------


def _load_examples(store: Store, key: str) -> list[ChatExample]:
    body = store.objects.get(key)
    return list(body["examples"])


def _effective_status(store: Store, row: JobRow) -> str:
    _reap()
    if row.status not in ("queued", "running") or row.pid is None:
        return row.status
    host = _worker_host(store, row.id)
    if host == socket.gethostname() and not pid_alive(row.pid):
        return "interrupted"
    if utcnow() - row.updated_at > timedelta(seconds=STALE_AFTER_S):
        return "interrupted"
    return row.status


def _worker_host(store: Store, job_id: str) -> str:
    """The machine the job's latest worker ran on (the one that started it, until the worker says)."""
    for event in reversed(store.jobs.events(job_id, kind="status")):
        host = (event.get("data") or {}).get("host")
        if host:
            return str(host)
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live honed worker on this machine (not dead, not a zombie, not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust the signal check
    return state not in ("Z", "X") and WORKER_MODULE.encode() in cmdline
