"""Which SQL functions a model's query may call: an allowlist per database, everything else refused.

A function is where a read-only query reaches outside itself: PostgreSQL's advisory locks outlive the
transaction, `pg_terminate_backend` ends other sessions, `pg_read_file` reads the server's files,
`query_to_xml` runs SQL the table check never sees; SQLite's `fts3_tokenizer` hands out (and takes) raw
pointers. A denylist misses the next one, so only functions that compute a value from their arguments (and
the rows) are allowed.

SQLite asks its authorizer about every function a statement calls, so the list is enforced there, by the
database, whatever the spelling. PostgreSQL has no such hook: `check_pg_calls` finds every call in the
tokens, spelled the way the server resolves it (a quoted name as written, an unquoted one folded to lower
case, `U&"..."` decoded, `pg_catalog.name`, and the attribute form `(x).name`, which also calls a function).
A name it cannot tell apart from a call is refused. The role checks in `honed.rag.sql.postgres` are the
hard limit behind it.
"""

from __future__ import annotations

import re

from honed.errors import InvalidInputError
from honed.rag.sql.lexer import Token, at

# -- SQLite -----------------------------------------------------------------------------------------------

#: SQLite's pure built-ins. Not here: load_extension, fts3_tokenizer, fts5 (pointers), sqlite_compileoption_*,
#: changes(), last_insert_rowid(), json_patch/jsonb_patch (quadratic in their arguments' size). randomblob
#: and zeroblob are here because the connection's length limit caps them; instr, replace and the two-argument
#: trims are wrapped by the source so that none runs in quadratic time (see `honed.rag.sql.sqlite`).
SQLITE_FUNCTIONS = frozenset(
    # core scalars
    "abs char coalesce concat concat_ws format glob hex ifnull iif instr length like likelihood likely "  # noqa: SIM905
    "lower ltrim max min nullif octet_length printf quote random randomblob replace round rtrim sign "
    "soundex sqlite_version substr substring trim typeof unhex unicode unlikely upper zeroblob "
    # dates
    "date time datetime julianday unixepoch strftime timediff "
    # aggregates and windows
    "avg count group_concat string_agg sum total row_number rank dense_rank percent_rank cume_dist ntile "
    "lag lead first_value last_value nth_value "
    # math
    "acos acosh asin asinh atan atan2 atanh ceil ceiling cos cosh degrees exp floor ln log log10 log2 mod "
    "pi pow power radians sin sinh sqrt tan tanh trunc "
    # JSON readers and builders (-> and ->> are JSON functions to the authorizer)
    "-> ->> json json_array json_array_length json_error_position json_extract json_insert json_object "
    "json_pretty json_quote json_remove json_replace json_set json_type json_valid json_group_array "
    "json_group_object jsonb jsonb_array jsonb_extract jsonb_insert jsonb_object jsonb_remove "
    "jsonb_replace jsonb_set jsonb_group_array jsonb_group_object "
    # full-text search: the MATCH operator and the FTS3/4/5 ranking and snippet functions
    "match highlight snippet bm25 offsets matchinfo".split()
)

# -- PostgreSQL -------------------------------------------------------------------------------------------

