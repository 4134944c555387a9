"""Reading a JSON request body without stalling or crashing the server.

Every route that takes JSON reads it through `read_json`: the bytes (at most `max_body_bytes`, enforced by
`RequestGuard` as they arrive) are parsed in a worker thread, so an 8 MB body does not hold up the event
loop serving other requests. Nesting deeper than `max_depth` is a 400: Python's parser raises
RecursionError near 1,000 levels, and anything past a few dozen would only overflow the stack later, in
validation, hashing or a recursive walk over stored records.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from honed.serve.responses import HttpError


async def read_json(request: Request, max_depth: int) -> Any:
    """The request body as JSON, parsed off the event loop; 400 if it is not JSON or nests too deep."""
    raw = await request.body()
    return await run_in_threadpool(parse_json, raw, max_depth)


def parse_json(raw: bytes, max_depth: int) -> Any:
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(f"the request body is not JSON: {exc}", status=400, code="invalid_json") from None
    # Each level opens a bracket, so a body with few brackets cannot nest deeply: skip the walk.
    if raw.count(b"[") + raw.count(b"{") > max_depth and nesting_exceeds(value, max_depth):
        raise _too_deep(max_depth)
    return value


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether lists and objects in `value` nest more than `limit` deep (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _too_deep(limit: int) -> HttpError:
    return HttpError(
        f"the request body nests lists and objects more than {limit} deep",
        status=400,
        code="json_too_deep",
        hint="flatten the data, or raise [serve] max_json_depth",
    )
