"""`SqlSource`: one read-only SQL database, SQLite or PostgreSQL, that runs one checked SELECT at a time."""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from honed.closing import Closing
from honed.config import mask_url
from honed.errors import InvalidInputError, RetrievalError
from honed.rag.sql import lexer
from honed.rag.sql.check import check_select, is_allowed, placeholders
from honed.rag.sql.lexer import Dialect
from honed.rag.sql.limits import MAX_RESULT_BYTES, MAX_VALUE_BYTES, Row
from honed.rag.sql.postgres import PostgresBackend
from honed.rag.sql.results import SqlResult
from honed.rag.sql.sqlite import SqliteBackend


class _Backend(Protocol):
    @property
    def closed(self) -> bool: ...

    def run(
        self, sql: str, params: Mapping[str, Any] | None, limit: int, max_bytes: int
    ) -> tuple[list[str], list[Row]]: ...

    def schema(self) -> list[tuple[str, list[tuple[str, str]]]]: ...

    def close(self) -> None: ...


class SqlSource(Closing):
    """A read-only connection to a SQLite file (`sqlite:///path`) or a PostgreSQL database
    (`postgresql://user:pass@host/db`, psycopg 3). Safe to share between threads (queries take turns).

    Each query runs within `timeout_s` and returns at most `row_limit` rows and `max_result_bytes` of
    values. A PostgreSQL role that is a superuser or may read server files, run programs or signal other
    sessions is refused."""

    def __init__(
        self,
        url: str,
        *,
        row_limit: int = 100,
        timeout_s: float = 5.0,
        tables: Sequence[str] | None = None,
        max_result_bytes: int = MAX_RESULT_BYTES,
    ) -> None:
        if row_limit < 1:
            raise InvalidInputError(f"row_limit {row_limit} must be positive", hint="use 1 or more")
        if not timeout_s > 0:
            raise InvalidInputError(f"timeout_s {timeout_s} must be positive", hint="use e.g. 5")
        if max_result_bytes < 1:
            raise InvalidInputError(
                f"max_result_bytes {max_result_bytes} must be positive", hint="use e.g. 16_000_000"
            )
        self.url = url
        self.row_limit = row_limit
        self.timeout_s = timeout_s
        self.max_result_bytes = max_result_bytes
        self.tables = frozenset(t.lower() for t in tables) if tables is not None else None
        self._lock = threading.Lock()
        password = urllib.parse.urlsplit(url).password if "://" in url else None
        # Only a password long enough not to match ordinary text is searched for in drivers' messages.
        self._secrets = (
            {password, urllib.parse.unquote(password)} if password and len(password) >= 4 else set()
        )
        self._backend: _Backend | None = None
        scheme = url.split("://", 1)[0].lower().split("+")[0] if "://" in url else ""
        if scheme == "sqlite":
            self.dialect: Dialect = "sqlite"
            self._backend = SqliteBackend(
                Path(url.split("://", 1)[1][1:]),  # sqlite:///rel.db, sqlite:////abs.db
                timeout_s=timeout_s,
                tables=self.tables,
                max_value_bytes=MAX_VALUE_BYTES,
                scrub=self._scrub,
            )
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
            self._backend = PostgresBackend(
                "postgresql://" + url.split("://", 1)[1],
                self._scrub(url),
                timeout_s=timeout_s,
                scrub=self._scrub,
            )
        else:
            raise InvalidInputError(
                f"unsupported SQL source URL {self._scrub(url)!r}",
                hint="use sqlite:///path/to/file.db or postgresql://user:password@host/database",
            )

    def __repr__(self) -> str:
        return f"SqlSource({self._scrub(self.url)!r})"

    def _scrub(self, text: str) -> str:
        """`text` with the password masked (inside a URL, and anywhere a driver might have echoed it)."""
        text = mask_url(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return " ".join(text.split())

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._backend is not None:
                self._backend.close()

    def _open_backend(self) -> _Backend:
        if self._backend is None or self._backend.closed:
            raise RetrievalError(
                f"the SQL source {self._scrub(self.url)} is closed", hint="open a new SqlSource"
            )
        return self._backend

    # -- queries ------------------------------------------------------------------------------------------

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> SqlResult:
        """Run one read-only SELECT, with `:name` placeholders bound from `params` when given (the same
        spelling on both databases). Raises InvalidInputError for anything but one SELECT, RetrievalError
        when the database fails it (a wrong column, the time limit), each on one line with a hint."""
        tokens = check_select(sql, self.dialect, self.tables)
        return self._run(sql[: tokens[-1].end], params)

    def _run(self, sql: str, params: Mapping[str, Any] | None = None) -> SqlResult:
        """Run `sql` on the read-only connection without the text check (the lower layer, kept separate so
        that tests can show it holds on its own)."""
        sql = re.sub(r"[\s;]+$", "", sql)
        bound: dict[str, Any] | None = None
        if params is not None:
            sql, bound = self._bind(sql, params)
        with self._lock:
            backend = self._open_backend()
            started = time.perf_counter()
            columns, rows = backend.run(sql, bound, self.row_limit + 1, self.max_result_bytes)
            seconds = time.perf_counter() - started
        truncated = len(rows) > self.row_limit
        return SqlResult(columns, rows[: self.row_limit], truncated, seconds)

    def _bind(self, sql: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """`sql` in the driver's placeholder style, and the values it names. SQLite reads `:name` itself;
        psycopg wants `%(name)s`, and then every other `%` doubled."""
        names = placeholders(lexer.tokens(sql, self.dialect))
        missing = sorted({sql[n.start : n.end] for n in names} - set(params))
        if missing:
            raise InvalidInputError(
                f"the query needs a value for {', '.join(':' + m for m in missing)}",
                hint=f"pass it in params (given: {', '.join(sorted(params)) or 'none'})",
            )
        values = {sql[n.start : n.end]: params[sql[n.start : n.end]] for n in names}
        if self.dialect == "sqlite":
            return sql, values
        out, pos = [], 0
        for n in names:
            out += [sql[pos : n.start - 1].replace("%", "%%"), f"%({sql[n.start : n.end]})s"]
            pos = n.end
        out.append(sql[pos:].replace("%", "%%"))
        return "".join(out), values

    # -- schema -------------------------------------------------------------------------------------------

    def schema(self) -> str:
        """One line per table or view: `name(column type, ...)`, limited to the allowlist when there is
        one. Meant for the model's prompt."""
        with self._lock:
            listed = self._open_backend().schema()
        lines = [
            f"{name}({', '.join(f'{col} {typ}'.strip() for col, typ in cols)})"
            for name, cols in listed
            if self.tables is None or is_allowed(name.lower(), self.tables)
        ]
        return "\n".join(lines) if lines else "(no tables)"
