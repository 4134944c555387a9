"""The read-only SQL source and the tool loop, on a real SQLite file and a real PostgreSQL database.

Every query runs for real. The only fake is the model in the tool-loop tests: the local model cannot call
tools, so a stub of OpenAI's HTTP API (a real server on 127.0.0.1) or the scripted model plays one that
asks for SQL and then answers from the rows it was sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from honed.config import load_settings
from honed.errors import HonedError, InvalidInputError, ModelError, RetrievalError
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, ProviderResult, Usage
from honed.rag.sql import SqlResult, SqlSource, answer_with_sql_sync, rows_as_context, sql_tool
from honed.testing import scripted
from tests.support.postgres import PASSWORD_ROLE
from tests.support.stub_openai import Reply, StubServer, stub_openai

PRODUCTS = [
    (1, "Claw hammer", "tools", 12.5, 40),
    (2, "Hand saw", "tools", 19.99, 12),
    (3, "Cordless drill", "tools", 89.0, 5),
    (4, "Garden hose", "garden", 24.0, 18),
    (5, "Rake", "garden", 15.75, 0),
    (6, "Work gloves", "clothing", 7.25, 100),
]
SETUP = [
    "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, "
    "price NUMERIC(8, 2) NOT NULL, stock INTEGER NOT NULL)",
    "CREATE TABLE secrets (id INTEGER PRIMARY KEY, value TEXT)",
    "INSERT INTO secrets VALUES (1, 'the launch codes')",
]
# A function that writes, called from a plain SELECT: the text check cannot see the write.
PG_WRITER = (
    "CREATE FUNCTION add_product(n text) RETURNS integer LANGUAGE sql AS "
    "$$ INSERT INTO products VALUES (99, n, 'tools', 1, 1) RETURNING id $$"
)


def _fill(conn: Any, placeholder: str) -> None:
    for statement in SETUP:
        conn.execute(statement)
    marks = ", ".join([placeholder] * 5)
    for row in PRODUCTS:
        conn.execute(f"INSERT INTO products VALUES ({marks})", row)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalogue(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a real product catalogue (6 products, plus a `secrets` table), SQLite or PostgreSQL."""
    if request.param == "sqlite":
        import sqlite3

        path = tmp_path / "shop.db"
        with sqlite3.connect(path) as conn:
            _fill(conn, "?")
        conn.close()
        return f"sqlite:///{path}"
    pg: str = request.getfixturevalue("pg_catalogue")
    return pg


#: the read-only role the README tells users to create (the test server trusts it without a password)
READER = "honed_reader"


def reader_url(superuser_url: str) -> str:
    """`superuser_url`'s database as READER, which may read every table of its public schema and do nothing
    else; the role is made once per server, with the SQL the README gives."""
    database = superuser_url.rsplit("/", 1)[1]
    with psycopg.connect(_libpq(superuser_url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER,)).fetchone() is None:
            conn.execute(f"CREATE ROLE {READER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {READER}")
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {READER}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER}")
    return superuser_url.replace("://postgres@", f"://{READER}@")


@pytest.fixture
def pg_catalogue(fresh_postgres_url: str) -> str:
    """The catalogue on PostgreSQL, with a function `add_product` that writes, as the read-only role."""
    with psycopg.connect(_libpq(fresh_postgres_url), autocommit=True) as conn:
        _fill(conn, "%s")
        conn.execute(PG_WRITER)
    return reader_url(fresh_postgres_url)  # the SQLAlchemy spelling (postgresql+psycopg://) is accepted


