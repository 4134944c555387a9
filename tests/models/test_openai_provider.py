"""The `openai` provider over real HTTP to a stub server on 127.0.0.1 (OpenAI itself cannot run here).

Both transports (aiohttp, the default, and the official SDK) must behave the same: request shape, retries on
429/5xx honouring Retry-After, one-line errors for unreachable endpoints, bad keys and garbage replies, and
the HTTP a real server may send: chunked and gzip replies, connections closed after a reply or dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from honed.config import load_settings
from honed.errors import (
    EndpointUnreachableError,
    HonedError,
    MissingAPIKeyError,
    ProviderError,
    UnknownModelError,
)
from honed.models.client import ModelClient
from honed.models.types import ChatRequest, Completion
from tests.support.stub_openai import Reply, StubServer, completion, free_port, stub_openai

TRANSPORTS = ["aiohttp", "sdk"]


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with stub_openai() as s:
        yield s


def client_for(
    workspace: Path, base_url: str, transport: str, extra: str = "", attempts: int = 3
) -> ModelClient:
    (workspace / "honed.toml").write_text(
        f'[endpoints.stub]\nprovider = "openai"\nbase_url = "{base_url}"\napi_key_env = "STUB_KEY"\n'
        f'transport = "{transport}"\ntimeout_s = 2\n{extra}'
        f"[retry]\nbase_delay_s = 0.01\nmax_delay_s = 0.05\nmax_attempts = {attempts}\n"
    )
    return ModelClient(load_settings(start=workspace))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_request_shape_key_and_usage(
    workspace: Path, stub: StubServer, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "sk-test-123")
    stub.script = [Reply(body=completion("hi there", 11, 2))]
    client = client_for(workspace, stub.base_url, transport)
    req = ChatRequest.of(
        "stub/gpt-x", "hello", {"temperature": 0.3, "max_tokens": 5, "stop": ["\n"], "seed": 7}
    )
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
    client = client_for(workspace, stub.base_url, "aiohttp")
    provider, _, _ = client.resolve("stub/m")
    with pytest.raises(MissingAPIKeyError, match="STUB_KEY is not set"):
        provider.preflight()
    assert stub.requests == []


def test_timeouts_are_retried_then_reported(
    workspace: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "k")
    stub.script = [Reply(delay_s=3.0), Reply(body=completion("after timeout"))]
    c = client_for(workspace, stub.base_url, "aiohttp").run([ChatRequest.of("stub/m", "q")])[0]
    assert not isinstance(c, Exception) and c.text == "after timeout"


def test_key_never_appears_in_errors(
    workspace: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "sk-secret-value")
    stub.script = [Reply(status=401, body={"error": {"message": "bad key"}})]
    out = client_for(workspace, stub.base_url, "aiohttp").run([ChatRequest.of("stub/m", "q")])[0]
    assert isinstance(out, ProviderError) and "sk-secret-value" not in str(out)


def test_unknown_endpoint_option_is_rejected(workspace: Path, stub: StubServer) -> None:
    client = client_for(workspace, stub.base_url, "aiohttp", extra="tranport = 'sdk'\n")
    with pytest.raises(Exception, match=r"unknown key\(s\) 'tranport' in \[endpoints.stub\]"):
        client.resolve("stub/m")


def test_list_models(workspace: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_KEY", "k")
    provider, _, _ = client_for(workspace, stub.base_url, "aiohttp").resolve("stub/m")
    assert asyncio.run(provider.list_models()) == ["stub-model"]


def test_unknown_transport_names_the_valid_ones(workspace: Path, stub: StubServer) -> None:
    client = client_for(workspace, stub.base_url, "httpx")
    with pytest.raises(ProviderError, match=r"transport must be 'aiohttp' or 'sdk', not 'httpx'"):
        client.resolve("stub/m")


def sequentially(client: ModelClient, requests: list[ChatRequest]) -> list[Completion | HonedError]:
    """One call after the other on one event loop, so each may reuse the last one's connection."""

    async def main() -> list[Completion | HonedError]:
        try:
            return [(await client.complete_many([r]))[0] for r in requests]
        finally:
            await client.aclose_providers()

    return asyncio.run(main())


