"""The text check: one read-only SELECT, naming only allowed tables.

It gives the model a clear error before anything runs; it is not what keeps the data safe (the read-only
connection is). The function allowlists, which the text check enforces on PostgreSQL, are in
`honed.rag.sql.functions`.
"""

from __future__ import annotations

from honed.errors import InvalidInputError
from honed.rag.sql import lexer
from honed.rag.sql.functions import check_pg_calls
from honed.rag.sql.lexer import Dialect, Token, at

#: keywords that never belong in a read-only query (a data-modifying CTE, SELECT INTO, ...)
_FORBIDDEN_WORDS = frozenset(
    "INSERT UPDATE DELETE MERGE UPSERT ALTER DROP CREATE ATTACH DETACH PRAGMA COPY GRANT "  # noqa: SIM905
    "REVOKE VACUUM TRUNCATE REINDEX INTO CALL EXECUTE PREPARE DEALLOCATE LISTEN NOTIFY "
    "REFRESH CLUSTER".split()
)
# Where FROM is part of a function's arguments (EXTRACT(year FROM d)), not a list of tables.
_FROM_FUNCTIONS = frozenset({"EXTRACT", "SUBSTRING", "TRIM", "OVERLAY", "POSITION"})
# Words that end a table reference in a FROM list (so they are not taken for an alias).
_CLAUSE_WORDS = frozenset(
    "WHERE JOIN INNER LEFT RIGHT FULL CROSS NATURAL OUTER ON USING GROUP ORDER LIMIT "  # noqa: SIM905
    "OFFSET HAVING WINDOW UNION INTERSECT EXCEPT FETCH FOR RETURNING TABLESAMPLE LATERAL "
    "ONLY".split()
)


def check_select(sql: str, dialect: Dialect, tables: frozenset[str] | None = None) -> list[Token]:
    """Raise InvalidInputError unless `sql` is one read-only SELECT (or WITH ... SELECT) that names only
    `tables` (lower-case; "schema.table" or "table") after FROM and JOIN, when given, and on PostgreSQL
    calls only allowed functions. Returns the tokens, the trailing semicolons dropped."""
    tokens = lexer.tokens(sql, dialect)
    while at(tokens, len(tokens) - 1, ";"):
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
    for t in tokens:
        if t.kind == "word" and t.text in _FORBIDDEN_WORDS:
            raise InvalidInputError(
                f"{t.text} is not allowed in a read-only query",
                hint='only read with SELECT; quote a column named like a keyword ("update")',
            )
    if dialect == "postgresql":
        check_pg_calls(tokens)
    if tables is not None:
        _check_tables(tokens, tables)
    return tokens


def placeholders(tokens: list[Token]) -> list[Token]:
    """The `:name` parameters (a ':' touching a word; not a PostgreSQL cast `x::type`), as the name
    tokens whose `start - 1` is the colon."""
    found = []
    for k in range(len(tokens) - 1):
        colon, name = tokens[k], tokens[k + 1]
        if not (at(tokens, k, ":") and name.kind == "word" and name.start == colon.end):
            continue
        if at(tokens, k - 1, ":") and tokens[k - 1].end == colon.start:
            continue
        found.append(name)
    return found


def _name_at(tokens: list[Token], k: int) -> tuple[str, int] | None:
    """A possibly qualified name (schema.table) starting at `k`, lower-cased, and the index after it."""
    parts: list[str] = []
    while k < len(tokens) and tokens[k].kind in ("word", "ident"):
        parts.append(tokens[k].text.lower())
        if at(tokens, k + 1, ".") and k + 2 < len(tokens) and tokens[k + 2].kind in ("word", "ident"):
            k += 2
            continue
        k += 1
        break
    return (".".join(parts), k) if parts else None


def _cte_names(tokens: list[Token]) -> set[str]:
    """The names WITH defines (`name AS (`, `name(cols) AS (`), which FROM may then name freely."""
    names: set[str] = set()
    for k in range(len(tokens)):
        if not at(tokens, k, "AS", kind="word"):
            continue
        after = k + 1
        while at(tokens, after, "NOT", "MATERIALIZED", kind="word"):
            after += 1
        if not at(tokens, after, "("):
            continue
        j = k - 1
        if at(tokens, j, ")"):  # name(col, ...) AS (
            depth = 0
            while j >= 0:
                depth += {")": 1, "(": -1}.get(tokens[j].text, 0) if tokens[j].kind == "punct" else 0
                if depth == 0:
                    break
                j -= 1
            j -= 1
        before_ok = at(tokens, j - 1, "WITH", "RECURSIVE", kind="word") or at(tokens, j - 1, ",")
        if j >= 1 and tokens[j].kind in ("word", "ident") and before_ok:
            names.add(tokens[j].text.lower())
    return names


def _check_tables(tokens: list[Token], allowed: frozenset[str]) -> None:
    """Refuse a table after FROM, JOIN or TABLE (PostgreSQL's `(TABLE t)`) that is neither allowed nor a
    CTE. A subquery in FROM is skipped here and checked when the scan reaches its own FROM."""
    ctes = _cte_names(tokens)
    parens: list[str] = []  # for each open parenthesis, the word before it
    for k in range(len(tokens)):
        if at(tokens, k, "("):
            parens.append(tokens[k - 1].text if k and tokens[k - 1].kind == "word" else "")
        elif at(tokens, k, ")"):
            if parens:
                parens.pop()
        elif at(tokens, k, "FROM", "JOIN", "TABLE", kind="word"):
            if (parens and parens[-1] in _FROM_FUNCTIONS) or at(tokens, k - 1, "DISTINCT", kind="word"):
                continue  # EXTRACT(year FROM d), a IS DISTINCT FROM b
            j = k + 1
            while j < len(tokens):
                while at(tokens, j, "ONLY", "LATERAL", kind="word"):
                    j += 1
                found = _name_at(tokens, j)
                if found is None:
                    break
                name, j = found
                if at(tokens, j, "("):
                    break  # a table function such as generate_series(...)
                if name not in ctes and not is_allowed(name, allowed):
                    raise InvalidInputError(
                        f"the query reads table {name!r}, which is not allowed",
                        hint=f"use only {', '.join(sorted(allowed)) or '(none)'}",
                    )
                if at(tokens, j, "AS", kind="word"):
                    j += 1
                if j < len(tokens) and (
                    tokens[j].kind == "ident"
                    or (tokens[j].kind == "word" and tokens[j].text not in _CLAUSE_WORDS)
                ):
                    j += 1  # an alias
                if not at(tokens, j, ","):
                    break
                j += 1


def is_allowed(name: str, allowed: frozenset[str]) -> bool:
    """`table` in the allowlist matches it in any schema; `schema.table` matches that or a bare `table`."""
    bare = name.rsplit(".", 1)[-1]
    return name in allowed or bare in allowed or any(a.rsplit(".", 1)[-1] == name for a in allowed)


# -- the source -------------------------------------------------------------------------------------------
