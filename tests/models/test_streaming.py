"""`ModelClient.stream` against a real HTTP server on 127.0.0.1 speaking OpenAI's server-sent events (the
stub stands in for OpenAI, which cannot be reached here): pieces as they arrive that add up to the
completion, usage from the usage chunk, tool calls put together from fragments, retries only before the
first piece, the cache, the call log, and replies of the wrong shape as errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import honed
from honed.errors import ProviderError
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, Completion
from tests.models.test_openai_provider import client_for
from tests.support.stub_openai import Reply, StubServer, completion, stub_openai


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubServer]:
    monkeypatch.setenv("STUB_KEY", "sk-test-123")
    with stub_openai() as s:
        yield s


def collect(client: ModelClient, request: ChatRequest) -> tuple[list[str], Completion]:
    async def main() -> list[str | Completion]:
        try:
            return [item async for item in client.stream(request)]
        finally:
            await client.aclose_providers()

    *pieces, last = asyncio.run(main())
    assert all(isinstance(p, str) for p in pieces) and isinstance(last, Completion)
    return [str(p) for p in pieces], last


def test_pieces_arrive_as_sent_and_add_up_to_the_completion(workspace: Path, stub: StubServer) -> None:
    client = client_for(workspace, stub.base_url, "aiohttp")
    pieces, done = collect(client, ChatRequest.of("stub/gpt-x", "hello there world"))
    assert pieces == ["echo:", " hello", " there", " world"]
    assert done.text == "echo: hello there world" and not done.cached
    assert (done.usage.input_tokens, done.usage.output_tokens) == (7, 4)  # the usage chunk's figures
    assert done.finish_reason == "stop"
    sent = stub.requests[0]["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_tool_calls_are_put_together_from_their_fragments(workspace: Path, stub: StubServer) -> None:
    def call(**delta: Any) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}

    fragment = {"index": 0, "function": {"arguments": '"Paris"}'}}
    stub.script = [
        Reply(
            events=[
                call(role="assistant", content=None),
                call(tool_calls=[{"index": 0, "id": "c1", "function": {"name": "weather", "arguments": ""}}]),
                call(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
                call(tool_calls=[fragment]),
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
                {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 6}},
            ]
        )
    ]
    client = client_for(workspace, stub.base_url, "aiohttp")
    pieces, done = collect(client, ChatRequest.of("stub/gpt-x", "weather?"))
    assert pieces == [] and done.text == ""
    assert done.tool_calls == ({"id": "c1", "name": "weather", "arguments": '{"city": "Paris"}'},)
    assert done.finish_reason == "tool_calls"


def test_a_failure_before_the_first_piece_is_retried_and_after_it_is_raised(
    workspace: Path, stub: StubServer
) -> None:
    client = client_for(workspace, stub.base_url, "aiohttp")
    stub.script = [Reply(status=503, body={"error": {"message": "busy"}})]
    pieces, done = collect(client, ChatRequest.of("stub/gpt-x", "again"))
    assert len(stub.requests) == 2 and "".join(pieces) == done.text == "echo: again"

    piece = {"choices": [{"index": 0, "delta": {"content": "half an"}}]}
    stub.script = [Reply(events=[piece, {"error": {"message": "the model crashed"}}])]
    with pytest.raises(ProviderError, match="failed mid-stream: the model crashed"):
        collect(client, ChatRequest.of("stub/gpt-x", "crash"))
    assert len(stub.requests) == 3  # not retried: part of an answer was already given


def test_replies_of_the_wrong_shape_are_errors_and_a_plain_reply_is_one_piece(
    workspace: Path, stub: StubServer
) -> None:
    client = client_for(workspace, stub.base_url, "aiohttp")
    # Not JSON is retried as for a plain reply (a proxy's error page), up to the policy's 3 attempts.
    stub.script = [Reply(events=[b"<html>bad gateway</html>"]) for _ in range(3)]
    with pytest.raises(ProviderError, match=r"non-JSON reply.*gave up after 3 attempts"):
        collect(client, ChatRequest.of("stub/gpt-x", "x"))
    stub.script = [Reply(events=[{"choices": "nope"}])]
    with pytest.raises(ProviderError, match="not a chat completion chunk"):
        collect(client, ChatRequest.of("stub/gpt-x", "y"))
    # A server that ignores `stream` and answers with one JSON reply still serves a streaming caller.
    stub.script = [Reply(body=completion("all at once", 3, 3))]
    pieces, done = collect(client, ChatRequest.of("stub/gpt-x", "z"))
    assert pieces == ["all at once"] and done.text == "all at once"


def test_a_server_without_usage_gets_counted_tokens(workspace: Path, stub: StubServer) -> None:
    piece = {"choices": [{"index": 0, "delta": {"content": "three little words"}, "finish_reason": "stop"}]}
    stub.script = [Reply(events=[piece])]
    client = client_for(workspace, stub.base_url, "aiohttp")
    _, done = collect(client, ChatRequest.of("stub/gpt-x", "count me"))
    assert done.usage.input_tokens > 0 and done.usage.output_tokens == 3


def test_a_streamed_call_is_logged_and_cached_like_any_call(workspace: Path, stub: StubServer) -> None:
    client_for(workspace, stub.base_url, "aiohttp")  # writes the endpoint into honed.toml
    h = honed.connect(workspace)
    try:
        request = ChatRequest.of("stub/gpt-x", "remember me")
        pieces, first = collect(h.client, request)
        assert len(pieces) == 3 and first.log_id is not None
        h.client.flush()
        pieces, again = collect(h.client, request)
        assert pieces == ["echo: remember me"] and again.cached and len(stub.requests) == 1
        h.flush_logs()
        [logged] = h.store.logs.query()
        assert logged["id"] == first.log_id and logged["output"] == "echo: remember me"
    finally:
        h.close()
