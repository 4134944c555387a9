"""Chat through `honed serve`: tool calls both ways in OpenAI's shape, and no provider key in any response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import honed
from honed.config import load_settings
from honed.errors import ProviderError
from honed.logs.record import LogRecord
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, ProviderResult, Usage
from honed.serve import create_app
from honed.testing import scripted

# A loopback server answers only to loopback Host names (TestClient's default is "testserver").
LOCAL = "http://127.0.0.1"

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_tool_calls_are_returned_and_accepted_in_openai_shape(tmp_path: Path) -> None:
    seen: list[ChatRequest] = []

    def model(request: ChatRequest) -> ProviderResult:
        seen.append(request)
        if request.messages[-1]["role"] == "tool":
            return ProviderResult("It is 21 °C in Paris.", Usage(20, 8), finish_reason="stop")
        call = {"id": "call_1", "name": "weather", "arguments": '{"city": "Paris"}'}
        return ProviderResult("", Usage(12, 6), finish_reason="tool_calls", tool_calls=(call,))

    client = ModelClient(load_settings(start=tmp_path), use_cache=False)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    with (
        scripted("tools", model) as ref,
        TestClient(create_app(client, served_endpoints=("scripted",)), base_url=LOCAL) as http,
    ):
        reply = http.post(
            "/v1/chat/completions", json={"model": ref, "messages": messages, "tools": [WEATHER]}
        )
        assert reply.status_code == 200, reply.text
        choice = reply.json()["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"] == {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        }
        assert seen[0].tools == (WEATHER,)

        # The client sends the call and its result back, as the SDK's tool loop does.
        messages += [choice["message"], {"role": "tool", "tool_call_id": "call_1", "content": "21 C"}]
        reply = http.post(
            "/v1/chat/completions", json={"model": ref, "messages": messages, "tools": [WEATHER]}
        )
        assert reply.status_code == 200, reply.text
        final = reply.json()["choices"][0]
        assert final["finish_reason"] == "stop" and final["message"]["content"] == "It is 21 °C in Paris."
        assert "tool_calls" not in final["message"]
    assistant, tool = seen[1].messages[1], seen[1].messages[2]
    assert assistant["tool_calls"] == [{"id": "call_1", "name": "weather", "arguments": '{"city": "Paris"}'}]
    assert assistant["content"] == "" and tool["tool_call_id"] == "call_1" and tool["content"] == "21 C"


def test_a_provider_key_echoed_in_an_error_never_reaches_the_client(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-proj-very-secret-123456"
    monkeypatch.setenv("OPENAI_API_KEY", key)

    def leaky(request: ChatRequest) -> ProviderError:
        return ProviderError(f"Incorrect API key provided: {key}", provider="scripted", status=401)

    h = honed.connect(workspace)
    try:
        app = create_app(h.client, served_endpoints=("scripted",), store=h.store)
        body = {"model": "scripted/leaky", "messages": [{"role": "user", "content": "hi"}]}
        with scripted("leaky", leaky), TestClient(app, base_url=LOCAL) as http:
            reply = http.post("/v1/chat/completions", json=body)
            assert reply.status_code == 502 and "Incorrect API key provided: ***" in reply.text
            h.flush_logs()
            [logged] = h.store.logs.query()
            shown = http.get(f"/v1/logs/{logged['id']}")
            assert shown.status_code == 200 and shown.json()["log"]["error"]
            assert key not in reply.text + shown.text
            assert key not in str(logged)
            # Even a key that reached a log some other way (an app's own error text) is masked on the way out.
            h.store.logs.insert_many(
                [LogRecord(id="app-1", model="m", inputs={}, error=f"401 for {key}").row()]
            )
            shown = http.get("/v1/logs/app-1")
            assert shown.json()["log"]["error"] == "401 for ***"
    finally:
        h.close()