def product_count(url: str) -> int:
    """Counted on a separate, ordinary connection: what is really in the database."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return int(conn.execute("SELECT count(*) FROM products").fetchone()[0])
        finally:
            conn.close()
    with psycopg.connect(_libpq(url)) as pg:
        row = pg.execute("SELECT count(*) FROM products").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def source(catalogue: str) -> Iterator[SqlSource]:
    with SqlSource(catalogue, timeout_s=1.0) as s:
        yield s


def one_line(exc: HonedError) -> str:
    text = str(exc)
    assert "\n" not in text and exc.hint, text
    return text


# -- reading ---------------------------------------------------------------------------------------------


def test_select_returns_the_real_rows(source: SqlSource) -> None:
    result = source.query(
        "SELECT name, price FROM products WHERE category = 'tools' AND name LIKE '%a%' ORDER BY price;"
    )
    assert result.columns == ["name", "price"]
    assert [(n, float(p)) for n, p in result.rows] == [("Claw hammer", 12.5), ("Hand saw", 19.99)]
    assert result.truncated is False and result.seconds >= 0
    with_cte = source.query(
        "WITH cheap AS (SELECT * FROM products WHERE price < 16) SELECT count(*) AS n FROM cheap"
    )
    assert with_cte.rows == [(3,)]


def test_keywords_inside_strings_comments_and_quoted_names_are_not_mistaken_for_statements(
    source: SqlSource,
) -> None:
    result = source.query(
        'SELECT name AS "update" FROM products -- ; DROP TABLE products\n'
        "WHERE name <> 'x''; DELETE FROM products' /* INSERT; */ ORDER BY id LIMIT 1"
    )
    assert result.columns == ["update"] and result.rows == [("Claw hammer",)]


def test_quoting_and_comments_are_read_as_each_database_reads_them(source: SqlSource) -> None:
    nested = "SELECT 1 AS one /* outer /* inner */ ; DELETE FROM products */"
    if source.dialect == "postgresql":  # comments nest; $$ and E'' strings hide what is inside them
        assert source.query(nested).rows == [(1,)]
        assert source.query("SELECT $tag$; DELETE FROM products$tag$ AS s").rows == [
            ("; DELETE FROM products",)
        ]
        assert source.query("SELECT E'it\\'s; DROP TABLE products' AS s").rows == [
            ("it's; DROP TABLE products",)
        ]
    else:  # the comment ends at the first */, so the DELETE is real
        with pytest.raises(InvalidInputError, match="one SQL statement"):
            source.query(nested)
        assert source.query("SELECT [name], `stock` FROM products WHERE id = 1").rows == [("Claw hammer", 40)]
    with pytest.raises(InvalidInputError, match="unterminated"):
        source.query("SELECT 'open ; DELETE FROM products")


def test_named_parameters_are_bound_not_pasted(source: SqlSource) -> None:
    sql = (
        "SELECT name, price::text AS p FROM products WHERE category = :cat AND name LIKE '%a%' ORDER BY id"
        if source.dialect == "postgresql"
        else "SELECT name, CAST(price AS TEXT) AS p FROM products WHERE category = :cat AND name LIKE '%a%' "
        "ORDER BY id"
    )
    assert [r[0] for r in source.query(sql, {"cat": "tools"}).rows] == ["Claw hammer", "Hand saw"]
    # A value is data, never SQL.
    assert source.query(sql, {"cat": "tools' OR '1'='1"}).rows == []
    with pytest.raises(InvalidInputError, match=":cat") as caught:
        source.query(sql, {"category": "tools"})
    one_line(caught.value)


def test_ordinary_reads_pass_every_layer(source: SqlSource) -> None:
    reads = [
        "SELECT category, count(*) AS n, sum(stock) FROM products GROUP BY category HAVING count(*) > 1 "
        "ORDER BY category",
        "SELECT name, rank() OVER (PARTITION BY category ORDER BY price DESC) FROM products",
        "SELECT name FROM products WHERE id IN (SELECT id FROM products WHERE stock = 0) UNION SELECT 'none'",
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3) SELECT x FROM n",
        "SELECT upper(name), length(name), coalesce(NULL, 1) FROM products LIMIT 2;",
    ]
    for sql in reads:
        assert source.query(sql).rows, sql


def test_truncation_is_flagged(catalogue: str) -> None:
    with SqlSource(catalogue, row_limit=4) as s:
        cut = s.query("SELECT id FROM products ORDER BY id")
        assert [r[0] for r in cut.rows] == [1, 2, 3, 4] and cut.truncated
    with SqlSource(catalogue, row_limit=6) as s:
        whole = s.query("SELECT id FROM products ORDER BY id")
        assert len(whole.rows) == 6 and not whole.truncated


def test_schema_lists_tables_columns_and_types(source: SqlSource) -> None:
    schema = source.schema()
    line = next(x for x in schema.splitlines() if x.startswith("products("))
    for column in ("id", "name", "category", "price", "stock"):
        assert column in line
    assert "numeric" in line.lower() and "secrets(" in schema


# -- refusing writes -------------------------------------------------------------------------------------

REFUSED = {
    "insert": "INSERT INTO products VALUES (7, 'Axe', 'tools', 30, 3)",
    "update": "UPDATE products SET price = 0",
    "delete": "DELETE FROM products",
    "drop": "DROP TABLE products",
    "create": "CREATE TABLE t (x int)",
    "attach": "ATTACH DATABASE 'other.db' AS other",
    "pragma write": "PRAGMA query_only = OFF",
    "multi-statement": "SELECT 1; DELETE FROM products",
    "hidden after a comment": "SELECT 1 /* harmless */ ; DELETE FROM products -- ;",
    "data-modifying CTE": "WITH gone AS (DELETE FROM products RETURNING *) SELECT count(*) FROM gone",
    "select into": "SELECT * INTO copy_of_products FROM products",
    "empty": "  -- nothing\n ; ",
}


def test_writes_and_other_statements_are_refused_before_they_run(source: SqlSource, catalogue: str) -> None:
    for label, sql in REFUSED.items():
        with pytest.raises(InvalidInputError) as caught:
            source.query(sql)
        one_line(caught.value)
        assert caught.value.hint, label
    assert product_count(catalogue) == len(PRODUCTS)
    assert source.query("SELECT count(*) FROM products").rows == [(6,)]  # still usable


def test_sqlite_connection_refuses_writes_even_without_the_text_check(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        _fill(conn, "?")
    conn.close()
    url = f"sqlite:///{path}"
    with SqlSource(url) as s:
        for sql in (
            "INSERT INTO products VALUES (7, 'Axe', 'tools', 30, 3)",
            "DELETE FROM products",
            "PRAGMA query_only = OFF",
            "ATTACH DATABASE 'other.db' AS other",
            "DROP TABLE products",
            "UPDATE sqlite_master SET sql = (SELECT 'x') WHERE name = 'products'",
        ):
            with pytest.raises(InvalidInputError, match="refused"):
                s._run(sql)  # the low-level path: no text check
        # Table-valued functions are reads, though SQLite reports them oddly to the authorizer.
        assert s._run("SELECT value FROM json_each('[1, 2]')").rows == [(1,), (2,)]
    assert product_count(url) == len(PRODUCTS)
    assert not (tmp_path / "other.db").exists()


@pytest.mark.postgres
def test_postgres_read_only_transaction_refuses_writes_the_text_check_cannot_see(pg_catalogue: str) -> None:
    with SqlSource(pg_catalogue) as s:
        # The text check refuses a function the database defines (only built-ins are allowed) ...
        with pytest.raises(InvalidInputError, match=r"add_product\(\) is not allowed"):
            s.query("SELECT add_product('Axe')")
        # ... and without it, the function runs, writes, and the transaction refuses.
        with pytest.raises(InvalidInputError, match="read-only transaction") as caught:
            s._run("SELECT add_product('Axe')")
        one_line(caught.value)
        # Turning read-only off for the session does not help: every query is its own READ ONLY
        # transaction, rolled back, setting and all.
        s._run("SELECT set_config('default_transaction_read_only', 'off', false)")
        with pytest.raises(HonedError):
            s._run("INSERT INTO products VALUES (7, 'Axe', 'tools', 30, 3)")
        with pytest.raises(InvalidInputError, match="read-only transaction"):
            s._run("SELECT add_product('Axe')")
        with pytest.raises(HonedError):
            s._run("SELECT 1; DELETE FROM products")
        rows = s.query("SELECT current_setting('default_transaction_read_only')").rows
        assert rows == [("on",)]
    assert product_count(pg_catalogue) == len(PRODUCTS)


# -- limits ------------------------------------------------------------------------------------------------


def test_a_runaway_query_is_stopped_at_the_time_limit(source: SqlSource) -> None:
    runaway = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n"
    started = time.monotonic()
    with pytest.raises(RetrievalError, match="time limit") as caught:
        source.query(runaway)
    assert time.monotonic() - started < source.timeout_s + 1
    one_line(caught.value)
    assert source.query("SELECT count(*) FROM products").rows == [(6,)]  # the source recovers


@pytest.mark.postgres
def test_wrong_password_is_masked(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", f"{PASSWORD_ROLE}:wrong-secret@")
    with pytest.raises(RetrievalError) as caught:
        SqlSource(url)
    text = one_line(caught.value)
    assert "wrong-secret" not in text and f"{PASSWORD_ROLE}:***@" in text
    assert "password authentication failed" in text


def test_bad_urls_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(RetrievalError, match="no SQLite database") as missing:
        SqlSource(f"sqlite:///{tmp_path / 'absent.db'}")
    one_line(missing.value)
    assert not (tmp_path / "absent.db").exists()
    with pytest.raises(InvalidInputError) as unsupported:
        SqlSource("mysql://me:hunter2@db/shop")
    assert "hunter2" not in one_line(unsupported.value)


def test_errors_from_the_database_are_one_line_with_a_hint(source: SqlSource) -> None:
    with pytest.raises(RetrievalError) as caught:
        source.query("SELECT colour FROM products")
    assert "colour" in one_line(caught.value)


# -- the allowlist -----------------------------------------------------------------------------------------


def test_tables_allowlist(catalogue: str) -> None:
    with SqlSource(catalogue, tables=["products"]) as s:
        assert "secrets" not in s.schema() and "products(" in s.schema()
        assert s.query(
            "WITH t AS (SELECT id FROM products) SELECT count(*) FROM t, products AS p WHERE t.id = p.id"
        ).rows == [(6,)]
        assert s.query("SELECT count(*) FROM products WHERE name IS DISTINCT FROM category").rows == [(6,)]
        if s.dialect == "postgresql":
            assert s.query("SELECT EXTRACT(YEAR FROM CURRENT_DATE) > 2000 FROM products LIMIT 1").rows
        for sql in (
            "SELECT * FROM secrets",
            "SELECT p.name FROM products p JOIN secrets s ON s.id = p.id",
            "SELECT name FROM products, secrets",
            "SELECT (SELECT value FROM secrets) FROM products",
        ):
            with pytest.raises(InvalidInputError, match="secrets"):
                s.query(sql)
        if s.dialect == "sqlite":  # SQLite enforces it in the connection too
            with pytest.raises(InvalidInputError, match="secrets"):
                s._run("SELECT value FROM (secrets)")


# -- tool calling -------------------------------------------------------------------------------------------


def tool_call_body(calls: list[tuple[str, str]]) -> dict[str, Any]:
    """An OpenAI chat.completion in which the model asks for tool calls (id, sql)."""
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": "query_database", "arguments": json.dumps({"sql": sql})},
                        }
                        for call_id, sql in calls
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
    }


def text_body(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 8, "total_tokens": 88},
    }


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with stub_openai() as s:
        yield s


@pytest.mark.parametrize("transport", ["aiohttp", "sdk"])
def test_tool_loop_over_http_sends_the_real_rows_back(
    workspace: Path, stub: StubServer, catalogue: str, transport: str
) -> None:
    """The model is a stub of OpenAI's API (real HTTP); the rows come from the real database."""
    (workspace / "honed.toml").write_text(
        f'[endpoints.stub]\nprovider = "openai"\nbase_url = "{stub.base_url}"\ntransport = "{transport}"\n'
    )
    sql = "SELECT name, stock FROM products WHERE category = 'garden' ORDER BY name"
    stub.script = [
        Reply(body=tool_call_body([("call_7", sql)])),
        Reply(body=text_body("Garden hose has 18 in stock; Rake is sold out.")),
    ]
    client = ModelClient(load_settings(start=workspace))
    with SqlSource(catalogue) as source:
        out = answer_with_sql_sync(client, "Which garden products are in stock?", source, model="stub/m")
    assert out.answer == "Garden hose has 18 in stock; Rake is sold out."
    assert len(out.completions) == 2 and len(stub.requests) == 2
    assert [q.sql for q in out.queries] == [sql]
    assert out.queries[0].result is not None and out.queries[0].result.rows == [
        ("Garden hose", 18),
        ("Rake", 0),
    ]

    first = stub.requests[0]["body"]
    assert first["messages"][0]["role"] == "system" and "query_database" in first["messages"][0]["content"]
    assert first["messages"][1] == {"role": "user", "content": "Which garden products are in stock?"}
    assert first["tools"][0]["function"]["name"] == "query_database"
    assert "products(" in first["tools"][0]["function"]["description"]
    second = stub.requests[1]["body"]["messages"]
    assistant, tool = second[-2], second[-1]
    assert assistant["role"] == "assistant" and assistant["content"] is None
    assert assistant["tool_calls"] == [
        {
            "id": "call_7",
            "type": "function",
            "function": {"name": "query_database", "arguments": json.dumps({"sql": sql})},
        }
    ]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_7"
    assert json.loads(tool["content"]) == {
        "columns": ["name", "stock"],
        "rows": [["Garden hose", 18], ["Rake", 0]],
        "truncated": False,
    }