#: PostgreSQL built-ins that compute a value (pg_catalog). Not here, among others: set_config, setseed,
#: nextval/setval, pg_sleep, pg_advisory_*, pg_terminate_backend, pg_cancel_backend, pg_read_*file,
#: pg_ls_*, pg_stat_file, lo_*, dblink*, query_to_xml and the other *_to_xml, ts_stat (they run SQL),
#: xml functions, and every function the database defines.
PG_FUNCTIONS = frozenset(
    # math
    "abs cbrt ceil ceiling degrees div exp factorial floor gcd lcm ln log log10 min_scale mod pi power "  # noqa: SIM905
    "radians random round scale sign sqrt trim_scale trunc width_bucket acos acosd asin asind atan atand "
    "atan2 atan2d cos cosd cot cotd sin sind tan tand sinh cosh tanh asinh acosh atanh "
    # strings
    "ascii bit_length btrim char_length character_length chr concat concat_ws convert_from decode encode "
    "format initcap left length like lower lpad ltrim md5 octet_length overlay position quote_ident "
    "quote_literal quote_nullable regexp_count regexp_instr regexp_like regexp_match regexp_matches "
    "regexp_replace regexp_split_to_array regexp_split_to_table regexp_substr repeat replace reverse right "
    "rpad rtrim sha224 sha256 sha384 sha512 split_part starts_with string_to_array string_to_table strpos "
    "substr substring to_ascii to_hex translate unistr upper get_bit get_byte bit_count is_normalized "
    # formatting, dates and times
    "to_char to_date to_number to_timestamp age clock_timestamp date_bin date_part date_trunc extract "
    "isfinite justify_days justify_hours justify_interval make_date make_interval make_time "
    "make_timestamp make_timestamptz now statement_timestamp timeofday transaction_timestamp timezone "
    # set-returning
    "generate_series generate_subscripts unnest "
    # aggregates and windows
    "any_value array_agg avg bit_and bit_or bit_xor bool_and bool_or count every json_agg jsonb_agg "
    "json_object_agg jsonb_object_agg max min range_agg range_intersect_agg string_agg sum corr covar_pop "
    "covar_samp regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy "
    "regr_syy stddev stddev_pop stddev_samp variance var_pop var_samp mode percentile_cont "
    "percentile_disc row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value "
    "last_value nth_value num_nonnulls num_nulls "
    # arrays
    "array_append array_cat array_dims array_length array_lower array_ndims array_position "
    "array_positions array_prepend array_remove array_replace array_to_string array_upper cardinality "
    "trim_array array_to_json "
    # JSON
    "to_json to_jsonb row_to_json json_build_array json_build_object jsonb_build_array jsonb_build_object "
    "json_object jsonb_object json_array_elements json_array_elements_text jsonb_array_elements "
    "jsonb_array_elements_text json_array_length jsonb_array_length json_each json_each_text jsonb_each "
    "jsonb_each_text json_extract_path json_extract_path_text jsonb_extract_path jsonb_extract_path_text "
    "json_object_keys jsonb_object_keys json_populate_record json_populate_recordset "
    "jsonb_populate_record jsonb_populate_recordset json_to_record json_to_recordset jsonb_to_record "
    "jsonb_to_recordset json_strip_nulls jsonb_strip_nulls json_typeof jsonb_typeof jsonb_set "
    "jsonb_set_lax jsonb_insert jsonb_pretty jsonb_path_exists jsonb_path_match jsonb_path_query "
    "jsonb_path_query_array jsonb_path_query_first "
    # text search
    "to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery ts_rank ts_rank_cd "
    "ts_headline setweight strip numnode querytree tsvector_to_array array_to_tsvector ts_delete ts_filter "
    # ranges
    "isempty lower_inc upper_inc lower_inf upper_inf range_merge int4range int8range numrange tsrange "
    "tstzrange daterange "
    # type-named conversions, session facts, TABLESAMPLE methods
    "text int2 int4 int8 float4 float8 date bool pg_typeof current_setting current_database "
    "current_schema overlaps bernoulli system".split()
)

