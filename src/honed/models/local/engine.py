"""Dynamic batching: one thread owns the model and runs waiting requests together.

On 2 CPU cores one request decodes ~16 tokens/s, but a forward pass over 16 rows costs little more than
over one, so throughput comes from batching concurrent requests. Callers on any event loop (or thread)
`submit` a job and get a `concurrent.futures.Future`; `run` awaits it through `asyncio.wrap_future`, which
resolves it on the caller's own loop via `call_soon_threadsafe`. The worker takes the oldest waiting job,
waits up to `window_s` for more (taking at once all that are already queued), and runs up to `max_batch`
jobs of the same group (the same adapter) in one call of `runner`. Jobs of other groups wait for the next
round, oldest first. A failing batch rejects its own jobs only; the worker keeps serving.

Each result says how its time split: `model_s`, from the start of its batch to its own row's end (what
the model spent on it), and `queue_s`, the rest since `submit` (waiting for a batch, then for the batch's
other rows). Under load the queue grows while the time in the model stays that of one batch.

This module is torch-free: the runner does the model work.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from honed.errors import HonedError, ProviderError
from honed.models.local.jobs import Generation, Job

Runner = Callable[[Sequence[Job]], Sequence["Generation | HonedError"]]
"""`runner(jobs)` runs one batch: a result or an error per job, in order. It may raise for the whole batch."""

_Item = tuple[Job, "Future[Generation]", float]  # the job, its caller's future, perf_counter() at submit
_STOP = object()


class Engine:
    """A worker thread that batches submitted jobs. Start it once; `close` stops it."""

    def __init__(
        self, runner: Runner, *, max_batch: int = 16, window_s: float = 0.005, name: str = "local"
    ) -> None:
        self.runner = runner
        self.max_batch = max(1, max_batch)
        self.window_s = max(0.0, window_s)
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name=f"honed-{name}-engine", daemon=True)
        #: how many batches of each size ran so far (for benchmarks and tests)
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        self._thread.start()

    def submit(self, job: Job) -> Future[Generation]:
        """Queue `job`; the future resolves with its `Generation` or a `HonedError`."""
        future: Future[Generation] = Future()
        with self._lock:
            if self._closed:
                raise ProviderError("the local model engine is closed", provider="local")
            self._queue.put((job, future, time.perf_counter()))
        return future

    async def run(self, job: Job) -> Generation:
        """Submit `job` and await its result on the running event loop (cancelling it drops the job)."""
        return await asyncio.wrap_future(self.submit(job))

    def close(self, timeout: float | None = None) -> None:
        """Stop taking jobs, let the running batch finish, reject the rest and stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- the worker thread ----------------------------------------------------------------------------

    def _work(self) -> None:
        pending: collections.deque[_Item] = collections.deque()
        stopping = False
        while not stopping:
            if not pending:
                item = self._queue.get()
                if item is _STOP:
                    break
                pending.append(item)  # type: ignore[arg-type]  # anything but _STOP is an _Item
            stopping = self._gather(pending)
            batch = self._take(pending)
            if batch:
                self._run(batch)
        closed = ProviderError("the local model engine was closed before this request ran", provider="local")
        for _, future, _ in pending:
            _reject(future, closed)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                _reject(item[1], closed)  # type: ignore[index]

    def _gather(self, pending: collections.deque[_Item]) -> bool:
        """Add queued jobs, waiting up to the window for the head's group to fill. True on close."""
        deadline = time.monotonic() + self.window_s
        group = pending[0][0].group
        while True:
            filled = sum(1 for job, _, _ in pending if job.group == group) >= self.max_batch
            timeout = 0.0 if filled else deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            pending.append(item)  # type: ignore[arg-type]

    def _take(self, pending: collections.deque[_Item]) -> list[_Item]:
        """Claim up to max_batch jobs of the oldest job's group; cancelled ones are dropped."""
        batch: list[_Item] = []
        rest: list[_Item] = []
        group: str | None = None
        while pending:
            item = pending.popleft()
            job, future, _ = item
            if group is None or (job.group == group and len(batch) < self.max_batch):
                if not future.set_running_or_notify_cancel():
                    continue  # its caller gave up while it waited
                group = job.group
                batch.append(item)
            else:
                rest.append(item)
        pending.extend(rest)
        return batch

    def _run(self, batch: list[_Item]) -> None:
        self.batch_sizes[len(batch)] += 1
        started = time.perf_counter()
        try:
            results = list(self.runner([job for job, _, _ in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"the runner returned {len(results)} results for {len(batch)} jobs")
        except HonedError as exc:
            results = [exc] * len(batch)
        except Exception as exc:  # a bug or a torch failure: fail this batch loudly, keep serving
            error = ProviderError(f"local generation failed: {type(exc).__name__}: {exc}", provider="local")
            error.__cause__ = exc
            results = [error] * len(batch)
        ended = time.perf_counter()
        for (_, future, submitted), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                model_s = min(
                    ended - started, result.model_s if result.model_s is not None else ended - started
                )
                future.set_result(
                    dataclasses.replace(
                        result, model_s=model_s, queue_s=max(0.0, ended - submitted - model_s)
                    )
                )


def _reject(future: Future[Generation], error: HonedError) -> None:
    if future.set_running_or_notify_cancel():
        future.set_exception(error)
