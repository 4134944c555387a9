"""`stream: true` on `/v1/chat/completions`: server-sent events in OpenAI's `chat.completion.chunk` format.

The first chunk carries the assistant role, then one chunk per piece of text as `ModelClient.stream` gives
it (the local model's tokens as they are decoded; another endpoint's deltas as they arrive), then one with
the finish reason (and the tool calls, whole), then, when the request set `stream_options.include_usage`,
one with empty choices and the usage, and `data: [DONE]`. The call is logged like any other; its log id,
which no header can carry once the body has begun, is the `honed_log_id` field of the last chunk.

An error before the first piece is an ordinary HTTP error (the status and OpenAI's error body, as without
streaming); one after it is an `error` event, as OpenAI sends, and the stream ends.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Any

from fastapi.responses import StreamingResponse

from honed.errors import HonedError, OutputParseError
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, Completion
from honed.serve.responses import status_for


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


async def stream_response(
    client: ModelClient,
    request: ChatRequest,
    model_name: str,
    *,
    include_usage: bool,
    context: Callable[[], AbstractContextManager[Any]],
) -> StreamingResponse:
    """The streaming response for `request`; raises the call's error if it fails before its first piece.

    `context()` is entered around each step of the call (the log context: the step that ends the call
    logs it, and a context manager cannot span the yields of a response body run by another task)."""
    pieces = client.stream(request)

    async def step() -> str | Completion | None:
        with context():
            try:
                return await anext(pieces)
            except StopAsyncIteration:
                return None
            except OutputParseError as exc:
                # Asked for JSON, an OpenAI server still returns the text and leaves parsing to the caller.
                if isinstance(exc.completion, Completion):
                    return exc.completion
                raise

    first = await step()  # a failure here is an HTTP error, raised to the app's handlers
    chunk_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "choices": choices,
        }
        return _event({**body, **extra})

    def delta(content: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

    async def body() -> AsyncIterator[bytes]:
        yield chunk(delta({"role": "assistant", "content": ""}))
        item = first
        try:
            while isinstance(item, str):
                yield chunk(delta({"content": item}))
                item = await step()
        except HonedError as exc:
            status, kind, code = status_for(exc)
            message = exc.one_line()
            yield _event({"error": {"message": message, "type": kind, "code": code, "status": status}})
            return
        if item is None:  # cannot happen: the client's stream ends with its completion
            return
        finish, last = item.finish_reason or "stop", {}
        if item.tool_calls:
            finish = "tool_calls"
            last = {
                "tool_calls": [
                    {
                        "index": i,
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for i, c in enumerate(item.tool_calls)
                ]
            }
        ids = {"honed_log_id": item.log_id} if item.log_id else {}
        yield chunk(delta(last, finish), **({} if include_usage else ids))
        if include_usage:
            usage = {
                "prompt_tokens": item.usage.input_tokens,
                "completion_tokens": item.usage.output_tokens,
                "total_tokens": item.usage.input_tokens + item.usage.output_tokens,
            }
            yield chunk([], usage=usage, **ids)
        yield b"data: [DONE]\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
