"""What a model's SQL must not reach, on a real SQLite file and a real PostgreSQL server: raw pointers and
unbounded work (SQLite), functions with effects outside the transaction and roles that can reach the
server's files or other sessions (PostgreSQL). Each attack comes from a security review and worked before.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from honed.errors import HonedError, InvalidInputError, RetrievalError
from honed.rag.sql import SqlSource
from honed.rag.sql.check import check_select
from tests.rag.test_sql import PRODUCTS, READER, _fill, _libpq, one_line, reader_url


@pytest.fixture
def shop(tmp_path: Path) -> str:
    """The catalogue as a SQLite file, with orders (for joins) and a full-text index of product notes."""
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        _fill(conn, "?")
        conn.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, product INTEGER, placed TEXT, qty INTEGER)"
        )
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [
                (1, 1, "2024-03-01 10:00:00", 2),
                (2, 1, "2024-03-15 12:30:00", 1),
                (3, 4, "2024-04-02 09:00:00", 5),
            ],
        )
        conn.execute("CREATE VIRTUAL TABLE notes USING fts5(body)")
        conn.execute("INSERT INTO notes VALUES ('the hammer has a steel head'), ('a rake for leaves')")
        conn.execute("CREATE VIRTUAL TABLE notes4 USING fts4(body)")
        conn.execute("INSERT INTO notes4 VALUES ('the hammer has a steel head')")
    conn.close()
    return f"sqlite:///{path}"


# -- SQLite ----------------------------------------------------------------------------------------------


def test_sqlite_fts3_tokenizer_and_other_unlisted_functions_are_refused(shop: str) -> None:
    with SqlSource(shop) as s:
        for sql in (
            "SELECT fts3_tokenizer('simple')",  # leaked a heap pointer
            "SELECT fts3_tokenizer('simple', x'4141414141414141')",  # then the next MATCH crashed
            "SELECT hex(FTS3_TOKENIZER('porter')) FROM products",
            "SELECT load_extension('/tmp/evil')",
            "SELECT sqlite_compileoption_get(0)",
        ):
            for run in (s.query, s._run):  # the authorizer refuses it, with or without the text check
                with pytest.raises(InvalidInputError, match="is not allowed") as caught:
                    run(sql)
                one_line(caught.value)
        # Full-text search (FTS5 and FTS4) works, and nothing was swapped under it.
        assert s.query("SELECT body, bm25(notes) < 0 FROM notes WHERE notes MATCH 'hammer'").rows == [
            ("the hammer has a steel head", 1)
        ]
        assert s.query("SELECT snippet(notes4) FROM notes4 WHERE notes4 MATCH 'steel'").rows == [
            ("the hammer has a <b>steel</b> head",)
        ]


def test_sqlite_a_huge_value_ends_within_the_time_limit(shop: str) -> None:
    with SqlSource(shop, timeout_s=0.2) as s:
        started = time.monotonic()
        with pytest.raises(RetrievalError, match="limit of 2,000,000 bytes") as caught:
            s.query("SELECT length(hex(randomblob(400000000)))")
        assert time.monotonic() - started < 1.0
        one_line(caught.value)
        # Three huge columns and a row limit: refused at once, nothing of that size is ever made.
        started = time.monotonic()
        with pytest.raises(RetrievalError, match="limit of"):
            s.query(
                "SELECT zeroblob(900000000), zeroblob(900000000), zeroblob(900000000) FROM products LIMIT 5"
            )
        assert time.monotonic() - started < 1.0
        assert s.query("SELECT count(*) FROM products").rows == [(len(PRODUCTS),)]  # usable after


def test_sqlite_functions_quadratic_in_their_arguments_stay_within_the_time_limit(shop: str) -> None:
    """SQLite's instr, replace and trim(x, chars) compare every position against the whole other argument:
    with 30 kB each way trim took 3.5 s, with 1 MB instr 5 s, and no progress handler can stop them."""
    big = "a" * 1_000_000
    needle = "a" * 500_000 + "b"
    chars = "b" * 30_000 + "a"
    queries = [
        ("SELECT instr(:big, :needle)", {"big": big, "needle": needle}, (0,)),
        ("SELECT length(replace(:big, :needle, 'x'))", {"big": big, "needle": needle}, (1_000_000,)),
        ("SELECT length(trim(:text, :chars))", {"text": "a" * 30_000, "chars": chars}, (0,)),
        (
            "SELECT length(ltrim(:text, :chars)), length(rtrim(:text, :chars))",
            {"text": "a" * 30_000, "chars": chars},
            (0, 0),
        ),
    ]
    reference = sqlite3.connect(":memory:")
    try:
        with SqlSource(shop, timeout_s=0.5) as s:
            for sql, params, expected in queries:
                started = time.monotonic()
                rows = s.query(sql, params).rows
                assert time.monotonic() - started < 1.0, sql
                # The answers are SQLite's own (checked on small arguments, where its built-ins are quick).
                small = {k: v[-2_000:] for k, v in params.items()}
                assert s.query(sql, small).rows == reference.execute(sql, small).fetchall(), sql
                assert rows == [expected], sql
            # The same functions on other types, as SQLite has them.
            for sql in (
                "SELECT instr(x'0102030405', x'0304'), instr(12345, 34), instr('abc', NULL), "
                "instr('abc', '')",
                "SELECT replace(12345, 3, 'x'), replace('abc', '', 'x'), replace('abc', 'b', NULL), "
                "replace('a.b.c', '.', '')",
                "SELECT trim('xxhixx', 'x'), ltrim('  hi  '), rtrim(123400, 0), trim('éaé', 'é'), "
                "trim('abc', '')",
            ):
                assert s.query(sql).rows == reference.execute(sql).fetchall(), sql
            # A replacement that would grow past the value limit is refused, not built.
            with pytest.raises(RetrievalError, match="replace"):
                s.query("SELECT replace(:text, 'a', :long)", {"text": "a" * 1000, "long": "b" * 10_000})
            # LIKE and GLOB cost text length x pattern length: the pattern is capped.
            with pytest.raises(InvalidInputError, match="longer than 100 characters") as caught:
                s.query("SELECT count(*) FROM products WHERE name LIKE :p", {"p": "%" + "a" * 150 + "%"})
            one_line(caught.value)
    finally:
        reference.close()


def test_sqlite_result_bytes_are_budgeted_as_rows_arrive(shop: str) -> None:
    many = (
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 40) "
        "SELECT x, zeroblob(1000000) FROM n"
    )
    with SqlSource(shop) as s:  # the default budget, 16 MB: 40 rows of 1 MB pass it
        with pytest.raises(RetrievalError, match="passed the limit of 16,000,000 bytes at row 16") as caught:
            s.query(many)
        one_line(caught.value)
    with SqlSource(shop, max_result_bytes=50_000_000) as s:
        assert len(s.query(many).rows) == 40
    with SqlSource(shop, max_result_bytes=1000) as s:
        assert s.query("SELECT name FROM products ORDER BY id").rows[0] == ("Claw hammer",)
        with pytest.raises(RetrievalError, match="limit of 1,000 bytes"):
            s.query("SELECT hex(zeroblob(1000))")  # one value of 2,000 characters


def test_sqlite_ordinary_queries_still_work(shop: str) -> None:
    reads = {
        "join and aggregate": (
            "SELECT p.name, sum(o.qty) AS n FROM products p JOIN orders o ON o.product = p.id "
            "GROUP BY p.name ORDER BY n DESC",
            [("Garden hose", 5), ("Claw hammer", 3)],
        ),
        "CTE and window": (
            "WITH t AS (SELECT category, price FROM products) SELECT category, max(price), "
            "count(*) OVER () FROM t GROUP BY category ORDER BY category LIMIT 1",
            [("clothing", 7.25, 3)],
        ),
        "dates": (
            "SELECT strftime('%Y-%m', placed) AS month, date(placed, '+1 day'), julianday(placed) > 0 "
            "FROM orders WHERE placed >= datetime('2024-03-10') ORDER BY placed LIMIT 1",
            [("2024-03", "2024-03-16", 1)],
        ),
        "text and math": (
            "SELECT upper(substr(name, 1, 4)), length(name), round(price * 1.1, 1), abs(-stock), "
            "coalesce(NULL, 'x'), ifnull(NULL, 2), instr(name, 'ham'), replace(name, ' ', '_'), "
            "trim('  x  '), name LIKE '%hammer%', group_concat(category, '|') FROM products WHERE id = 1",
            [("CLAW", 11, 13.8, 40, "x", 2, 6, "Claw_hammer", "x", 1, "tools")],
        ),
        "json": (
            "SELECT json_extract('{\"a\": [1, 2]}', '$.a[1]'), json_array_length('[1,2,3]'), "
            "'{\"k\": 7}' ->> 'k', (SELECT sum(value) FROM json_each('[1, 2, 3]'))",
            [(2, 3, 7, 6)],
        ),
        "full text": (
            "SELECT p.name FROM notes JOIN products p ON p.id = notes.rowid WHERE notes MATCH 'steel' "
            "ORDER BY rank",
            [("Claw hammer",)],
        ),
        "small random values": ("SELECT length(randomblob(16)), typeof(random())", [(16, "integer")]),
    }
    with SqlSource(shop) as s:
        for label, (sql, expected) in reads.items():
            assert s.query(sql).rows == expected, label


# -- PostgreSQL ------------------------------------------------------------------------------------------

ADVISORY_LOCK = [
    'SELECT "pg_advisory_lock"(42)',
    "SELECT pg_advisory_lock(42)",
    "SELECT PG_Advisory_Lock(42)",
    "SELECT pg_advisory_lock /* a comment */ (42)",
    'SELECT U&"pg_advisory_\\006Cock"(42)',
    "SELECT U&\"pg!005Fadvisory!005F!+00006Cock\" UESCAPE '!' (42)",
    "SELECT pg_catalog.pg_advisory_lock(42)",
    'SELECT "pg_catalog"."pg_advisory_lock"(42)',
    'SELECT pg_catalog . "pg_advisory_lock" (42)',
    "SELECT (42::bigint).pg_advisory_lock",  # attribute notation calls the function too
    "SELECT (ARRAY[42::bigint])[1].pg_advisory_lock",
    "SELECT 1 FROM products WHERE pg_try_advisory_lock(42)",
    "SELECT * FROM pg_advisory_lock(42)",
    "SELECT count(*) FROM products p LEFT JOIN LATERAL pg_advisory_lock(42) l ON true",
    "SELECT public.pg_advisory_lock(42)",
    "SELECT honed_test.pg_catalog.pg_advisory_lock(42)",
    "SELECT pg_advisory_lock" + "x" * 60 + "(42)",  # cut to 63 bytes by the server: not a bypass
]


@pytest.fixture
def pg_reader(fresh_postgres_url: str) -> str:
    """The catalogue on PostgreSQL (with its `secrets` table), as the read-only role."""
    with psycopg.connect(_libpq(fresh_postgres_url), autocommit=True) as conn:
        _fill(conn, "%s")
    return reader_url(fresh_postgres_url)


def advisory_locks(superuser_url: str) -> int:
    with psycopg.connect(_libpq(superuser_url)) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.postgres
def test_pg_every_spelling_of_a_function_not_allowed_is_refused(
    fresh_postgres_url: str, pg_reader: str
) -> None:
    with SqlSource(pg_reader) as s:
        for sql in ADVISORY_LOCK:
            with pytest.raises(InvalidInputError, match="not allowed") as caught:
                s.query(sql)
            one_line(caught.value)
        assert advisory_locks(fresh_postgres_url) == 0  # none was taken (one would outlive the rollback)
        # The names are read as the server reads them: these are lower() and are allowed.
        for sql in (
            "SELECT U&\"\\006Cower\"('A')",
            "SELECT U&\"!006Cower\" UESCAPE '!' ('A')",
            "SELECT LOWER('A')",
        ):
            assert s.query(sql).rows == [("a",)], sql
        for sql in (
            "SELECT \"pg_read_file\"('/etc/hostname')",
            "SELECT ('/etc/hostname'::text).pg_read_file",
            "SELECT \"set_config\"('default_transaction_read_only', 'off', false)",
            "SELECT pg_sleep(10)",
            "SELECT nextval('s')",
            "SELECT xmlparse(document '<a/>')",
            "SELECT dblink('host=x', 'select 1')",
        ):
            with pytest.raises(InvalidInputError, match="not allowed"):
                s.query(sql)


@pytest.mark.postgres
def test_pg_another_session_is_not_killed(pg_reader: str) -> None:
    # A session of the same role, which that role may signal: the attack worked on this setup.
    with psycopg.connect(_libpq(pg_reader), autocommit=True) as victim, SqlSource(pg_reader) as s:
        row = victim.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        pid = row[0]
        for sql in (
            f'SELECT "pg_terminate_backend"({pid})',
            f"SELECT pg_catalog.pg_terminate_backend({pid})",
            f"SELECT ({pid}).pg_terminate_backend",
            f'SELECT U&"pg\\005Fcancel\\005Fbackend"({pid})',
        ):
            with pytest.raises(InvalidInputError, match="not allowed"):
                s.query(sql)
        assert victim.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.postgres
def test_pg_query_to_xml_cannot_read_around_the_table_allowlist(pg_reader: str) -> None:
    with SqlSource(pg_reader, tables=["products"]) as s:
        for sql in (
            "SELECT query_to_xml('select * from secrets', true, false, '')",
            "SELECT \"query_to_xml\"('select * from secrets', true, false, '')",
            "SELECT pg_catalog.table_to_xml('secrets', true, false, '')",
            "SELECT ts_stat('select to_tsvector(value) from secrets')",
            "SELECT * FROM (TABLE secrets) s",
        ):
            with pytest.raises(InvalidInputError) as caught:
                s.query(sql)
            assert "launch codes" not in one_line(caught.value)


@pytest.mark.postgres
def test_pg_roles_that_reach_outside_the_database_are_refused_at_connect(fresh_postgres_url: str) -> None:
    # The test server's own user is a superuser: pg_read_file('/etc/hostname') returned the file.
    with pytest.raises(InvalidInputError, match=r"role 'postgres' .* is a superuser") as caught:
        SqlSource(fresh_postgres_url)
    text = one_line(caught.value)
    assert "CREATE ROLE" in text and "GRANT SELECT" in text
    reader_url(fresh_postgres_url)  # makes the reader role, which may connect
    with psycopg.connect(_libpq(fresh_postgres_url), autocommit=True) as admin:
        for role, granted in (
            ("honed_signaller", "pg_signal_backend"),
            ("honed_files", "pg_read_server_files"),
            ("honed_program", "pg_execute_server_program"),
            ("honed_admin", "postgres"),  # a member of a superuser role could SET ROLE to it
        ):
            if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                admin.execute(f"CREATE ROLE {role} LOGIN")
                admin.execute(f"GRANT {granted} TO {role}")
            # The server trusts these roles; the password is in the URL only to show it is masked.
            url = fresh_postgres_url.replace("://postgres@", f"://{role}:pw-secret-77@")
            with pytest.raises(InvalidInputError, match=f"role '{role}'") as refused:
                SqlSource(url)
            message = one_line(refused.value)
            assert "pw-secret-77" not in message
            assert ("superuser" if granted == "postgres" else granted) in message
    with SqlSource(fresh_postgres_url.replace("://postgres@", f"://{READER}@")) as s:
        assert s.query("SELECT 1 AS one").rows == [(1,)]


@pytest.fixture
def pg_shop(fresh_postgres_url: str) -> Iterator[SqlSource]:
    with psycopg.connect(_libpq(fresh_postgres_url), autocommit=True) as conn:
        _fill(conn, "%s")
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, product int, placed timestamptz, qty int)")
        conn.execute(
            "INSERT INTO orders VALUES (1, 1, '2024-03-01 10:00Z', 2), (2, 1, '2024-03-15 12:30Z', 1), "
            "(3, 4, '2024-04-02 09:00Z', 5)"
        )
    with SqlSource(reader_url(fresh_postgres_url)) as s:
        yield s


@pytest.mark.postgres
def test_pg_ordinary_queries_still_work(pg_shop: SqlSource) -> None:
    reads = {
        "join, aggregate, filter": (
            "SELECT p.name, sum(o.qty) AS n, count(*) FILTER (WHERE o.qty > 1) FROM products p "
            "JOIN orders o ON o.product = p.id GROUP BY p.name ORDER BY n DESC",
            [("Garden hose", 5, 1), ("Claw hammer", 3, 1)],
        ),
        "CTE with columns, window, rollup": (
            'WITH RECURSIVE t(cat, "price") AS (SELECT category, price FROM products) '
            "SELECT cat, max(price)::text, rank() OVER (ORDER BY cat) FROM t "
            "GROUP BY ROLLUP (cat) ORDER BY cat NULLS LAST LIMIT 1",
            [("clothing", "7.25", 1)],
        ),
        "dates": (
            "SELECT to_char(date_trunc('month', placed AT TIME ZONE 'UTC'), 'YYYY-MM'), "
            "EXTRACT(DAY FROM placed AT TIME ZONE 'UTC')::int, (placed + INTERVAL '1 day')::date::text, "
            "now() > placed FROM orders ORDER BY placed LIMIT 1",
            [("2024-03", 1, "2024-03-02", True)],
        ),
        "casts, conditionals, strings": (
            "SELECT CAST(price AS numeric(8, 1))::text, price::numeric(8,0)::text, "
            "COALESCE(NULL, upper(left(name, 4))), NULLIF(1, 2), GREATEST(1, 3), "
            "string_agg(category, '|' ORDER BY id), pg_catalog.lower(name), "
            "position('ham' IN name), substring(name FROM 1 FOR 4), trim(BOTH ' ' FROM name) "
            "FROM products WHERE id = 1 GROUP BY price, name",
            [("12.5", "13", "CLAW", 1, 3, "tools", "claw hammer", 6, "Claw", "Claw hammer")],
        ),
        "subqueries, set functions, json, full text": (
            "SELECT g.x, EXISTS (SELECT 1 FROM products WHERE id = g.x), "
            "(SELECT count(*) FROM products WHERE id IN (SELECT product FROM orders)), "
            "jsonb_build_object('n', g.x) ->> 'n', "
            "to_tsvector('english', 'the hammers') @@ plainto_tsquery('english', 'hammer') "
            "FROM generate_series(1, 2) AS g(x) LEFT JOIN (SELECT id FROM products) s ON s.id = g.x "
            "ORDER BY g.x",
            [(1, True, 2, "1", True), (2, True, 2, "2", True)],
        ),
    }
    for label, (sql, expected) in reads.items():
        assert pg_shop.query(sql).rows == expected, label
    with pytest.raises(HonedError):  # an alias's column list needs AS, or it reads as a call
        pg_shop.query("SELECT x FROM generate_series(1, 2) g(x)")


CALLS_ALLOWED = [  # PostgreSQL syntax with a parenthesis after a name that is not a function call
    "SELECT a FROM t GROUP BY ROLLUP (a), b ORDER BY a",
    "SELECT a FROM t GROUP BY a, CUBE(b) HAVING count(*) > 1",
    "SELECT a FROM t GROUP BY GROUPING SETS ((a), (b))",
    "SELECT x::character varying(10), CAST(x AS double precision), x::numeric(8, 2) FROM t",
    "SELECT count(*) OVER w FROM t WINDOW w AS (ORDER BY a)",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY a) FROM t",
    "SELECT * FROM t TABLESAMPLE bernoulli(10) REPEATABLE (7)",
    "WITH a(x) AS NOT MATERIALIZED (SELECT 1), b AS MATERIALIZED (SELECT 2) SELECT * FROM a, b",
    "SELECT d AT TIME ZONE ('UTC'), (a, b) OVERLAPS (c, d), name ILIKE ('%x%') FROM t",
    "SELECT * FROM a NATURAL JOIN (SELECT 1) s",
    "SELECT ARRAY(SELECT 1), ROW(1, 2), EXISTS (SELECT 1), 1 IN (1), 1 = ANY (ARRAY[1])",
    "SELECT x FROM unnest(ARRAY[1]) WITH ORDINALITY AS u(x, n)",
]
CALLS_REFUSED = [  # ... and calls that look like syntax
    "SELECT a FROM t GROUP BY x + cube(1)",
    "SELECT a FROM t GROUP BY cube(1) IS NULL",
    "SELECT a FROM t GROUP BY (rollup(1))",
    "SELECT zone(1)",
    "SELECT over(1)",
    "SELECT ilike(1, 2)",
    "SELECT materialized(1)",
    "SELECT x FROM t, f(1) AS (a int)",
    "SELECT (t).pg_read_file FROM t",
    "SELECT a.b.pg_sleep FROM t",
    "SELECT xmlparse(content 'x')",
    "SELECT 1 FROM t WHERE x IN (SELECT pg_sleep(1))",
]


def test_pg_calls_are_told_from_syntax_that_looks_like_them() -> None:
    for sql in CALLS_ALLOWED:
        check_select(sql, "postgresql")
    for sql in CALLS_REFUSED:
        with pytest.raises(InvalidInputError, match="not allowed"):
            check_select(sql, "postgresql")
