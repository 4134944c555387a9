"""Structured retrieval: a read-only SQL database the model queries through a tool.

A `SqlSource` runs one SELECT at a time against SQLite or PostgreSQL and hands back at most `row_limit`
rows. Letting a model write SQL is only safe if the database cannot be changed whatever it writes, so
safety comes in layers, and the innermost one is the guarantee:

1. the connection is read-only: SQLite opens the file with `mode=ro` and `PRAGMA query_only`, plus an
   authorizer that allows nothing but reading (and only the allowed tables); PostgreSQL sets
   `default_transaction_read_only` on the session and runs every query in a READ ONLY transaction (a
   server-side cursor, which accepts only SELECT/VALUES) that is always rolled back, so even a session
   setting the query changed is undone;
2. a tokenizer-level check of the text (comments and literals stripped): one statement, starting with
   SELECT or WITH, with no data-modifying keyword (INSERT, DELETE, INTO, ...) and none of a few functions
   with side effects. It gives the model a clear error early; it is not what keeps the data safe;
3. a time limit (PostgreSQL `statement_timeout`; SQLite a progress handler that interrupts) and a row
   limit (at most `row_limit + 1` rows are fetched, so a huge result is never read whole).

The `tables` allowlist is best effort: SQLite enforces it through the authorizer, PostgreSQL only through
the text check (tables named after FROM/JOIN), which a view or a function can get around. For a hard
guarantee on PostgreSQL, connect as a role that may SELECT only what the model may see.

`answer_with_sql` is the tool loop: the question goes to the model with `sql_tool`; each tool call is run
and its rows (or its error, so the model can fix its query) go back as a `tool` message, until the model
answers in text.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import json
import math
import re
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from honed.config import mask_url
from honed.errors import HonedError, InvalidInputError, ModelError, RetrievalError
from honed.models.types import ChatRequest, Completion, Message

if TYPE_CHECKING:
    import psycopg

    from honed.models.client import ModelClient

__all__ = [
    "SqlAnswer",
    "SqlCall",
    "SqlResult",
    "SqlSource",
    "answer_with_sql",
    "answer_with_sql_sync",
    "rows_as_context",
    "sql_tool",
]

Dialect = Literal["sqlite", "postgresql"]

#: keywords that never belong in a read-only query (a data-modifying CTE, SELECT INTO, ...)
_FORBIDDEN_WORDS = frozenset(
    "INSERT UPDATE DELETE MERGE UPSERT ALTER DROP CREATE ATTACH DETACH PRAGMA COPY GRANT "  # noqa: SIM905
    "REVOKE VACUUM TRUNCATE REINDEX INTO CALL EXECUTE PREPARE DEALLOCATE LISTEN NOTIFY "
    "REFRESH CLUSTER".split()
)
#: functions with side effects outside the transaction (settings, files, other sessions, extensions)
_FORBIDDEN_FUNCTIONS = frozenset(
    "set_config pg_terminate_backend pg_cancel_backend pg_reload_conf pg_rotate_logfile "  # noqa: SIM905
    "pg_read_file pg_read_binary_file pg_ls_dir pg_stat_file lo_import lo_export "
    "lo_unlink dblink dblink_exec pg_advisory_lock pg_advisory_xact_lock pg_switch_wal "
    "pg_promote load_extension readfile writefile".split()
)
# Where FROM is part of a function's arguments (EXTRACT(year FROM d)), not a list of tables.
_FROM_FUNCTIONS = frozenset({"EXTRACT", "SUBSTRING", "TRIM", "OVERLAY", "POSITION"})
# Words that end a table reference in a FROM list (so they are not taken for an alias).
_CLAUSE_WORDS = frozenset(
    "WHERE JOIN INNER LEFT RIGHT FULL CROSS NATURAL OUTER ON USING GROUP ORDER LIMIT "  # noqa: SIM905
    "OFFSET HAVING WINDOW UNION INTERSECT EXCEPT FETCH FOR RETURNING TABLESAMPLE LATERAL "
    "ONLY".split()
)
#: SQLite's table-valued functions that read only their arguments (not other tables)
_TABLE_FUNCTIONS = frozenset({"json_each", "json_tree"})
_CELL_CHARS = 2_000  # a longer text in a cell is cut when rows go to the model
_SCHEMA_CHARS = 12_000  # a tool description longer than this costs more prompt than it helps


# -- results ----------------------------------------------------------------------------------------------


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
            "rows": [[_jsonable(v) for v in row] for row in self.rows],
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


def _jsonable(value: Any) -> Any:
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
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def rows_as_context(result: SqlResult) -> str:
    """The rows as a compact markdown table, to put into a prompt (NULL for missing values)."""
    if not result.columns:
        return "(no columns)"

    def cell(value: Any) -> str:
        if value is None:
            return "NULL"
        shown = _jsonable(value)
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


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["word", "ident", "string", "number", "punct"]
    text: str  # words upper-cased; quoted identifiers without their quotes
    start: int = field(default=0, compare=False)  # where it is in the text: sql[start:end]
    end: int = field(default=0, compare=False)


def _tokens(sql: str, dialect: Dialect) -> list[_Token]:
    """SQL split into tokens the way the database reads it, comments dropped. An unterminated string,
    identifier or comment is an error: what the database would make of it is not worth guessing."""
    out: list[_Token] = []
    i, n = 0, len(sql)

    def unterminated(what: str) -> InvalidInputError:
        return InvalidInputError(f"the SQL has an unterminated {what}", hint="close it, or remove it")

    def is_word_char(ch: str) -> bool:
        return ch.isalnum() or ch in "_$"

    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            # PostgreSQL nests block comments; SQLite ends one at the first */.
            depth, i = 1, i + 2
            while depth:
                if i >= n:
                    raise unterminated("comment")
                if sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                elif dialect == "postgresql" and sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                else:
                    i += 1
        elif ch == "'":
            # E'...' strings (PostgreSQL) take backslash escapes; every other string only ''.
            backslash = bool(
                dialect == "postgresql"
                and out
                and out[-1].kind == "word"
                and out[-1].text == "E"
                and i > 0
                and sql[i - 1] in "eE"
            )
            j = i + 1
            while True:
                if j >= n:
                    raise unterminated("string")
                if backslash and sql[j] == "\\":
                    j += 2
                elif sql[j] == "'":
                    if sql.startswith("''", j):
                        j += 2
                    else:
                        break
                else:
                    j += 1
            if backslash:
                out.pop()  # the E belongs to the string
            out.append(_Token("string", sql[i + 1 : j], i, j + 1))
            i = j + 1
        elif ch == '"' or (dialect == "sqlite" and ch in "`["):
            close = {"[": "]"}.get(ch, ch)
            j = i + 1
            while True:
                end = sql.find(close, j)
                if end < 0:
                    raise unterminated("quoted identifier")
                if close != "]" and sql.startswith(close * 2, end):
                    j = end + 2
                    continue
                break
            out.append(_Token("ident", sql[i + 1 : end].replace(close * 2, close), i, end + 1))
            i = end + 1
        elif ch == "$" and dialect == "postgresql" and not (i > 0 and is_word_char(sql[i - 1])):
            tag = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if tag is None:  # $1: a parameter
                j = i + 1
                while j < n and sql[j].isdigit():
                    j += 1
                out.append(_Token("punct", sql[i:j], i, j))
                i = j
                continue
            end = sql.find(tag.group(0), i + len(tag.group(0)))
            if end < 0:
                raise unterminated("dollar-quoted string")
            out.append(_Token("string", sql[i + len(tag.group(0)) : end], i, end + len(tag.group(0))))
            i = end + len(tag.group(0))
        elif ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isdigit()):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] in "._"):
                j += 1
            out.append(_Token("number", sql[i:j], i, j))
            i = j
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and is_word_char(sql[j]):
                j += 1
            out.append(_Token("word", sql[i:j].upper(), i, j))
            i = j
        else:
            out.append(_Token("punct", ch, i, i + 1))
            i += 1
    return out


def _check_select(sql: str, dialect: Dialect, tables: frozenset[str] | None = None) -> list[_Token]:
    """Raise InvalidInputError unless `sql` is one read-only SELECT (or WITH ... SELECT) that names only
    `tables` (lower-case; "schema.table" or "table") after FROM and JOIN, when given. Best effort: the
    read-only connection is the guarantee; this is the early, readable refusal. Returns the tokens, the
    trailing semicolons dropped."""
    tokens = _tokens(sql, dialect)
    while _at(tokens, len(tokens) - 1, ";"):
        tokens.pop()
    if not tokens:
        raise InvalidInputError("the SQL is empty", hint="send one SELECT statement")
    if any(t.kind == "punct" and t.text == ";" for t in tokens):
        raise InvalidInputError(
            "only one SQL statement is allowed", hint="send a single SELECT, with no ';' between statements"
        )
    first = next((t for t in tokens if not (t.kind == "punct" and t.text == "(")), tokens[0])
    if not (first.kind == "word" and first.text in ("SELECT", "WITH")):
        raise InvalidInputError(
            f"only SELECT queries are allowed, not {first.text[:30]!r}",
            hint="this database is read-only: write one SELECT (or WITH ... SELECT)",
        )
    for k, t in enumerate(tokens):
        if t.kind != "word":
            continue
        if t.text in _FORBIDDEN_WORDS:
            raise InvalidInputError(
                f"{t.text} is not allowed in a read-only query",
                hint='only read with SELECT; quote a column named like a keyword ("update")',
            )
        if t.text.lower() in _FORBIDDEN_FUNCTIONS and _at(tokens, k + 1, "("):
            raise InvalidInputError(
                f"the function {t.text.lower()}() is not allowed in a read-only query",
                hint="it has effects outside the query; leave it out",
            )
    if tables is not None:
        _check_tables(tokens, tables)
    return tokens


def _placeholders(tokens: list[_Token]) -> list[_Token]:
    """The `:name` parameters (a ':' touching a word; not a PostgreSQL cast `x::type`), as the name
    tokens whose `start - 1` is the colon."""
    found = []
    for k in range(len(tokens) - 1):
        colon, name = tokens[k], tokens[k + 1]
        if not (_at(tokens, k, ":") and name.kind == "word" and name.start == colon.end):
            continue
        if _at(tokens, k - 1, ":") and tokens[k - 1].end == colon.start:
            continue
        found.append(name)
    return found


def _at(tokens: list[_Token], k: int, *texts: str, kind: str = "punct") -> bool:
    """Whether token `k` exists and is one of `texts` of that kind (words are upper-case)."""
    return 0 <= k < len(tokens) and tokens[k].kind == kind and tokens[k].text in texts


def _name_at(tokens: list[_Token], k: int) -> tuple[str, int] | None:
    """A possibly qualified name (schema.table) starting at `k`, lower-cased, and the index after it."""
    parts: list[str] = []
    while k < len(tokens) and tokens[k].kind in ("word", "ident"):
        parts.append(tokens[k].text.lower())
        if _at(tokens, k + 1, ".") and k + 2 < len(tokens) and tokens[k + 2].kind in ("word", "ident"):
            k += 2
            continue
        k += 1
        break
    return (".".join(parts), k) if parts else None


def _cte_names(tokens: list[_Token]) -> set[str]:
    """The names WITH defines (`name AS (`, `name(cols) AS (`), which FROM may then name freely."""
    names: set[str] = set()
    for k in range(len(tokens)):
        if not _at(tokens, k, "AS", kind="word"):
            continue
        after = k + 1
        while _at(tokens, after, "NOT", "MATERIALIZED", kind="word"):
            after += 1
        if not _at(tokens, after, "("):
            continue
        j = k - 1
        if _at(tokens, j, ")"):  # name(col, ...) AS (
            depth = 0
            while j >= 0:
                depth += {")": 1, "(": -1}.get(tokens[j].text, 0) if tokens[j].kind == "punct" else 0
                if depth == 0:
                    break
                j -= 1
            j -= 1
        before_ok = _at(tokens, j - 1, "WITH", "RECURSIVE", kind="word") or _at(tokens, j - 1, ",")
        if j >= 1 and tokens[j].kind in ("word", "ident") and before_ok:
            names.add(tokens[j].text.lower())
    return names


def _check_tables(tokens: list[_Token], allowed: frozenset[str]) -> None:
    """Refuse a table after FROM or JOIN that is neither allowed nor a CTE. A subquery in FROM is skipped
    here and checked when the scan reaches its own FROM."""
    ctes = _cte_names(tokens)
    parens: list[str] = []  # for each open parenthesis, the word before it
    for k in range(len(tokens)):
        if _at(tokens, k, "("):
            parens.append(tokens[k - 1].text if k and tokens[k - 1].kind == "word" else "")
        elif _at(tokens, k, ")"):
            if parens:
                parens.pop()
        elif _at(tokens, k, "FROM", "JOIN", kind="word"):
            if (parens and parens[-1] in _FROM_FUNCTIONS) or _at(tokens, k - 1, "DISTINCT", kind="word"):
                continue  # EXTRACT(year FROM d), a IS DISTINCT FROM b
            j = k + 1
            while j < len(tokens):
                while _at(tokens, j, "ONLY", "LATERAL", kind="word"):
                    j += 1
                found = _name_at(tokens, j)
                if found is None:
                    break
                name, j = found
                if _at(tokens, j, "("):
                    break  # a table function such as generate_series(...)
                if name not in ctes and not _allowed(name, allowed):
                    raise InvalidInputError(
                        f"the query reads table {name!r}, which is not allowed",
                        hint=f"use only {', '.join(sorted(allowed)) or '(none)'}",
                    )
                if _at(tokens, j, "AS", kind="word"):
                    j += 1
                if j < len(tokens) and (
                    tokens[j].kind == "ident"
                    or (tokens[j].kind == "word" and tokens[j].text not in _CLAUSE_WORDS)
                ):
                    j += 1  # an alias
                if not _at(tokens, j, ","):
                    break
                j += 1


def _allowed(name: str, allowed: frozenset[str]) -> bool:
    """`table` in the allowlist matches it in any schema; `schema.table` matches that or a bare `table`."""
    bare = name.rsplit(".", 1)[-1]
    return name in allowed or bare in allowed or any(a.rsplit(".", 1)[-1] == name for a in allowed)


# -- the source -------------------------------------------------------------------------------------------


class SqlSource:
    """A read-only connection to a SQLite file (`sqlite:///path`) or a PostgreSQL database
    (`postgresql://user:pass@host/db`, psycopg 3). Safe to share between threads (queries take turns)."""

    def __init__(
        self,
        url: str,
        *,
        row_limit: int = 100,
        timeout_s: float = 5.0,
        tables: Sequence[str] | None = None,
    ) -> None:
        if row_limit < 1:
            raise InvalidInputError(f"row_limit {row_limit} must be positive", hint="use 1 or more")
        if not timeout_s > 0:
            raise InvalidInputError(f"timeout_s {timeout_s} must be positive", hint="use e.g. 5")
        self.url = url
        self.row_limit = row_limit
        self.timeout_s = timeout_s
        self.tables = frozenset(t.lower() for t in tables) if tables is not None else None
        self._lock = threading.Lock()
        password = urllib.parse.urlsplit(url).password if "://" in url else None
        # Only a password long enough not to match ordinary text is searched for in drivers' messages.
        self._secrets = (
            {password, urllib.parse.unquote(password)} if password and len(password) >= 4 else set()
        )
        self._sqlite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[Any] | None = None
        self._deadline = 0.0
        self._denied: str | None = None
        self._selecting = False  # the statement being prepared is a SELECT (see _authorize)
        self._authorized = False  # the authorizer has been asked about this statement before
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme.split("+")[0] == "sqlite":
            self.dialect: Dialect = "sqlite"
            self._path = Path(url.split("://", 1)[1][1:])  # sqlite:///rel.db, sqlite:////abs.db
            self._sqlite = self._open_sqlite()
        elif scheme.split("+")[0] in ("postgresql", "postgres"):
            self.dialect = "postgresql"
            self._conninfo = "postgresql://" + url.split("://", 1)[1]
            self._pg = self._open_pg()
        else:
            raise InvalidInputError(
                f"unsupported SQL source URL {self._scrub(url)!r}",
                hint="use sqlite:///path/to/file.db or postgresql://user:password@host/database",
            )

    def __repr__(self) -> str:
        return f"SqlSource({self._scrub(self.url)!r})"

    def __enter__(self) -> SqlSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _scrub(self, text: str) -> str:
        """`text` with the password masked (inside a URL, and anywhere a driver might have echoed it)."""
        text = mask_url(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return " ".join(text.split())

    # -- connections --------------------------------------------------------------------------------------

    def _open_sqlite(self) -> sqlite3.Connection:
        if not self._path.is_file():
            raise RetrievalError(
                f"no SQLite database at {self._path}",
                hint="check the path in the URL; a read-only source never creates a database",
            )
        uri = f"file:{urllib.parse.quote(str(self._path.resolve()))}?mode=ro"
        try:
            # No statement cache: a statement prepared without the authorizer must never be reused.
            conn = sqlite3.connect(
                uri, uri=True, timeout=self.timeout_s, check_same_thread=False, cached_statements=0
            )
            conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            raise RetrievalError(
                f"cannot open SQLite database {self._path}: {exc}", hint="is it a SQLite file you may read?"
            ) from exc
        conn.set_progress_handler(self._past_deadline, 1000)
        return conn

    def _open_pg(self) -> psycopg.Connection[Any]:
        import psycopg

        try:
            conn = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=max(2, math.ceil(self.timeout_s))
            )
        except (psycopg.Error, ValueError) as exc:  # ValueError: psycopg rejects some URLs before trying
            raise RetrievalError(
                f"cannot connect to {self._scrub(self.url)}: {self._scrub(str(exc))}",
                hint="check host, port, user, password and database name in the URL",
            ) from exc
        try:
            conn.execute("SET default_transaction_read_only = on")
            conn.execute(f"SET statement_timeout = {self._timeout_ms()}")
            conn.autocommit = False
            conn.read_only = True  # every transaction begins READ ONLY
        except psycopg.Error as exc:
            conn.close()
            raise RetrievalError(
                f"cannot set up a read-only session on {self._scrub(self.url)}: {self._scrub(str(exc))}",
                hint="check that the server is PostgreSQL and accepts SET",
            ) from exc
        return conn

    def _timeout_ms(self) -> int:
        return max(1, round(self.timeout_s * 1000))

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._sqlite is not None:
                self._sqlite.close()
                self._sqlite = None
            if self._pg is not None:
                self._pg.close()
                self._pg = None

    def _closed(self) -> RetrievalError:
        return RetrievalError(
            f"the SQL source {self._scrub(self.url)} is closed", hint="open a new SqlSource"
        )

    # -- queries ------------------------------------------------------------------------------------------

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> SqlResult:
        """Run one read-only SELECT, with `:name` placeholders bound from `params` when given (the same
        spelling on both databases). Raises InvalidInputError for anything but one SELECT, RetrievalError
        when the database fails it (a wrong column, the time limit), each on one line with a hint."""
        tokens = _check_select(sql, self.dialect, self.tables)
        return self._run(sql[: tokens[-1].end], params)

    def _run(self, sql: str, params: Mapping[str, Any] | None = None) -> SqlResult:
        """Run `sql` on the read-only connection without the text check (the lower layer, kept separate so
        that tests can show it holds on its own)."""
        sql = re.sub(r"[\s;]+$", "", sql)
        bound: dict[str, Any] | None = None
        if params is not None:
            sql, bound = self._bind(sql, params)
        with self._lock:
            started = time.perf_counter()
            if self.dialect == "sqlite":
                columns, rows = self._run_sqlite(sql, bound)
            else:
                columns, rows = self._run_pg(sql, bound)
            seconds = time.perf_counter() - started
        truncated = len(rows) > self.row_limit
        return SqlResult(columns, rows[: self.row_limit], truncated, seconds)

    def _bind(self, sql: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """`sql` in the driver's placeholder style, and the values it names. SQLite reads `:name` itself;
        psycopg wants `%(name)s`, and then every other `%` doubled."""
        names = _placeholders(_tokens(sql, self.dialect))
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
            if (arg2 or "").lower() in _FORBIDDEN_FUNCTIONS:
                self._denied = f"the function {arg2}() is not allowed"
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
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
                or _allowed(table, self.tables)
                or (inner and inner.lower() in self.tables)
                or table in _TABLE_FUNCTIONS
                or (schema_table and arg2 == "ROWID")
            ):
                return sqlite3.SQLITE_OK
            self._denied = f"the query reads table {table!r}, which is not allowed"
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA:
            self._denied = "PRAGMA is not allowed (nor pragma_* table functions)"
            return sqlite3.SQLITE_DENY
        self._denied = "the statement does more than read (only SELECT is allowed)"
        return sqlite3.SQLITE_DENY

    def _run_sqlite(self, sql: str, params: dict[str, Any] | None) -> tuple[list[str], list[tuple[Any, ...]]]:
        conn = self._sqlite
        if conn is None:
            raise self._closed()
        self._denied = None
        self._selecting = self._authorized = False
        conn.set_authorizer(self._authorize)
        self._deadline = time.monotonic() + self.timeout_s
        try:
            cur = conn.execute(sql, params or {})
            rows = cur.fetchmany(self.row_limit + 1)
            columns = [d[0] for d in cur.description or ()]
            cur.close()
            return columns, rows
        except sqlite3.Error as exc:
            raise self._sqlite_error(exc) from exc
        finally:
            self._deadline = 0.0
            conn.set_authorizer(None)
            if conn.in_transaction:
                conn.rollback()

    def _sqlite_error(self, exc: sqlite3.Error) -> HonedError:
        text = self._scrub(str(exc))
        if "interrupted" in text:
            return self._timed_out()
        if self._denied is not None or "not authorized" in text:
            return InvalidInputError(
                f"the database refused the statement: {self._denied or text}",
                hint="this source is read-only: send one SELECT on the allowed tables",
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

    def _timed_out(self) -> RetrievalError:
        return RetrievalError(
            f"the query ran past the time limit of {self.timeout_s:g} s and was stopped",
            hint="narrow it (filter, aggregate, LIMIT) or raise timeout_s",
        )

    def _run_pg(self, sql: str, params: dict[str, Any] | None) -> tuple[list[str], list[tuple[Any, ...]]]:
        import psycopg

        if self._pg is None:
            raise self._closed()
        if self._pg.closed:  # the server went away since the last query: try once more on a new session
            self._pg = self._open_pg()
        conn = self._pg
        try:
            # SET LOCAL opens the READ ONLY transaction and is undone by its rollback, like anything the
            # query itself might set.
            conn.execute(f"SET LOCAL statement_timeout = {self._timeout_ms()}")
            # A server-side cursor: only the rows fetched cross the wire, and DECLARE takes only a query.
            with conn.cursor(name="honed_sql") as cur:
                cur.execute(sql, params)
                rows = cur.fetchmany(self.row_limit + 1)
                columns = [d.name for d in cur.description or ()]
            return columns, rows
        except psycopg.errors.QueryCanceled as exc:
            raise self._timed_out() from exc
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise InvalidInputError(
                f"the database refused to write: {self._pg_message(exc)}",
                hint="this source is read-only: send a SELECT",
            ) from exc
        except psycopg.Error as exc:
            raise RetrievalError(
                f"the query failed: {self._pg_message(exc)}",
                hint="check table and column names against the schema",
            ) from exc
        finally:
            if not conn.closed:
                try:
                    conn.rollback()
                except psycopg.Error:
                    conn.close()  # reopened by the next query

    def _pg_message(self, exc: Any) -> str:
        diag = getattr(exc, "diag", None)
        lines = str(exc).splitlines()
        message = getattr(diag, "message_primary", None) or (lines[0] if lines else type(exc).__name__)
        hint = getattr(diag, "message_hint", None)
        return self._scrub(f"{message} ({hint})" if hint else str(message))

    # -- schema -------------------------------------------------------------------------------------------

    def schema(self) -> str:
        """One line per table or view: `name(column type, ...)`, limited to the allowlist when there is
        one. Meant for the model's prompt."""
        with self._lock:
            listed = self._schema_sqlite() if self.dialect == "sqlite" else self._schema_pg()
        lines = [
            f"{name}({', '.join(f'{col} {typ}'.strip() for col, typ in cols)})"
            for name, cols in listed
            if self.tables is None or _allowed(name.lower(), self.tables)
        ]
        return "\n".join(lines) if lines else "(no tables)"

    def _schema_sqlite(self) -> list[tuple[str, list[tuple[str, str]]]]:
        conn = self._sqlite
        if conn is None:
            raise self._closed()
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

    def _schema_pg(self) -> list[tuple[str, list[tuple[str, str]]]]:
        import psycopg

        if self._pg is None:
            raise self._closed()
        if self._pg.closed:
            self._pg = self._open_pg()
        try:
            # pg_catalog rather than information_schema: it gives types with their modifiers
            # (numeric(8,2)) and can leave out what this role may not read.
            rows = self._pg.execute(
                "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_attribute a ON a.attrelid = c.oid "
                "WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg_toast%' "
                "AND has_table_privilege(c.oid, 'SELECT') "
                "ORDER BY n.nspname, c.relname, a.attnum"
            ).fetchall()
        except psycopg.Error as exc:
            raise RetrievalError(f"cannot read the schema: {self._pg_message(exc)}") from exc
        finally:
            if not self._pg.closed:
                self._pg.rollback()
        tables: dict[str, list[tuple[str, str]]] = {}
        for schema, table, column, typ in rows:
            name = table if schema == "public" else f"{schema}.{table}"
            tables.setdefault(name, []).append((column, typ))
        return list(tables.items())


