"""Tools: sent to OpenAI-compatible endpoints, tool calls read back and cached; refused where unsupported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from honed.config import load_settings
from honed.errors import InvalidInputError
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, ProviderResult, Usage
from honed.prompts import Prompt
from honed.store import Store
from honed.testing import scripted
from tests.support.stub_openai import Reply, StubServer, stub_openai

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with stub_openai() as s:
        yield s


def tool_reply() -> dict[str, object]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28},
    }


@pytest.mark.parametrize("transport", ["aiohttp", "sdk"])
def test_tools_are_sent_and_tool_calls_come_back_and_are_cached(
    workspace: Path, stub: StubServer, transport: str
) -> None:
    (workspace / "honed.toml").write_text(
        f'[endpoints.stub]\nprovider = "openai"\nbase_url = "{stub.base_url}"\ntransport = "{transport}"\n'
    )
    settings = load_settings(start=workspace)
    stub.script = [Reply(body=tool_reply())]
    prompt = Prompt.model_validate(
        {
            "name": "w",
            "model": "stub/m",
            "messages": [{"role": "user", "content": "Weather in {{ city }}?"}],
            "tools": [WEATHER],
        }
    )
    with Store.open(settings.resolved_database_url()) as store:
        client = ModelClient(settings, store=store)
        first = client.run([prompt.request({"city": "Paris"})])[0]
        second = client.run([prompt.request({"city": "Paris"})])[0]
    assert stub.requests[0]["body"]["tools"] == [WEATHER]
    assert not isinstance(first, Exception) and not isinstance(second, Exception)
    assert first.tool_calls == ({"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},)
    assert second.cached and second.tool_calls == first.tool_calls
    assert len(stub.requests) == 1
    assert prompt.request({"city": "Paris"}).key() != ChatRequest.of("stub/m", "Weather in Paris?").key()


def test_a_provider_without_tool_support_refuses_instead_of_dropping_them(workspace: Path) -> None:
    client = ModelClient(load_settings(start=workspace))
    request = ChatRequest.of("local/smollm2-135m-instruct", "weather?", tools=[WEATHER])
    out = client.run([request])[0]
    assert isinstance(out, InvalidInputError) and "cannot call tools" in str(out)


def test_scripted_model_can_return_tool_calls(workspace: Path) -> None:
    result = ProviderResult(
        "", Usage(1, 1), "tool_calls", tool_calls=({"id": "1", "name": "f", "arguments": "{}"},)
    )
    with scripted("tooly", [result]) as model:
        out = ModelClient(load_settings(start=workspace)).run([ChatRequest.of(model, "go", tools=[WEATHER])])[
            0
        ]
    assert not isinstance(out, Exception) and out.tool_calls is not None and out.tool_calls[0]["name"] == "f"
