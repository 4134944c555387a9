"""Structured retrieval: a read-only SQL database the model queries through a tool.

A `SqlSource` runs one SELECT at a time against SQLite or PostgreSQL and hands back at most `row_limit`
rows. Letting a model write SQL is only safe if the database cannot be changed, and nothing outside it
reached, whatever it writes, so safety comes in layers, and the inner ones are the guarantee:

1. the connection can only read. SQLite opens the file with `mode=ro` and `PRAGMA query_only`, and an
   authorizer allows only reading the allowed tables and calling an allowlist of pure built-in functions
   (`sqlite`). PostgreSQL runs every query in a READ ONLY transaction (a server-side cursor, which accepts
   only a query) that is always rolled back, and refuses to connect as a role that could reach files,
   programs or other sessions (`postgres`);
2. a check of the text as the server tokenizes it (`lexer`, `check`): one statement, starting with SELECT
   or WITH, no data-modifying keyword, only the allowed tables after FROM/JOIN, and on PostgreSQL only
   allowlisted functions (`functions`): PostgreSQL has no authorizer, so there this check is what keeps
   advisory locks, `query_to_xml` and their kind out;
3. limits (`limits`): a time limit (PostgreSQL `statement_timeout`; SQLite a progress handler, with values
   capped in size so that no one function call outlasts it), a row limit and a byte budget for the
   result, counted as rows are fetched.

The `tables` allowlist is best effort on PostgreSQL (a view can get around the text check); for a hard
guarantee connect as a role that may SELECT only what the model may see. `answer_with_sql` (`tools`) is
the tool loop.
"""

from honed.rag.sql.results import SqlAnswer, SqlCall, SqlResult, rows_as_context
from honed.rag.sql.source import SqlSource
from honed.rag.sql.tools import answer_with_sql, answer_with_sql_sync, sql_tool

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
