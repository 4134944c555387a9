"""What a query gives back: `SqlResult` (rows, cut to the row limit), and the record of a tool loop
(`SqlCall`, `SqlAnswer`); `rows_as_context` and `SqlResult.to_dict` turn rows into what a model reads.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from honed.models.types import Completion

_CELL_CHARS = 2_000  # a longer text in a cell is cut when rows go to the model


@dataclass(frozen=True, slots=True)
class SqlResult:
    """The rows of one query: at most the source's `row_limit`; `truncated` when there were more."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the model: dates as ISO text, decimals as numbers, bytes as their length, texts
        longer than 2,000 characters cut."""
        return {
            "columns": list(self.columns),
            "rows": [[jsonable(v) for v in row] for row in self.rows],
            "truncated": self.truncated,
        }


@dataclass(frozen=True, slots=True)
class SqlCall:
    """One query the model asked for: its result, or the one-line error it was sent back."""

    sql: str
    result: SqlResult | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SqlAnswer:
    """The model's final text, every query it ran on the way, and every completion (for cost/latency)."""

    answer: str
    queries: list[SqlCall] = field(default_factory=list)
    completions: list[Completion] = field(default_factory=list)


def jsonable(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _CELL_CHARS:
        return f"{value[:_CELL_CHARS]}... ({len(value)} characters in all)"
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, uuid.UUID | datetime.timedelta):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def rows_as_context(result: SqlResult) -> str:
    """The rows as a compact markdown table, to put into a prompt (NULL for missing values)."""
    if not result.columns:
        return "(no columns)"

    def cell(value: Any) -> str:
        if value is None:
            return "NULL"
        shown = jsonable(value)
        text = shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False)
        return " ".join(text.split()).replace("|", "\\|")

    lines = [
        "| " + " | ".join(cell(c) for c in result.columns) + " |",
        "|" + "---|" * len(result.columns),
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in result.rows]
    if not result.rows:
        lines.append("(no rows)")
    if result.truncated:
        lines.append(f"(only the first {len(result.rows)} rows; there were more)")
    return "\n".join(lines)


# -- the text check ---------------------------------------------------------------------------------------
