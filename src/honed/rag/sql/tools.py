"""The tool loop: the question goes to the model with `sql_tool`; each tool call is run and its rows (or its
error, so the model can fix its query) go back as a `tool` message, until the model answers in text."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from honed.errors import HonedError, InvalidInputError, ModelError
from honed.models.client import ModelClient, synchronous
from honed.models.types import ChatRequest, Completion, Message
from honed.rag.sql.results import SqlAnswer, SqlCall
from honed.rag.sql.source import SqlSource

_SCHEMA_CHARS = 12_000  # a tool description longer than this costs more prompt than it helps
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


# For scripts.
answer_with_sql_sync = synchronous(answer_with_sql, lambda client: client, name="answer_with_sql_sync")