def test_a_model_that_sends_bad_sql_gets_the_error_and_retries(workspace: Path, catalogue: str) -> None:
    """The scripted model stands in for one that can call tools; it reads the error it was sent."""
    seen: list[ChatRequest] = []

    def model(request: ChatRequest) -> ProviderResult:
        seen.append(request)
        last = request.messages[-1]
        if len(seen) == 1:
            sql = "DELETE FROM products"
        elif len(seen) == 2:
            assert last["role"] == "tool" and "only SELECT" in json.loads(last["content"])["error"]
            sql = "SELECT nme FROM products"
        elif len(seen) == 3:
            assert "nme" in json.loads(last["content"])["error"]
            sql = "SELECT count(*) AS n FROM products WHERE stock = 0"
        else:
            rows = json.loads(last["content"])["rows"]
            return ProviderResult(f"{rows[0][0]} product is sold out.", Usage(1, 1), "stop")
        call = {"id": f"c{len(seen)}", "name": "query_database", "arguments": json.dumps({"sql": sql})}
        return ProviderResult("", Usage(1, 1), "tool_calls", tool_calls=(call,))

    client = ModelClient(load_settings(start=workspace))
    with scripted("sql-retry", model) as ref, SqlSource(catalogue) as source:
        out = answer_with_sql_sync(client, "How many products are sold out?", source, model=ref, max_rounds=4)
    assert out.answer == "1 product is sold out."
    assert [q.error is not None for q in out.queries] == [True, True, False]
    assert product_count(catalogue) == len(PRODUCTS)


