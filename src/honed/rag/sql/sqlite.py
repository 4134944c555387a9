"""The SQLite side of `SqlSource`: a read-only connection whose authorizer decides what a statement may do.

The file opens with `mode=ro` and `PRAGMA query_only`; the authorizer, asked by SQLite about every table a
statement reads and every function it calls (in views too), allows reading the allowed tables and calling
the functions in `SQLITE_FUNCTIONS`, and nothing else. Defensive mode is turned on where Python offers it
(3.12+).

The time limit is a progress handler, which SQLite only calls between steps of its program: one function
call runs to its end. So a value is capped at `max_value_bytes` (SQLite's length limit, which also caps
randomblob and zeroblob), LIKE/GLOB patterns at `MAX_PATTERN_CHARS`, and the built-ins whose running time
grows with the product of their arguments' sizes (instr, replace, two-argument trims: 2 MB each way is
minutes) are replaced on this connection by linear ones with the same results.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from honed.errors import HonedError, InvalidInputError, RetrievalError
from honed.rag.sql.check import is_allowed
from honed.rag.sql.functions import SQLITE_FUNCTIONS
from honed.rag.sql.limits import MAX_PATTERN_CHARS, Row, fetch_rows, timed_out

#: SQLite's table-valued functions that read only their arguments (not other tables)
_TABLE_FUNCTIONS = frozenset({"json_each", "json_tree"})
# The most work (bytes x bytes) a quadratic built-in may be handed where no linear version applies (mixed
# types): about a tenth of a second.
_PAIRWISE_WORK = 10**9


class SqliteBackend:
    """One read-only SQLite connection; callers take turns (SqlSource holds the lock)."""

    def __init__(
        self,
        path: Path,
        *,
        timeout_s: float,
        tables: frozenset[str] | None,
        max_value_bytes: int,
        scrub: Callable[[str], str],
    ) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.tables = tables
        self.max_value_bytes = max_value_bytes
        self._scrub = scrub
        self._deadline = 0.0
        self._denied: str | None = None
        self._selecting = False  # the statement being prepared is a SELECT (see _authorize)
        self._authorized = False  # the authorizer has been asked about this statement before
        self._text = _LinearText(max_value_bytes)
        self._conn: sqlite3.Connection | None = self._open()

    def _open(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise RetrievalError(
                f"no SQLite database at {self.path}",
                hint="check the path in the URL; a read-only source never creates a database",
            )
        uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
        try:
            # No statement cache: a statement prepared without the authorizer must never be reused.
            conn = sqlite3.connect(
                uri, uri=True, timeout=self.timeout_s, check_same_thread=False, cached_statements=0
            )
            conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            raise RetrievalError(
                f"cannot open SQLite database {self.path}: {exc}", hint="is it a SQLite file you may read?"
            ) from exc
        setconfig = getattr(conn, "setconfig", None)  # Python 3.12+
        defensive = getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)
        if setconfig is not None and defensive is not None:
            setconfig(defensive, True)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, self.max_value_bytes)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, MAX_PATTERN_CHARS)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        self._text.install(conn)
        conn.set_progress_handler(self._past_deadline, 1000)
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._text.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    # -- queries ------------------------------------------------------------------------------------------

    def run(
        self, sql: str, params: Mapping[str, Any] | None, limit: int, max_bytes: int
    ) -> tuple[list[str], list[Row]]:
        """The columns and at most `limit` rows of `sql`; the caller has checked that the source is open."""
        conn = self._conn
        assert conn is not None
        self._denied = self._text.refused = None
        self._selecting = self._authorized = False
        conn.set_authorizer(self._authorize)
        self._deadline = time.monotonic() + self.timeout_s
        cur: sqlite3.Cursor | None = None
        try:
            cur = conn.execute(sql, params or {})
            columns = [d[0] for d in cur.description or ()]
            # One row at a time: a row's values are at most max_value_bytes each.
            return columns, fetch_rows(cur.fetchmany, limit, max_bytes, batch=1)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        finally:
            if cur is not None:
                cur.close()
            self._deadline = 0.0
            conn.set_authorizer(None)
            if conn.in_transaction:
                conn.rollback()

    def _past_deadline(self) -> int:
        return 1 if self._deadline and time.monotonic() > self._deadline else 0

    def _authorize(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, inner: str | None
    ) -> int:
        first, self._authorized = not self._authorized, True
        if action == sqlite3.SQLITE_SELECT:
            self._selecting = self._selecting or first  # a SELECT statement, not a subquery of another
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_RECURSIVE:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION:
            if (arg2 or "").lower() in SQLITE_FUNCTIONS:
                return sqlite3.SQLITE_OK
            self._denied = f"the function {arg2}() is not allowed"
            return sqlite3.SQLITE_DENY
        table = (arg1 or "").lower()
        schema_table = table in ("sqlite_master", "sqlite_temp_master")
        # Preparing a SELECT that uses a table-valued function (json_each) reports the function's
        # in-memory registration as an UPDATE and a rowid READ of the schema table; a SELECT cannot
        # otherwise update anything in SQLite, and query_only/mode=ro would refuse it anyway.
        if action == sqlite3.SQLITE_UPDATE and schema_table and self._selecting:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            # A view's own reads come with the view's name as `inner`: allowing a view allows what it reads.
            if (
                self.tables is None
                or is_allowed(table, self.tables)
                or (inner and inner.lower() in self.tables)
                or table in _TABLE_FUNCTIONS
                or (schema_table and arg2 == "ROWID")
            ):
                return sqlite3.SQLITE_OK
            self._denied = f"the query reads table {table!r}, which is not allowed"
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA:
            if table == "data_version" and arg2 is None:
                return sqlite3.SQLITE_OK  # FTS5 reads it to know whether its cache is current
            self._denied = "PRAGMA is not allowed (nor pragma_* table functions)"
            return sqlite3.SQLITE_DENY
        self._denied = "the statement does more than read (only SELECT is allowed)"
        return sqlite3.SQLITE_DENY

    def _error(self, exc: sqlite3.Error) -> HonedError:
        text = self._scrub(str(exc))
        if "interrupted" in text:
            return timed_out(self.timeout_s)
        if self._text.refused is not None:
            return RetrievalError(self._text.refused, hint="pass shorter values, or filter rows first")
        if "too big" in text:
            return RetrievalError(
                f"a value the query reads or makes is over the limit of {self.max_value_bytes:,} bytes",
                hint="work on parts of it (substr, length) or select fewer values",
            )
        if "pattern too complex" in text:
            return InvalidInputError(
                f"a LIKE or GLOB pattern is longer than {MAX_PATTERN_CHARS} characters",
                hint="search for a shorter phrase",
            )
        if self._denied is not None or "not authorized" in text:
            return InvalidInputError(
                f"the database refused the statement: {self._denied or text}",
                hint="this source is read-only: send one SELECT on the allowed tables, using only "
                "built-in functions that compute a value",
            )
        if isinstance(exc, sqlite3.ProgrammingError) and "one statement" in text:
            return InvalidInputError("only one SQL statement is allowed", hint="send a single SELECT")
        if "readonly" in text or "read-only" in text or "may not be modified" in text:
            return InvalidInputError(
                f"the database refused to write: {text}", hint="this source is read-only: send a SELECT"
            )
        return RetrievalError(
            f"the query failed: {text}", hint="check table and column names against the schema"
        )

    # -- schema -------------------------------------------------------------------------------------------

    def schema(self) -> list[tuple[str, list[tuple[str, str]]]]:
        conn = self._conn
        assert conn is not None
        try:
            names = conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            ).fetchall()
            out = []
            for (name,) in names:
                info = conn.execute("SELECT name, type, pk FROM pragma_table_info(?)", (name,)).fetchall()
                out.append((name, [(c, f"{t}{' primary key' if pk else ''}") for c, t, pk in info]))
            return out
        except sqlite3.Error as exc:
            raise RetrievalError(f"cannot read the schema: {self._scrub(str(exc))}") from exc


class _LinearText:
    """instr, replace and the two-argument trim, ltrim and rtrim, computed by Python in linear time.

    SQLite's own compare at every position (instr, replace) or against every character of the set (trim),
    so with 2 MB arguments one call runs for minutes where no time limit can stop it. For texts (and blobs,
    for instr) Python's string search gives the same answer; other types go to the built-in on a separate
    connection, after a check that the work is small. `refused` says why a call was refused."""

    def __init__(self, max_value_bytes: int) -> None:
        self.max_value_bytes = max_value_bytes
        self.refused: str | None = None
        self._builtin = sqlite3.connect(":memory:", check_same_thread=False)
        self._builtin.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_value_bytes)

    def install(self, conn: sqlite3.Connection) -> None:
        conn.create_function("instr", 2, self.instr, deterministic=True)
        conn.create_function("replace", 3, self.replace, deterministic=True)
        for name, strip in (("trim", str.strip), ("ltrim", str.lstrip), ("rtrim", str.rstrip)):
            conn.create_function(name, 2, self._trim(name, strip), deterministic=True)

    def close(self) -> None:
        self._builtin.close()

    def instr(self, haystack: Any, needle: Any) -> Any:
        # 1-based; 0 when absent; 1 for an empty needle, as SQLite
        if isinstance(haystack, str) and isinstance(needle, str):
            return haystack.find(needle) + 1
        if isinstance(haystack, bytes) and isinstance(needle, bytes):
            return haystack.find(needle) + 1
        return self._builtin_call("instr", haystack, needle)

    def replace(self, text: Any, old: Any, new: Any) -> Any:
        if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)) or old[:1] in (
            "",
            "\0",
        ):
            return self._builtin_call("replace", text, old, new)
        grows = text.count(old) * (len(new.encode()) - len(old.encode()))
        if len(text.encode()) + grows > self.max_value_bytes:
            raise self._refuse(
                f"replace() would make a text longer than the limit of {self.max_value_bytes:,} bytes"
            )
        return text.replace(old, new)

    def _trim(self, name: str, strip: Callable[[str, str], str]) -> Callable[[Any, Any], Any]:
        def trim(text: Any, chars: Any) -> Any:
            if not (isinstance(text, str) and isinstance(chars, str)):
                return self._builtin_call(name, text, chars)
            unique = "".join(dict.fromkeys(chars))
            if len(unique) <= 64:
                return strip(text, unique)
            # Many characters: str.strip would scan them all for each character of the text.
            keep, start, end = frozenset(unique), 0, len(text)
            if name != "rtrim":
                while start < end and text[start] in keep:
                    start += 1
            if name != "ltrim":
                while end > start and text[end - 1] in keep:
                    end -= 1
            return text[start:end]

        return trim

    def _builtin_call(self, name: str, *args: Any) -> Any:
        sizes = sorted(len(a) if isinstance(a, (str, bytes)) else len(str(a)) for a in args)
        if sizes[-1] * sizes[-2] > _PAIRWISE_WORK:
            raise self._refuse(
                f"{name}() on values of {sizes[-1]:,} and {sizes[-2]:,} bytes could run past the time limit"
            )
        marks = ", ".join("?" * len(args))
        return self._builtin.execute(f"SELECT {name}({marks})", args).fetchone()[0]

    def _refuse(self, why: str) -> ValueError:
        self.refused = f"the query was refused: {why}"
        return ValueError(self.refused)