def texts(out: list[Completion | HonedError]) -> list[str]:
    assert all(isinstance(c, Completion) for c in out), [str(c) for c in out if not isinstance(c, Completion)]
    return [c.text for c in out if isinstance(c, Completion)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_server_closing_each_connection_with_connection_close(
    workspace: Path, stub: StubServer, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "k")
    stub.script = [Reply(headers={"Connection": "close"}) for _ in range(25)]
    client = client_for(workspace, stub.base_url, transport)
    seq = sequentially(client, [ChatRequest.of("stub/m", f"s{i}") for i in range(5)])
    assert texts(seq) == [f"echo: s{i}" for i in range(5)]
    together = client.run([ChatRequest.of("stub/m", f"c{i}") for i in range(20)])
    assert texts(together) == [f"echo: c{i}" for i in range(20)]
    assert len(stub.requests) == 25  # the client read the header: no call went out on a closed connection


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_server_closing_idle_connections_unannounced(
    workspace: Path, stub: StubServer, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a server's keep-alive timeout does: the connection closes after the reply, with no header saying so.
    monkeypatch.setenv("STUB_KEY", "k")
    stub.script = [Reply(close=True) for _ in range(100)]
    client = client_for(workspace, stub.base_url, transport)
    seq = sequentially(client, [ChatRequest.of("stub/m", f"s{i}") for i in range(5)])
    assert texts(seq) == [f"echo: s{i}" for i in range(5)]
    together = client.run([ChatRequest.of("stub/m", f"c{i}") for i in range(20)])
    assert texts(together) == [f"echo: c{i}" for i in range(20)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dropped_connection_is_retried(
    workspace: Path, stub: StubServer, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A POST on a connection the server closes before answering (a stale pooled connection looks the same)
    # is a retryable error: the client's retry loop sends it again on a new connection.
    monkeypatch.setenv("STUB_KEY", "k")
    stub.script = [Reply(drop=True), Reply(body=completion("after drop"))]
    out = client_for(workspace, stub.base_url, transport).run([ChatRequest.of("stub/m", "q")])
    assert texts(out) == ["after drop"] and len(stub.requests) == 2


def test_a_stale_connection_is_resent_once_on_a_new_one(
    workspace: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Even with no retries allowed: a connection the server closed before answering is resent at once on a
    # new connection (a stale pooled connection fails so, racing the server's keep-alive close), once.
    monkeypatch.setenv("STUB_KEY", "k")
    stub.script = [Reply(drop=True), Reply(body=completion("resent")), Reply(drop=True), Reply(drop=True)]
    client = client_for(workspace, stub.base_url, "aiohttp", attempts=1)
    out = sequentially(client, [ChatRequest.of("stub/m", "q"), ChatRequest.of("stub/m", "again")])
    assert texts(out[:1]) == ["resent"]
    assert isinstance(out[1], HonedError) and "connection failed" in str(out[1])
    assert len(stub.requests) == 4


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("framing", ["chunked", "gzip", "chunked+gzip"])
def test_chunked_and_gzip_replies(
    workspace: Path, stub: StubServer, transport: str, framing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "k")
    reply = Reply(body=completion("framed " * 50, 5, 4), chunked="chunked" in framing, gzip="gzip" in framing)
    stub.script = [
        reply,
        Reply(status=503, body={"error": {"message": "busy"}}, chunked=reply.chunked, gzip=reply.gzip),
    ]
    client = client_for(workspace, stub.base_url, transport)
    out = sequentially(client, [ChatRequest.of("stub/m", "q"), ChatRequest.of("stub/m", "again")])
    assert texts(out) == ["framed " * 50, "echo: again"]  # the 503 was read, retried, and answered
    assert isinstance(out[0], Completion) and out[0].usage.output_tokens == 4
    assert len(stub.requests) == 3


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_many_concurrent_calls_under_the_endpoint_limit(
    workspace: Path, stub: StubServer, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "k")
    stub.script = [Reply(delay_s=0.02) for _ in range(50)]
    client = client_for(workspace, stub.base_url, transport, extra="max_concurrency = 8\n")
    out = client.run([ChatRequest.of("stub/m", f"question {i}") for i in range(50)])
    assert texts(out) == [f"echo: question {i}" for i in range(50)]
    assert len(stub.requests) == 50 and 1 < stub.max_active <= 8


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_proxy_environment_variables_apply(
    workspace: Path, stub: StubServer, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stub stands in for the proxy: a call to a host that does not exist reaches it through HTTP_PROXY.
    monkeypatch.setenv("STUB_KEY", "k")
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", stub.base_url.removesuffix("/v1"))
    client = client_for(workspace, "http://upstream.invalid/v1", transport)
    assert texts(client.run([ChatRequest.of("stub/m", "via proxy")])) == ["echo: via proxy"]

    monkeypatch.setenv("NO_PROXY", "upstream.invalid")
    out = client_for(workspace, "http://upstream.invalid/v1", transport).run([ChatRequest.of("stub/m", "q")])
    assert isinstance(out[0], EndpointUnreachableError) and len(stub.requests) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("base_url", ["localhost:8000/v1", "ftp://127.0.0.1/v1"])
def test_base_url_that_is_not_http_is_unreachable(
    workspace: Path, transport: str, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "k")
    out = client_for(workspace, base_url, transport).run([ChatRequest.of("stub/m", "q")])[0]
    assert isinstance(out, EndpointUnreachableError) and "cannot reach endpoint 'stub'" in str(out)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_garbage_200_replies_are_retried_a_bounded_number_of_times(
    workspace: Path, stub: StubServer, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_KEY", "k")
    garbage = Reply(raw=b"<html>502 Bad Gateway</html>")
    truncated = Reply(raw=b'{"id": "chatcmpl-1", "choices": [{"mess')
    stub.script = [garbage, truncated, Reply(body=completion("third time"))]
    client = client_for(workspace, stub.base_url, transport)
    c = client.run([ChatRequest.of("stub/m", "q")])[0]
    assert not isinstance(c, Exception) and c.text == "third time"
    assert len(stub.requests) == 3
    # A server that only ever answers garbage is given up on after max_attempts (3), with the reason.
    stub.script = [garbage] * 5
    out = client.run([ChatRequest.of("stub/m", "q2")])[0]
    assert isinstance(out, ProviderError) and "non-JSON reply" in str(out) and "after 3 attempts" in str(out)
    assert len(stub.requests) == 6
