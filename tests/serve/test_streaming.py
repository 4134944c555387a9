"""`stream: true` through `honed serve`'s app on a real socket, read by the official openai SDK. The served
endpoint is an OpenAI-compatible stub on 127.0.0.1 that streams (OpenAI itself cannot be reached here), so
honed relays pieces it really receives; the local model streaming through a `honed serve` process is in
test_serve.py (slow)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import honed
from honed.api import Honed
from honed.serve import create_app
from tests.support.servers import running
from tests.support.stub_openai import Reply, StubServer, stub_openai

MESSAGES: list[Any] = [{"role": "user", "content": "stream this please"}]


@pytest.fixture
def served(workspace: Path) -> Iterator[tuple[StubServer, Honed, openai.OpenAI]]:
    with stub_openai() as stub:
        (workspace / "honed.toml").write_text(
            f'[endpoints.up]\nprovider = "openai"\nbase_url = "{stub.base_url}"\n'
            "[retry]\nbase_delay_s = 0.01\nmax_attempts = 2\n"
        )
        h = honed.connect(workspace)
        try:
            app = create_app(h.client, served_endpoints=("up",), store=h.store)
            with running(app) as base:
                yield stub, h, openai.OpenAI(base_url=base, api_key="unused", max_retries=0)
        finally:
            h.close()


def test_the_sdk_reads_pieces_usage_and_the_log_id(
    served: tuple[StubServer, Honed, openai.OpenAI],
) -> None:
    stub, h, sdk = served
    stream = sdk.chat.completions.create(
        model="gpt-x", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == ["echo:", " stream", " this", " please"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (7, 4, 11)
    assert stub.requests[0]["body"]["stream"] is True  # relayed as a stream, not fetched whole
    log_id = (chunks[-1].model_extra or {})["honed_log_id"]
    h.flush_logs()
    [logged] = h.store.logs.query()
    assert logged["id"] == log_id and logged["output"] == "echo: stream this please"
    assert logged["source"] == "serve"

    # Without include_usage there is no usage chunk; the finish chunk carries the log id.
    chunks = list(sdk.chat.completions.create(model="gpt-x", messages=MESSAGES, stream=True))
    assert all(c.usage is None for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"
    assert (chunks[-1].model_extra or {})["honed_log_id"]


def test_tool_calls_come_whole_in_the_last_chunk(served: tuple[StubServer, Honed, openai.OpenAI]) -> None:
    stub, _, sdk = served
    call = {"index": 0, "id": "c1", "function": {"name": "weather", "arguments": '{"city": '}}
    rest = {"index": 0, "function": {"arguments": '"Paris"}'}}
    stub.script = [
        Reply(
            events=[
                {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]},
                {"choices": [{"index": 0, "delta": {"tool_calls": [rest]}}]},
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
            ]
        )
    ]
    chunks = list(sdk.chat.completions.create(model="gpt-x", messages=MESSAGES, stream=True))
    last = chunks[-1].choices[0]
    assert last.finish_reason == "tool_calls" and last.delta.tool_calls is not None
    [tool_call] = last.delta.tool_calls
    assert tool_call.id == "c1" and tool_call.function is not None
    assert (tool_call.function.name, tool_call.function.arguments) == ("weather", '{"city": "Paris"}')


def test_errors_before_the_first_piece_are_http_errors_and_after_it_error_events(
    served: tuple[StubServer, Honed, openai.OpenAI],
) -> None:
    stub, _, sdk = served
    stub.script = [Reply(status=400, body={"error": {"message": "no such model"}})]
    with pytest.raises(openai.APIStatusError) as caught:
        list(sdk.chat.completions.create(model="gpt-x", messages=MESSAGES, stream=True))
    assert caught.value.status_code == 502 and "no such model" in caught.value.message

    stub.script = [Reply(events=[{"choices": [{"index": 0, "delta": {"content": "half"}}]}, {"error": {}}])]
    seen: list[str] = []
    with pytest.raises(openai.APIError, match="failed mid-stream"):
        for chunk in sdk.chat.completions.create(model="gpt-x", messages=MESSAGES, stream=True):
            seen += [c.delta.content or "" for c in chunk.choices]
    assert "half" in seen

    base = str(sdk.base_url).rstrip("/")
    body = {"model": "gpt-x", "messages": MESSAGES, "stream": True, "n": 2}
    reply = httpx.post(f"{base}/chat/completions", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "n"
