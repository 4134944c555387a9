"""The `openai` provider over real HTTP to a stub server on 127.0.0.1 (OpenAI itself cannot run here).

Both transports (the lean httpx path and the official SDK) must behave the same: request shape, retries on
429/5xx honouring Retry-After, one-line errors for unreachable endpoints, bad keys and garbage replies.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from honed.config import load_settings
from honed.errors import EndpointUnreachableError, MissingAPIKeyError, ProviderError, UnknownModelError
from honed.models.client import ModelClient
from honed.models.types import ChatRequest
from tests.support.stub_openai import Reply, StubServer, completion, free_port, stub_openai

TRANSPORTS = ["httpx", "sdk"]


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with stub_openai() as s:
        yield s


def client_for(workspace: Path, base_url: str, transport: str, extra: str = "") -> ModelClient:
    (workspace / "honed.toml").write_text(
        f'[endpoints.stub]\nprovider = "openai"\nbase_url = "{base_url}"\napi_key_env = "STUB_KEY"\n'
        f'transport = "{transport}"\ntimeout_s = 2\n{extra}'
        "[retry]\nbase_delay_s = 0.01\nmax_delay_s = 0.05\nmax_attempts = 3\n"
    )
    return ModelClient(load_settings(start=workspace))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_request_shape_key_and_usage(
    workspace: Path, stub: StubServer, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "sk-test-123")
    stub.script = [Reply(body=completion("hi there", 11, 2))]
    client = client_for(workspace, stub.base_url, transport)
    req = ChatRequest.of("stub/gpt-x", "hello", {"temperature": 0.3, "max_tokens": 5, "stop": ["\n"], "seed": 7})
    c = client.run([req])[0]
    assert not isinstance(c, Exception)
    assert (c.text, c.usage.input_tokens, c.usage.output_tokens) == ("hi there", 11, 2)
    sent = stub.requests[0]
    assert sent["headers"]["authorization"] == "Bearer sk-test-123"
    assert sent["body"]["model"] == "gpt-x"
    assert sent["body"]["messages"] == [{"role": "user", "content": "hello"}]
    assert {k: sent["body"][k] for k in ("temperature", "max_tokens", "stop", "seed")} == {
        "temperature": 0.3,
        "max_tokens": 5,
        "stop": ["\n"],
        "seed": 7,
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_retries_429_and_503_with_retry_after(
    workspace: Path, stub: StubServer, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "k")
    stub.script = [
        Reply(status=429, body={"error": {"message": "rate limited"}}, headers={"Retry-After": "0.3"}),
        Reply(status=503, body={"error": {"message": "overloaded"}}),
        Reply(body=completion("ok")),
    ]
    c = client_for(workspace, stub.base_url, transport).run([ChatRequest.of("stub/m", "q")])[0]
    assert not isinstance(c, Exception) and c.text == "ok"
    assert len(stub.requests) == 3
    assert stub.times[1] - stub.times[0] >= 0.29  # Retry-After honoured


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_errors_are_translated(
    workspace: Path, stub: StubServer, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "k")
    stub.script = [
        Reply(status=401, body={"error": {"message": "Incorrect API key"}}),
        Reply(status=404, body={"error": {"message": "model not found"}}),
        Reply(status=400, body={"error": {"message": "max_tokens too large"}}),
        Reply(status=200, body={"unexpected": True}),
    ]
    client = client_for(workspace, stub.base_url, transport)
    out = client.run([ChatRequest.of("stub/m", f"q{i}") for i in range(4)])
    by_kind = sorted(type(e).__name__ for e in out)
    assert by_kind == ["ProviderError", "ProviderError", "ProviderError", "UnknownModelError"]
    messages = " | ".join(str(e) for e in out)
    assert "rejected the API key (HTTP 401)" in messages and "check the key in STUB_KEY" in messages
    assert "max_tokens too large" in messages and "not a chat completion" in messages
    assert len(stub.requests) == 4  # none of these is retried
    assert all(isinstance(e, UnknownModelError | ProviderError) for e in out)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unreachable_endpoint_is_one_clear_error(
    workspace: Path, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "k")
    client = client_for(workspace, f"http://127.0.0.1:{free_port()}/v1", transport)
    out = client.run([ChatRequest.of("stub/m", "q")])[0]
    assert isinstance(out, EndpointUnreachableError)
    assert "cannot reach endpoint 'stub'" in str(out) and "connection refused" in str(out)


def test_missing_key_fails_before_any_call(workspace: Path, stub: StubServer) -> None:
    client = client_for(workspace, stub.base_url, "httpx")
    provider, _, _ = client.resolve("stub/m")
    with pytest.raises(MissingAPIKeyError, match="STUB_KEY is not set"):
        provider.preflight()
    assert stub.requests == []


def test_timeouts_are_retried_then_reported(workspace: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_KEY", "k")
    stub.script = [Reply(delay_s=3.0), Reply(body=completion("after timeout"))]
    c = client_for(workspace, stub.base_url, "httpx").run([ChatRequest.of("stub/m", "q")])[0]
    assert not isinstance(c, Exception) and c.text == "after timeout"


def test_key_never_appears_in_errors(workspace: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_KEY", "sk-secret-value")
    stub.script = [Reply(status=401, body={"error": {"message": "bad key"}})]
    out = client_for(workspace, stub.base_url, "httpx").run([ChatRequest.of("stub/m", "q")])[0]
    assert isinstance(out, ProviderError) and "sk-secret-value" not in str(out)


def test_unknown_endpoint_option_is_rejected(workspace: Path, stub: StubServer) -> None:
    client = client_for(workspace, stub.base_url, "httpx", extra="tranport = 'sdk'\n")
    with pytest.raises(Exception, match=r"unknown key\(s\) 'tranport' in \[endpoints.stub\]"):
        client.resolve("stub/m")


def test_list_models(workspace: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    monkeypatch.setenv("STUB_KEY", "k")
    provider, _, _ = client_for(workspace, stub.base_url, "httpx").resolve("stub/m")
    assert asyncio.run(provider.list_models()) == ["stub-model"]