# Unquoted words that never name a function when a parenthesis follows them (PostgreSQL's reserved and
# "column name" keywords): `IN (`, `CAST(`, `ARRAY(`, `EXTRACT(`, `ROW(`, a type's modifiers `NUMERIC(8, 2)`.
# The XML ones are left out on purpose: their calls are refused like any function not allowed.
_PG_SYNTAX = frozenset(
    "ALL ANALYSE ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC BOTH CASE CAST CHECK COLLATE COLUMN CONSTRAINT "  # noqa: SIM905
    "CREATE CURRENT_CATALOG CURRENT_DATE CURRENT_ROLE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DEFAULT "
    "DEFERRABLE DESC DISTINCT DO ELSE END EXCEPT FALSE FETCH FOR FOREIGN FROM GRANT GROUP HAVING IN "
    "INITIALLY INTERSECT INTO LATERAL LEADING LIMIT LOCALTIME LOCALTIMESTAMP NOT NULL OFFSET ON ONLY OR "
    "ORDER PLACING PRIMARY REFERENCES RETURNING SELECT SESSION_USER SOME SYMMETRIC TABLE THEN TO TRAILING "
    "TRUE UNION UNIQUE USER USING VARIADIC WHEN WHERE WINDOW WITH "
    "BETWEEN BIGINT BIT BOOLEAN CHAR CHARACTER COALESCE DEC DECIMAL EXISTS EXTRACT FLOAT GREATEST GROUPING "
    "INOUT INT INTEGER INTERVAL LEAST NATIONAL NCHAR NONE NORMALIZE NULLIF NUMERIC OUT OVERLAY POSITION "
    "PRECISION REAL ROW SETOF SMALLINT SUBSTRING TIME TIMESTAMP TREAT TRIM VALUES VARCHAR".split()
)
# Keywords that may also name a function ("type_func_name" keywords): `a JOIN (`, `x LIKE (`, but
# `like(x, y)` is a call. A parenthesis after one is syntax when an operand comes right before it.
_PG_FUNC_KEYWORDS = frozenset(
    "AUTHORIZATION BINARY COLLATION CONCURRENTLY CROSS CURRENT_SCHEMA FREEZE FULL ILIKE INNER IS ISNULL "  # noqa: SIM905
    "JOIN LEFT LIKE NATURAL NOTNULL OUTER OVERLAPS RIGHT SIMILAR TABLESAMPLE VERBOSE".split()
)
# Words that start another clause: a GROUP BY list does not reach back past them.
_CLAUSES = frozenset(
    "SELECT FROM WHERE HAVING ORDER WINDOW LIMIT OFFSET FETCH UNION INTERSECT EXCEPT ON USING WITH".split()  # noqa: SIM905
)
_JOIN_KINDS = frozenset({"LEFT", "RIGHT", "FULL", "INNER", "CROSS", "NATURAL", "OUTER"})
_NAME_BYTES = 63  # PostgreSQL cuts longer identifiers to this (NAMEDATALEN - 1)
_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


def check_pg_calls(tokens: list[Token]) -> None:
    """Raise InvalidInputError unless every function the PostgreSQL query calls is in PG_FUNCTIONS."""
    for k, t in enumerate(tokens):
        if t.kind not in ("word", "ident"):
            continue
        if at(tokens, k - 1, "."):
            # (expr).name and arr[1].name call name(expr) when no field has that name.
            if at(tokens, k - 2, ")", "]"):
                _require(t, "attribute")
            continue  # a later part of a dotted name: seen with its first part
        parts = [t]
        j = k
        while at(tokens, j + 1, ".") and j + 2 < len(tokens) and tokens[j + 2].kind in ("word", "ident"):
            j += 2
            parts.append(tokens[j])
        called = at(tokens, j + 1, "(")
        if len(parts) >= 3 and not called:
            # a.b.c: schema.table.column, or table.column then a field or a function in attribute form.
            for part in parts[2:]:
                _require(part, "attribute")
        elif called and len(parts) == 2:
            if _server_name(parts[0]) != "pg_catalog":
                raise InvalidInputError(
                    f"the function {_shown(parts[0])}.{_shown(parts[1])}() is not allowed",
                    hint="only built-in functions are allowed: leave out the schema (or use pg_catalog)",
                )
            _require(parts[1], "call")
        elif called and len(parts) > 2:
            raise InvalidInputError(
                f"the function {'.'.join(_shown(p) for p in parts)}() is not allowed",
                hint="only built-in functions are allowed: leave out the database and schema",
            )
        elif called and not _is_syntax(tokens, k):
            _require(t, "call")


def _is_syntax(tokens: list[Token], k: int) -> bool:
    """Whether `name (` at `k` is not a function call: a keyword's parenthesis, an alias's or a CTE's
    column list, a type's modifiers. Anything not recognised here is taken for a call."""
    t, prev = tokens[k], tokens[k - 1] if k else None
    word = t.text if t.kind == "word" else None
    if word in _PG_SYNTAX:
        return True
    if prev is not None and prev.kind == "word" and prev.text == "AS":
        return True  # AS alias(a, b), CAST(x AS numeric(8, 2)), AS MATERIALIZED (
    if at(tokens, k - 1, ":") and at(tokens, k - 2, ":"):
        return True  # x::numeric(8, 2)
    if word in _PG_FUNC_KEYWORDS:
        return _after_operand(tokens, k) or (word == "JOIN" and at(tokens, k - 1, *_JOIN_KINDS, kind="word"))
    if word in ("OVER", "FILTER", "REPEATABLE"):
        return at(tokens, k - 1, ")")  # count(*) OVER (...), TABLESAMPLE m(1) REPEATABLE (7)
    if word == "MATERIALIZED":
        return at(tokens, k - 1, "NOT", kind="word") and at(tokens, k - 2, "AS", kind="word")
    if word == "ZONE":
        return at(tokens, k - 1, "TIME", kind="word") and at(tokens, k - 2, "AT", kind="word")
    if word == "SETS":
        return at(tokens, k - 1, "GROUPING", kind="word")
    if word == "VARYING":
        return at(tokens, k - 1, "CHARACTER", "CHAR", "BIT", kind="word")
    if word in ("ROLLUP", "CUBE"):  # a grouping set only as a whole item of the list, not in an expression
        after = _closing(tokens, k + 1) + 1
        return (
            (at(tokens, k - 1, ",") or at(tokens, k - 1, "BY", "DISTINCT", "ALL", kind="word"))
            and (
                after >= len(tokens)
                or at(tokens, after, ",", ")")
                or at(tokens, after, *_CLAUSES, kind="word")
            )
            and _in_group_by(tokens, k)
        )
    return _is_cte_columns(tokens, k)


