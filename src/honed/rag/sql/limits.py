"""What one query may cost: time, the size of one value, the bytes of the whole result.

A time limit only holds if nothing runs long without a chance to stop it. SQLite checks its progress
handler between steps of its program, never inside one function call, so the size of any one value is
capped (SQLite's length limit) and no built-in that the allowlist lets through may take more than linear
time in that size (see `honed.rag.sql.sqlite`). Rows are fetched in small batches and counted, so a result
of large values stops at `max_result_bytes` instead of filling memory before the row limit is reached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from honed.errors import RetrievalError

#: the most bytes of values one query may fetch, by default
MAX_RESULT_BYTES = 16_000_000
#: the longest text or blob SQLite may make or read (its SQLITE_LIMIT_LENGTH), by default
MAX_VALUE_BYTES = 2_000_000
#: the longest LIKE or GLOB pattern, in characters: matching costs up to text length x pattern length
MAX_PATTERN_CHARS = 100

Row = tuple[Any, ...]


def value_bytes(value: Any) -> int:
    """About how much memory a fetched value holds: its length for texts and bytes, 16 for the rest."""
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(value_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(value_bytes(k) + value_bytes(v) for k, v in value.items())
    return 16


def fetch_rows(fetch: Callable[[int], Sequence[Row]], limit: int, max_bytes: int, *, batch: int) -> list[Row]:
    """Up to `limit` rows from `fetch(n)` (a cursor's fetchmany), `batch` at a time; RetrievalError as soon
    as their values pass `max_bytes` in all."""
    rows: list[Row] = []
    used = 0
    while len(rows) < limit:
        got = fetch(min(batch, limit - len(rows)))
        if not got:
            break
        for row in got:
            used += sum(value_bytes(v) for v in row)
            if used > max_bytes:
                raise RetrievalError(
                    f"the result passed the limit of {max_bytes:,} bytes at row {len(rows) + 1}",
                    hint="select fewer or shorter columns (substr(text, 1, 500)) or fewer rows",
                )
            rows.append(tuple(row))
    return rows


def timed_out(timeout_s: float) -> RetrievalError:
    return RetrievalError(
        f"the query ran past the time limit of {timeout_s:g} s and was stopped",
        hint="narrow it (filter, aggregate, LIMIT) or raise timeout_s",
    )
