"""The background batch writer: `submit(row)` returns at once; a thread writes rows in batches.

Why a thread and an unbounded queue: logging must never slow or block the application it observes, and
must never drop a record silently. The thread takes up to `batch_size` rows at a time (waiting at most
`interval_s` for a batch to fill) and writes each batch with one `insert_many` (one transaction, one
executemany), which is what makes ingestion fast. A batch that fails (a duplicate id, say) is retried row
by row so one bad row costs only itself; rows that still fail are counted in `failed` and reported with a
one-line warning. `flush()` waits until everything submitted before it is written; `close()` drains and
stops the thread, and runs at interpreter exit too, so a clean exit loses nothing.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from honed.closing import Closing
from honed.errors import StoreError

if TYPE_CHECKING:
    from honed.store import Store

logger = logging.getLogger("honed.logs")


class LogWriter(Closing):
    """Writes `logs` rows (`LogRecord.row()` dicts) to `store` from a background thread. Thread-safe.

    `written` and `failed` count rows; `last_error` is the message of the latest failed row.
    """

    def __init__(self, store: Store, *, batch_size: int = 1000, interval_s: float = 0.2) -> None:
        if batch_size < 1 or interval_s < 0:
            raise ValueError("batch_size must be >= 1 and interval_s >= 0")
        self._store = store
        self._batch_size = batch_size
        self._interval_s = interval_s
        self._cond = threading.Condition()
        self._rows: list[dict[str, Any]] = []
        self._submitted = 0
        self._done = 0
        self._flush_to = 0  # a flush() waits for rows up to this count: write them without waiting
        self._closed = False
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failed = 0
        self.last_error: str | None = None

    @property
    def pending(self) -> int:
        """Rows submitted but not yet written (or failed)."""
        with self._cond:
            return self._submitted - self._done

    def submit(self, row: dict[str, Any]) -> None:
        """Queue one row; never blocks on the database. Raises StoreError once the writer is closed."""
        with self._cond:
            if self._closed:
                raise StoreError(
                    "the log writer is closed", hint="log through an open workspace (honed.connect())"
                )
            self._rows.append(row)
            self._submitted += 1
            if self._thread is None:
                self._start()
            elif len(self._rows) == self._batch_size:
                self._cond.notify_all()

    def submit_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Queue several rows at once (one lock round-trip)."""
        if not rows:
            return
        with self._cond:
            if self._closed:
                raise StoreError("the log writer is closed", hint="log through an open workspace")
            self._rows.extend(rows)
            self._submitted += len(rows)
            if self._thread is None:
                self._start()
            elif len(self._rows) >= self._batch_size:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row submitted before this call is written (or counted as failed).
        Returns False if `timeout` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            if self._done >= target:
                return True
            self._flush_to = max(self._flush_to, target)
            self._cond.notify_all()
            while self._done < target:
                thread = self._thread
                if thread is None or not thread.is_alive():
                    return False  # cannot happen while the loop catches everything; never hang on it
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.5 if left is None else min(left, 0.5))
            return True

    def close(self) -> None:
        """Write everything queued, then stop the thread. Idempotent; later `submit`s raise."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
            atexit.unregister(self.close)

    # -- the thread --------------------------------------------------------------------------------------

    def _start(self) -> None:
        # A daemon thread, closed by atexit: atexit handlers run before daemon threads are stopped, while
        # a non-daemon thread would be waited for (forever) before atexit ever ran.
        self._thread = threading.Thread(target=self._run, name="honed-log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _take(self) -> tuple[list[dict[str, Any]], bool]:
        with self._cond:
            deadline = time.monotonic() + self._interval_s
            while len(self._rows) < self._batch_size and not self._closed and self._flush_to <= self._done:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = self._rows[: self._batch_size]
            del self._rows[: self._batch_size]
            return batch, self._closed and not self._rows

    def _run(self) -> None:
        while True:
            batch, last = self._take()
            if batch:
                self._write(batch)
            with self._cond:
                self._done += len(batch)
                self._cond.notify_all()
            if last:
                return

    def _write(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._store.logs.insert_many(batch)
            self.written += len(batch)
            return
        except Exception:  # retried row by row below, where each failure is counted
            pass
        failed = 0
        for row in batch:
            try:
                self._store.logs.insert_many([row])
                self.written += 1
            except Exception as exc:  # the writer must outlive any one bad row
                failed += 1
                self.last_error = f"{row.get('id')}: {getattr(exc, 'message', None) or exc}"
        if failed:
            self.failed += failed
            logger.warning(
                "honed log writer: %d of %d rows could not be written (last: %s)",
                failed,
                len(batch),
                self.last_error,
            )