def _after_operand(tokens: list[Token], k: int) -> bool:
    if k == 0:
        return False
    prev = tokens[k - 1]
    if prev.kind in ("ident", "number", "string"):
        return True
    if prev.kind == "punct":
        return prev.text in (")", "]")
    return prev.text not in _PG_SYNTAX and prev.text not in _PG_FUNC_KEYWORDS


def _closing(tokens: list[Token], k: int) -> int:
    """The index of the parenthesis that closes the one at `k` (the last token when none does)."""
    depth = 0
    for j in range(k, len(tokens)):
        if at(tokens, j, "("):
            depth += 1
        elif at(tokens, j, ")"):
            depth -= 1
            if depth == 0:
                return j
    return len(tokens) - 1


def _in_group_by(tokens: list[Token], k: int) -> bool:
    """Whether `k` is in a GROUP BY list at its own parenthesis depth (`GROUP BY ROLLUP (a, b)`)."""
    depth = 0
    for j in range(k - 1, -1, -1):
        if at(tokens, j, ")"):
            depth += 1
        elif at(tokens, j, "("):
            if depth == 0:
                return False
            depth -= 1
        elif depth == 0 and at(tokens, j, "BY", kind="word"):
            return at(tokens, j - 1, "GROUP", kind="word")
        elif depth == 0 and at(tokens, j, *_CLAUSES, kind="word"):
            return False
    return False


def _is_cte_columns(tokens: list[Token], k: int) -> bool:
    """`WITH name(a, b) AS (SELECT ...)`: the names after WITH (or a comma) whose list of plain names is
    followed by AS and a query."""
    if not (at(tokens, k - 1, "WITH", "RECURSIVE", kind="word") or at(tokens, k - 1, ",")):
        return False
    j = k + 2
    while j < len(tokens) and tokens[j].kind in ("word", "ident"):
        if at(tokens, j + 1, ")"):
            j += 2
            break
        if not at(tokens, j + 1, ","):
            return False
        j += 2
    else:
        return False
    if not at(tokens, j, "AS", kind="word"):
        return False
    j += 1
    while at(tokens, j, "NOT", "MATERIALIZED", kind="word"):
        j += 1
    return at(tokens, j, "(") and (
        at(tokens, j + 1, "SELECT", "VALUES", "WITH", "TABLE", kind="word") or at(tokens, j + 1, "(")
    )


def _server_name(t: Token) -> str:
    """The name as PostgreSQL looks it up: folded (already, for a word), cut to 63 bytes."""
    raw = t.name.encode("utf-8")
    if len(raw) <= _NAME_BYTES:
        return t.name
    return raw[:_NAME_BYTES].decode("utf-8", errors="ignore")


def _require(t: Token, how: str) -> None:
    name = _server_name(t)
    if name in PG_FUNCTIONS:
        return
    if how == "attribute":
        raise InvalidInputError(
            f"{_shown(t)} after a '.' can call the function {_shown(t)}(), which is not allowed",
            hint="select a field through its table's alias (t.column), not (expression).field",
        )
    raise InvalidInputError(
        f"the function {_shown(t)}() is not allowed in a query on this database",
        hint="only built-in functions that compute a value are allowed (lower, count, date_trunc, ...); "
        "if it is an alias's column list, write AS name(...)",
    )


def _shown(t: Token) -> str:
    name = _server_name(t)
    return name if _PLAIN.fullmatch(name) else repr(name)
