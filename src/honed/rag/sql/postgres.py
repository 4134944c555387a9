"""The PostgreSQL side of `SqlSource`: a session that can only read, as a role that can do nothing else.

Every query runs in a READ ONLY transaction with a statement timeout, through a server-side cursor (which
takes only a query), and is rolled back, settings and all. That stops writes, not effects outside the
transaction: a superuser, or a member of pg_read_server_files, pg_write_server_files,
pg_execute_server_program or pg_signal_backend, can read files, run programs or end other sessions from a
SELECT. Such a role is refused when the source connects; the text check's function allowlist comes on top.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from honed.errors import InvalidInputError, RetrievalError
from honed.rag.sql.limits import Row, fetch_rows, timed_out

if TYPE_CHECKING:
    import psycopg

#: predefined roles whose members reach outside the database from a query
DANGEROUS_ROLES = (
    "pg_execute_server_program",
    "pg_read_server_files",
    "pg_signal_backend",
    "pg_write_server_files",
)
#: the SQL to create a role this source accepts, shown when it refuses one (names are placeholders)
READER_SQL = (
    "CREATE ROLE honed_reader LOGIN PASSWORD '...' NOSUPERUSER NOCREATEDB NOCREATEROLE; "
    "GRANT CONNECT ON DATABASE mydb TO honed_reader; GRANT USAGE ON SCHEMA public TO honed_reader; "
    "GRANT SELECT ON public.my_table TO honed_reader"
)
_FETCH_BATCH = 20  # rows per round trip: small enough to stop early at the byte budget


class PostgresBackend:
    """One read-only session; reopened once when the server dropped it. Callers take turns."""

    def __init__(
        self, conninfo: str, shown_url: str, *, timeout_s: float, scrub: Callable[[str], str]
    ) -> None:
        self._conninfo = conninfo
        self._shown_url = shown_url  # the URL with its password masked
        self.timeout_s = timeout_s
        self._scrub = scrub
        self._conn: psycopg.Connection[Any] | None = self._open()

    def _timeout_ms(self) -> int:
        return max(1, round(self.timeout_s * 1000))

    def _open(self) -> psycopg.Connection[Any]:
        import psycopg

        try:
            conn = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=max(2, math.ceil(self.timeout_s))
            )
        except (psycopg.Error, ValueError) as exc:  # ValueError: psycopg rejects some URLs before trying
            raise RetrievalError(
                f"cannot connect to {self._shown_url}: {self._scrub(str(exc))}",
                hint="check host, port, user, password and database name in the URL",
            ) from exc
        try:
            conn.execute("SET default_transaction_read_only = on")
            conn.execute(f"SET statement_timeout = {self._timeout_ms()}")
            # The text check reads strings the standard way; so must the server.
            conn.execute("SET standard_conforming_strings = on")
            role, refused = self._dangerous_memberships(conn)
            conn.autocommit = False
            conn.read_only = True  # every transaction begins READ ONLY
        except psycopg.Error as exc:
            conn.close()
            raise RetrievalError(
                f"cannot set up a read-only session on {self._shown_url}: {self._scrub(str(exc))}",
                hint="check that the server is PostgreSQL and accepts SET",
            ) from exc
        if refused:
            conn.close()
            what = "a superuser" if refused == ["superuser"] else "a member of " + ", ".join(refused)
            raise InvalidInputError(
                f"the PostgreSQL role {role!r} of {self._shown_url} is {what}, so a query could reach "
                "outside the database (files, programs, other sessions)",
                hint=f"connect as a role that may only read, e.g. {READER_SQL}",
            )
        return conn

    @staticmethod
    def _dangerous_memberships(conn: psycopg.Connection[Any]) -> tuple[str, list[str]]:
        """The session's role, and why it is refused: ["superuser"] (also for a member of a superuser role,
        which SET ROLE could become), else the dangerous predefined roles it is a member of."""
        row = conn.execute(
            "SELECT current_user::text, "
            "EXISTS (SELECT 1 FROM pg_roles r "
            "WHERE r.rolsuper AND pg_has_role(current_user, r.oid, 'MEMBER')), "
            "ARRAY(SELECT r.rolname::text FROM pg_roles r WHERE r.rolname = ANY(%s) "
            "AND pg_has_role(current_user, r.oid, 'MEMBER') ORDER BY 1)",
            (list(DANGEROUS_ROLES),),
        ).fetchone()
        assert row is not None
        role, superuser, members = row
        return role, ["superuser"] if superuser else list(members)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def _session(self) -> psycopg.Connection[Any]:
        assert self._conn is not None
        if self._conn.closed:  # the server went away since the last query: try once more on a new session
            self._conn = self._open()
        return self._conn

    # -- queries ------------------------------------------------------------------------------------------

    def run(
        self, sql: str, params: Mapping[str, Any] | None, limit: int, max_bytes: int
    ) -> tuple[list[str], list[Row]]:
        """The columns and at most `limit` rows of `sql`; the caller has checked that the source is open."""
        import psycopg

        conn = self._session()
        try:
            # SET LOCAL opens the READ ONLY transaction and is undone by its rollback, like anything the
            # query itself might set.
            conn.execute(f"SET LOCAL statement_timeout = {self._timeout_ms()}")
            # A server-side cursor: only the rows fetched cross the wire, and DECLARE takes only a query.
            with conn.cursor(name="honed_sql") as cur:
                cur.execute(sql, params)
                columns = [d.name for d in cur.description or ()]
                rows = fetch_rows(cur.fetchmany, limit, max_bytes, batch=_FETCH_BATCH)
            return columns, rows
        except psycopg.errors.QueryCanceled as exc:
            raise timed_out(self.timeout_s) from exc
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise InvalidInputError(
                f"the database refused to write: {self._message(exc)}",
                hint="this source is read-only: send a SELECT",
            ) from exc
        except psycopg.Error as exc:
            raise RetrievalError(
                f"the query failed: {self._message(exc)}",
                hint="check table and column names against the schema",
            ) from exc
        finally:
            if not conn.closed:
                try:
                    conn.rollback()
                except psycopg.Error:
                    conn.close()  # reopened by the next query

    def _message(self, exc: Any) -> str:
        diag = getattr(exc, "diag", None)
        lines = str(exc).splitlines()
        message = getattr(diag, "message_primary", None) or (lines[0] if lines else type(exc).__name__)
        hint = getattr(diag, "message_hint", None)
        return self._scrub(f"{message} ({hint})" if hint else str(message))

    # -- schema -------------------------------------------------------------------------------------------

    def schema(self) -> list[tuple[str, list[tuple[str, str]]]]:
        import psycopg

        conn = self._session()
        try:
            # pg_catalog rather than information_schema: it gives types with their modifiers
            # (numeric(8,2)) and can leave out what this role may not read.
            rows = conn.execute(
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
            raise RetrievalError(f"cannot read the schema: {self._message(exc)}") from exc
        finally:
            if not conn.closed:
                conn.rollback()
        tables: dict[str, list[tuple[str, str]]] = {}
        for schema, table, column, typ in rows:
            name = table if schema == "public" else f"{schema}.{table}"
            tables.setdefault(name, []).append((column, typ))
        return list(tables.items())