def test_too_many_rounds_is_a_clear_error(workspace: Path, catalogue: str) -> None:
    call = {"id": "c", "name": "query_database", "arguments": '{"sql": "SELECT 1"}'}
    looping = ProviderResult("", Usage(1, 1), "tool_calls", tool_calls=(call,))
    client = ModelClient(load_settings(start=workspace))
    with (
        scripted("sql-loop", [looping]) as ref,
        SqlSource(catalogue) as source,
        pytest.raises(ModelError, match="after 2 rounds") as caught,
    ):
        answer_with_sql_sync(client, "?", source, model=ref, max_rounds=2)
    one_line(caught.value)


def test_tool_fields_of_a_message_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="tool fields"):
        ChatRequest.of("scripted/echo", [{"role": "assistant", "content": "", "tool_calls": [{"id": "x"}]}])
    with pytest.raises(InvalidInputError, match="tool fields"):
        ChatRequest.of("scripted/echo", [{"role": "tool", "content": "[]", "tool_call_id": 7}])  # type: ignore[typeddict-item]


def test_long_texts_are_cut_for_the_model() -> None:
    result = SqlResult(["doc"], [("x" * 5000,)], False, 0.0)
    cell = result.to_dict()["rows"][0][0]
    assert cell.startswith("x" * 2000) and cell.endswith("(5000 characters in all)") and len(cell) < 2100


def test_tool_definition_and_rows_as_context(source: SqlSource) -> None:
    tool = sql_tool(source, name="shop_db")
    fn = tool["function"]
    assert tool["type"] == "function" and fn["name"] == "shop_db"
    assert fn["parameters"]["required"] == ["sql"] and "products(" in fn["description"]
    table = rows_as_context(SqlResult(["name", "note"], [("a|b", None), ("c", "two\nlines")], True, 0.0))
    assert table.splitlines() == [
        "| name | note |",
        "|---|---|",
        "| a\\|b | NULL |",
        "| c | two lines |",
        "(only the first 2 rows; there were more)",
    ]
