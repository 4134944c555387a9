"""Engines for the two supported backends, and the translation of their errors into `StoreError`.

SQLite is tuned for one machine with several writers (a runner's background thread, the CLI, the web UI):
WAL lets readers proceed while one writer writes, and write transactions take the write lock up front
(BEGIN IMMEDIATE) so that a reader-turned-writer never fails with "database is locked" instead of waiting
out `busy_timeout`. PostgreSQL always goes through psycopg 3.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from honed.config import mask_url as mask_url_text
from honed.errors import HonedError, ImmutableVersionError, InvalidInputError, StoreError

URL_HINT = "check HONED_DATABASE_URL and that the server is running"
SQLITE_PRAGMAS = ("busy_timeout=5000", "journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL")
#: Execution option that marks a connection's transactions as writes (BEGIN IMMEDIATE on SQLite).
WRITE_OPTION = "honed_write"
IMMUTABLE_MARKER = "immutable"  # the immutability triggers' messages contain this word


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL for `url`, with PostgreSQL pinned to the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"not a database URL: {mask_text(url)!r}",
            hint="use sqlite:///path/to/honed.db or postgresql://user@host:5432/dbname",
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if parsed.database in (None, "", ":memory:"):
            raise StoreError(
                "in-memory SQLite is not supported: every connection would see a different empty database",
                hint="use a file, e.g. sqlite:///path/to/honed.db",
            )
        return parsed
    raise StoreError(
        f"unsupported database URL {mask_url(parsed)!r}",
        hint="honed supports sqlite:///path and postgresql+psycopg://user@host/dbname",
    )


def _json_dumps(value: Any) -> str:
    # NaN/Infinity are not JSON: PostgreSQL rejects them, so SQLite must too, or the backends would differ.
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot store a value that is not plain JSON: {exc}",
            hint="use only dicts, lists, strings, finite numbers, booleans and None",
        ) from None


def mask_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def mask_text(text: str) -> str:
    """`text` with anything shaped like `user:password@` in a URL reduced to `user:***@`."""
    return mask_url_text(text)


def where(url: URL) -> str:
    """Where the database is, for messages: `host:port` or the SQLite file."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def build_engine(url: URL) -> Engine:
    """An engine for `url` (not yet connected). SQLite's folder is created here."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 10
    # pre_ping: a shared server restarts or drops idle connections; a stale one is replaced, not raised.
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, json_serializer=_json_dumps)


def _sqlite_engine(url: URL) -> Engine:
    path = Path(str(url.database)).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the database folder {path.parent}: {exc.strerror}",
            hint="choose a writable location in HONED_DATABASE_URL",
        ) from None
    engine = create_engine(url.set(database=str(path)), json_serializer=_json_dumps)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Autocommit at the driver so that we, not pysqlite's statement sniffing, decide when and how
        # transactions begin (see _on_begin); PRAGMA journal_mode also cannot run inside a transaction.
        dbapi_connection.isolation_level = None
        for pragma in SQLITE_PRAGMAS:
            _pragma(dbapi_connection, pragma)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _pragma(dbapi_connection: sqlite3.Connection, pragma: str) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite reports "database is locked" for it
    # at once, without waiting out busy_timeout, when another connection is opening the file too.
    deadline = time.monotonic() + 5.0
    delay = 0.005
    while True:
        try:
            dbapi_connection.execute(f"PRAGMA {pragma}").close()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


@contextmanager
def translate_errors(url: URL) -> Iterator[None]:
    """Turn the drivers' exceptions into honed's, with a one-line message and no password."""
    try:
        yield
    except IntegrityError as exc:
        if IMMUTABLE_MARKER in str(exc.orig):
            # The trigger's own message already says what to do instead.
            raise ImmutableVersionError(_first_line(str(exc.orig))) from None
        raise StoreError(f"database constraint violated: {_first_line(str(exc.orig))}") from None
    except DBAPIError as exc:
        raise connection_error(url, exc) from None
    except StatementError as exc:
        # SQLAlchemy wraps errors raised while binding parameters, such as our JSON serializer's.
        if isinstance(exc.orig, HonedError):
            raise exc.orig from None
        raise StoreError(f"database error at {where(url)}: {_first_line(mask_text(str(exc)))}") from None
    except SQLAlchemyError as exc:
        raise StoreError(f"database error at {where(url)}: {_first_line(mask_text(str(exc)))}") from None


def connection_error(url: URL, exc: DBAPIError) -> StoreError:
    """The `StoreError` for a failed connection or statement, phrased for the person who must fix it."""
    reason = _reason(url, str(exc.orig))
    if url.get_backend_name() == "sqlite":
        if "locked" in reason:
            hint = (
                "another process held the write lock for over 5 s; retry, or use PostgreSQL for many writers"
            )
        else:
            hint = "check that the file and its folder are writable and the disk is not full"
        return StoreError(f"cannot use the SQLite database {where(url)}: {reason}", hint=hint)
    if exc.connection_invalidated or _is_connect_failure(exc.orig):
        sqlstate = str(getattr(exc.orig, "sqlstate", None))
        if sqlstate.startswith("28"):
            hint = "check the user name and password in HONED_DATABASE_URL"
        elif sqlstate == "3D000":
            hint = f"create it (createdb -h {url.host} {url.database}) or fix the name in HONED_DATABASE_URL"
        else:
            hint = URL_HINT
        return StoreError(f"cannot connect to PostgreSQL at {where(url)}: {reason}", hint=hint)
    return StoreError(f"PostgreSQL at {where(url)} failed: {reason}")


def _is_connect_failure(orig: BaseException | None) -> bool:
    """Whether the error happened while connecting rather than in a statement the server ran."""
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is None:  # raised by the client library: refused, unresolvable host, timeout, dropped
        return True
    # 08: connection exception, 28: bad credentials, 3D000: no such database, 57P03: starting up,
    # 53300: too many connections.
    return sqlstate[:2] in ("08", "28") or sqlstate in ("3D000", "57P03", "53300")


def _reason(url: URL, message: str) -> str:
    """The informative part of a driver message, on one line (libpq's messages span several)."""
    low = message.lower()
    known = {
        "connection refused": "connection refused",
        "could not translate host name": f"unknown host {url.host!r}",
        "failed to resolve host": f"unknown host {url.host!r}",
        "name or service not known": f"unknown host {url.host!r}",
        "timeout expired": "timed out",
        "no route to host": "no route to host",
    }
    for marker, reason in known.items():
        if marker in low:
            return reason
    # libpq prefixes the useful part with 'connection to server at "h" (addr), port p failed: '
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = lines[0] if lines else message
    text = re.sub(r"^connection failed:\s*", "", text)
    text = re.sub(r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed:\s*', "", text)
    text = re.sub(r"^FATAL:\s*", "", text)
    if url.password:
        text = text.replace(url.password, "***")
    return mask_text(" ".join(text.split())) or "unknown error"


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[0].split()) if text.strip() else text
