"""The background log writer on the real SQLite store (and once on PostgreSQL)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from honed.errors import StoreError
from honed.logs.record import LogRecord
from honed.logs.writer import LogWriter
from honed.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'honed.db'}") as opened:
        yield opened


def row(i: int, *, id: str | None = None) -> dict[str, object]:
    fields: dict[str, object] = {"model": "app/m", "inputs": {"i": i}, "output": f"out {i}"}
    if id is not None:
        fields["id"] = id
    return LogRecord.model_validate(fields).row()


def test_many_threads_submitting_lose_nothing_on_close(store: Store) -> None:
    writer = LogWriter(store, batch_size=500, interval_s=0.05)
    ids: list[list[str]] = [[] for _ in range(8)]

    def produce(k: int) -> None:
        for i in range(1500):
            r = row(k * 10_000 + i)
            ids[k].append(str(r["id"]))
            writer.submit(r)

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert writer.written == 8 * 1500 and writer.failed == 0 and writer.pending == 0
    stored = {r["id"] for r in store.logs.query()}
    assert stored == {i for part in ids for i in part}
    with pytest.raises(StoreError, match="closed"):
        writer.submit(row(0))


def test_submit_does_not_wait_for_the_database_and_flush_does(store: Store) -> None:
    with LogWriter(store, batch_size=1000, interval_s=30) as writer:
        started = time.perf_counter()
        for i in range(2000):
            writer.submit(row(i))
        assert time.perf_counter() - started < 2.0
        # With a 30 s interval, only flush() can make the last partial batch appear now.
        for i in range(2000, 2010):
            writer.submit(row(i))
        assert writer.flush(timeout=10)
        assert store.logs.count() == 2010


def test_a_failed_batch_keeps_its_good_rows_and_counts_the_bad(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Store.open(database_url) as store:
        store.logs.insert_many([row(0, id="log-taken")])
        writer = LogWriter(store, batch_size=100, interval_s=0.01)
        with caplog.at_level(logging.WARNING, logger="honed.logs"):
            writer.submit_many([row(1), row(2, id="log-taken"), row(3), row(4, id="log-twice")])
            writer.submit_many([row(5, id="log-twice"), row(6)])
            writer.close()
        assert writer.failed == 2 and writer.written == 4
        assert writer.last_error is not None and "log-twice" in writer.last_error
        kept = {r["inputs"]["i"] for r in store.logs.query()}
        assert kept == {0, 1, 3, 4, 6} or kept == {0, 1, 3, 5, 6}  # one of the two log-twice rows wins
        warnings = [r for r in caplog.records if r.name == "honed.logs"]
        assert warnings and all("could not be written" in r.getMessage() for r in warnings)
        assert all("\n" not in r.getMessage() for r in warnings)


def test_a_clean_interpreter_exit_writes_everything_queued(tmp_path: Path) -> None:
    code = f"""
import honed
from honed.config import init_workspace
init_workspace(__import__("pathlib").Path({str(tmp_path)!r}))
h = honed.connect({str(tmp_path)!r})
for i in range(5000):
    h.log(model="app/m", inputs={{"i": i}}, output="x")
# no close(), no flush(): the atexit hook must drain the queue
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=None)
    with Store.open(f"sqlite:///{tmp_path / '.honed' / 'honed.db'}") as store:
        assert store.logs.count() == 5000