# -- the tool loop ----------------------------------------------------------------------------------------

_DEFAULT_SYSTEM = (
    "Answer the user's question from the database. Look things up by calling the tool {tool} with one "
    "read-only SELECT; answer from the rows it returns. If a query fails, read the error, fix the query and "
    "try again. Do not make up data that the rows do not show."
)


def sql_tool(source: SqlSource, name: str = "query_database") -> dict[str, Any]:
    """An OpenAI function tool that runs one SELECT on `source`; its description carries the schema."""
    schema = source.schema()
    if len(schema) > _SCHEMA_CHARS:
        schema = schema[:_SCHEMA_CHARS].rsplit("\n", 1)[0] + "\n(more tables not shown)"
    dialect = "SQLite" if source.dialect == "sqlite" else "PostgreSQL"
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": (
                f"Run one read-only SQL SELECT on a {dialect} database and get back at most "
                f"{source.row_limit} rows as JSON (columns, rows, truncated). Tables:\n{schema}"
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "sql": {"type": "string", "description": f"one SELECT statement in {dialect} SQL"}
                },
                "required": ["sql"],
                "additionalProperties": False,
            },
        },
    }


async def _run_call(call: dict[str, Any], tool_name: str, source: SqlSource) -> SqlCall:
    sql = ""
    try:
        if call.get("name") != tool_name:
            raise InvalidInputError(f"there is no tool {call.get('name')!r}", hint=f"call {tool_name}")
        try:
            args = json.loads(call.get("arguments") or "{}")
        except ValueError as exc:
            raise InvalidInputError(
                "the tool arguments are not JSON", hint='send {"sql": "SELECT ..."}'
            ) from exc
        given = args.get("sql") if isinstance(args, dict) else None
        if not isinstance(given, str):
            raise InvalidInputError("the tool call has no `sql` string", hint='send {"sql": "SELECT ..."}')
        sql = given
        return SqlCall(sql, result=await asyncio.to_thread(source.query, sql))
    except HonedError as exc:
        return SqlCall(sql, error=exc.one_line())


