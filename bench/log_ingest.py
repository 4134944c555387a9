"""How fast generations are logged: `h.log(...)` through the background batch writer into the store.

For N realistic records (two chat messages, an output, params, tokens, latency, metadata) it times:

- honed h.log -> SQLite: a fresh workspace; `h.log(...)` per record (validation included), then
  `flush_logs()`; the rate counts until the last row is in the database. The caller-side rate (how fast
  `h.log` returns) is reported too: that is what the application feels.
- honed LogWriter -> SQLite: already-validated rows straight into `LogWriter.submit` (the writer alone).
- raw sqlite3 executemany (the floor): the same rows, JSON columns serialised, inserted with the standard
  library's `sqlite3` in 1,000-row transactions into the same table, same pragmas (WAL, synchronous=NORMAL).
- honed h.log -> PostgreSQL: as the first, against `--postgres-url`, or a throwaway server started from
  Debian's postgresql binaries with the tests' helper (skipped, saying why, if neither is possible).

Target (the issue): >= 10,000 logs/s through h.log into SQLite on a 2-core machine. It prints a table,
writes bench/results/log_ingest.json and exits non-zero when the target fails.

    .venv/bin/python bench/log_ingest.py [--logs 50000] [--postgres-url URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for tests.support.postgres (the throwaway server helper)

from honed.api import Honed  # noqa: E402
from honed.config import init_workspace, load_settings  # noqa: E402
from honed.logs.record import LogRecord  # noqa: E402
from honed.logs.writer import LogWriter  # noqa: E402
from honed.store import Store  # noqa: E402

RESULTS = HERE / "results" / "log_ingest.json"
TARGET_LOGS_PER_S = 10_000
JSON_COLUMNS = ("inputs", "messages", "params", "metadata")


def record(i: int) -> dict[str, Any]:
    return {
        "model": "openai/gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant for an online bookshop."},
            {"role": "user", "content": f"Do you have 'The Left Hand of Darkness' in paperback? (#{i})"},
        ],
        "output": "Yes, we have it in paperback; it ships within two days.",
        "params": {"temperature": 0.2, "max_tokens": 200},
        "input_tokens": 41,
        "output_tokens": 14,
        "latency_s": 0.42,
        "cost_usd": 0.000015,
        "session_id": f"s-{i // 10}",
        "metadata": {"user": f"u{i % 100}", "route": "/chat"},
    }


def via_log(h: Honed, n: int) -> dict[str, Any]:
    records = [record(i) for i in range(n)]
    h.log(**record(-1))  # warm up: the writer thread, the connection, the schema
    h.flush_logs()
    t0 = time.perf_counter()
    for r in records:
        h.log(**r)
    submitted = time.perf_counter() - t0
    h.flush_logs()
    total = time.perf_counter() - t0
    assert h.store.logs.count() == n + 1, "rows went missing"
    return {"logs": n, "wall_s": total, "logs_per_s": n / total, "caller_logs_per_s": n / submitted}


def via_writer(store: Store, rows: list[dict[str, Any]]) -> dict[str, Any]:
    writer = LogWriter(store)
    t0 = time.perf_counter()
    for row in rows:
        writer.submit(row)
    writer.close()
    total = time.perf_counter() - t0
    assert writer.failed == 0 and store.logs.count() == len(rows)
    return {"logs": len(rows), "wall_s": total, "logs_per_s": len(rows) / total}


def raw_sqlite(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = list(rows[0])
    sql = f"INSERT INTO logs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    t0 = time.perf_counter()
    for start in range(0, len(rows), 1000):
        batch = [
            tuple(
                json.dumps(r[c]) if c in JSON_COLUMNS else r[c].isoformat() if c == "created_at" else r[c]
                for c in columns
            )
            for r in rows[start : start + 1000]
        ]
        conn.execute("BEGIN")
        conn.executemany(sql, batch)
        conn.execute("COMMIT")
    total = time.perf_counter() - t0
    count = conn.execute("SELECT count(*) FROM logs").fetchone()[0]
    conn.close()
    assert count == len(rows)
    return {"logs": len(rows), "wall_s": total, "logs_per_s": len(rows) / total}


@contextmanager
def postgres(url: str | None) -> Iterator[tuple[str | None, str]]:
    """A PostgreSQL URL (given, or a throwaway server) and a note; (None, why) when there is none."""
    if url:
        yield url, "given"
        return
    import shutil

    from tests.support import postgres as pg

    bin_dir = pg.find_bin_dir()
    if bin_dir is None:
        yield None, "no PostgreSQL binaries (install Debian's postgresql package)"
        return
    root = Path(tempfile.mkdtemp(prefix="honed-bench-pg-", dir=pg._fast_tmp()))
    run_as = pg.SERVER_USER if os.geteuid() == 0 else None
    server = pg.Server(bin_dir, root, run_as)
    try:
        if run_as:
            import pwd

            entry = pwd.getpwnam(run_as)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server.init()
        server.start()
        server.admin("CREATE DATABASE honed_bench")
        yield server.url("honed_bench"), "throwaway server (fsync off, as in the tests)"
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logs", type=int, default=50_000)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    n = args.logs
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = init_workspace(Path(tmp) / "ws")
        with Honed(load_settings(start=root)) as h:
            results["honed h.log -> SQLite"] = via_log(h, n)
        rows = [LogRecord.model_validate(record(i)).row() for i in range(n)]
        with Store.open(f"sqlite:///{Path(tmp) / 'writer.db'}") as store:
            results["honed LogWriter -> SQLite"] = via_writer(store, rows)
        floor_db = Path(tmp) / "raw.db"
        Store.open(f"sqlite:///{floor_db}").close()  # the same schema, made by honed
        results["raw sqlite3 executemany"] = raw_sqlite(floor_db, rows)
    if not args.no_postgres:
        with postgres(args.postgres_url) as (url, note):
            if url is None:
                results["honed h.log -> PostgreSQL"] = {"skipped": note}
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    root = init_workspace(Path(tmp) / "ws")
                    with Honed(load_settings({"database_url": url}, start=root)) as h:
                        results["honed h.log -> PostgreSQL"] = {**via_log(h, n), "note": note}

    floor = results["raw sqlite3 executemany"]["logs_per_s"]
    rate = results["honed h.log -> SQLite"]["logs_per_s"]
    passed = rate >= TARGET_LOGS_PER_S
    print(f"{'mode':<28} {'logs':>7} {'wall s':>8} {'logs/s':>9} {'caller logs/s':>14} {'vs raw':>7}")
    for mode, r in results.items():
        if "skipped" in r:
            print(f"{mode:<28} skipped: {r['skipped']}")
            continue
        caller = f"{r['caller_logs_per_s']:,.0f}" if "caller_logs_per_s" in r else ""
        print(
            f"{mode:<28} {r['logs']:>7} {r['wall_s']:>8.2f} {r['logs_per_s']:>9,.0f} {caller:>14} "
            f"{r['logs_per_s'] / floor:>6.2f}x"
        )
    print(
        f"target: >= {TARGET_LOGS_PER_S:,} logs/s through h.log into SQLite: {'PASS' if passed else 'FAIL'}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "load_avg": os.getloadavg(),
                },
                "logs": n,
                "results": results,
                "ratio_honed_vs_raw_sqlite": rate / floor,
                "target_logs_per_s": TARGET_LOGS_PER_S,
                "passed": passed,
            },
            indent=2,
        )
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