async def answer_with_sql(
    client: ModelClient,
    question: str,
    source: SqlSource,
    *,
    model: str,
    system: str | None = None,
    max_rounds: int = 3,
) -> SqlAnswer:
    """Let `model` answer `question` by querying `source`. Each round is one call to the model; its tool
    calls are run and their rows (or errors) sent back. Raises ModelError when the model still asks for
    queries after `max_rounds` calls."""
    if max_rounds < 1:
        raise InvalidInputError(f"max_rounds {max_rounds} must be positive", hint="use 1 or more")
    tool = await asyncio.to_thread(sql_tool, source)  # reading the schema blocks
    tool_name = tool["function"]["name"]
    messages: list[Message] = [
        {
            "role": "system",
            "content": system if system is not None else _DEFAULT_SYSTEM.format(tool=tool_name),
        },
        {"role": "user", "content": question},
    ]
    queries: list[SqlCall] = []
    completions: list[Completion] = []
    for _ in range(max_rounds):
        completion = await client.complete(ChatRequest.of(model, messages, tools=[tool]))
        completions.append(completion)
        if not completion.tool_calls:
            return SqlAnswer(completion.text, queries, completions)
        calls = [
            {**c, "id": str(c.get("id") or f"call_{len(queries) + i}")}
            for i, c in enumerate(completion.tool_calls)
        ]
        messages.append({"role": "assistant", "content": completion.text, "tool_calls": calls})
        for call in calls:
            done = await _run_call(call, tool_name, source)
            queries.append(done)
            reply = done.result.to_dict() if done.result is not None else {"error": done.error}
            messages.append(
                {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(reply, ensure_ascii=False)}
            )
    raise ModelError(
        f"{model} was still querying the database after {max_rounds} rounds ({len(queries)} queries) "
        "without answering",
        hint="raise max_rounds, or say in the system prompt to answer once the rows are enough",
    )


def answer_with_sql_sync(
    client: ModelClient,
    question: str,
    source: SqlSource,
    *,
    model: str,
    system: str | None = None,
    max_rounds: int = 3,
) -> SqlAnswer:
    """`answer_with_sql` for scripts (not from inside a running event loop)."""

    async def main() -> SqlAnswer:
        try:
            return await answer_with_sql(
                client, question, source, model=model, system=system, max_rounds=max_rounds
            )
        finally:
            await client.aclose_providers()

    return asyncio.run(main())
