"""`honed serve` as the real peer of the `openai` provider: the official SDK and honed's own provider, over
real HTTP on 127.0.0.1, to the real local model in a `honed serve` subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from honed.config import load_settings
from honed.models.client import ModelClient
from honed.models.types import ChatRequest
from tests.support.stub_openai import free_port

pytestmark = pytest.mark.slow

HONED = str(Path(sys.executable).parent / "honed")
MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cwd = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_") or k == "HONED_MODEL_CACHE"}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.Popen(
        [HONED, "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"honed serve exited: {proc.stderr.read() if proc.stderr else ''}")
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("honed serve did not start within 120 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_sdk_lists_and_chats_with_the_local_model(server: str) -> None:
    client = openai.OpenAI(base_url=server, api_key="unused", max_retries=0)
    assert MODEL in [m.id for m in client.models.list().data]
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        max_tokens=16,
        temperature=0,
    )
    text = reply.choices[0].message.content or ""
    assert "Paris" in text
    assert (
        reply.usage is not None and 0 < reply.usage.completion_tokens <= 16 and reply.usage.prompt_tokens > 5
    )
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_n_samples_and_limits(server: str) -> None:
    client = openai.OpenAI(base_url=server, api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model=f"local/{MODEL}",
        messages=[{"role": "user", "content": "Count: one, two,"}],
        max_tokens=3,
        n=2,
        temperature=1.0,
    )
    assert len(reply.choices) == 2 and [c.index for c in reply.choices] == [0, 1]
    # Sampled, so a choice may end early at the end-of-text token; neither may run past max_tokens.
    assert all(c.finish_reason in ("length", "stop") for c in reply.choices)
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 2 * 3


def test_the_local_model_streams_token_by_token(server: str, workspace: Path) -> None:
    client = openai.OpenAI(base_url=server, api_key="unused", max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "Describe the sea in two sentences."}]
    whole = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=40, temperature=0)
    started = time.perf_counter()
    arrived: list[tuple[float, str]] = []
    usage = None
    for chunk in client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=40,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ):
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if choice.delta.content:
                arrived.append((time.perf_counter() - started, choice.delta.content))
    # Greedy decoding: the pieces add up to the reply the same request gets whole.
    assert "".join(p for _, p in arrived) == whole.choices[0].message.content
    assert len(arrived) > 10  # token by token, not one piece at the end
    assert arrived[0][0] < arrived[-1][0] - 0.3  # the first came well before the last
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens

    # honed's own provider reads the stream from another honed serve the same way.
    (workspace / "honed.toml").write_text(f'[endpoints.served]\nprovider = "openai"\nbase_url = "{server}"\n')
    honed_client = ModelClient(load_settings(start=workspace), use_cache=False)

    async def pieces() -> list[object]:
        request = ChatRequest.of(f"served/{MODEL}", messages, {"max_tokens": 40})  # type: ignore[arg-type]
        try:
            return [item async for item in honed_client.stream(request)]
        finally:
            await honed_client.aclose_providers()

    *texts, done = asyncio.run(pieces())
    assert len(texts) > 10 and "".join(map(str, texts)) == getattr(done, "text", None)


def test_errors_in_openai_format(server: str) -> None:
    client = openai.OpenAI(base_url=server, api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="no model"):
        client.chat.completions.create(model="gpt-17", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=MODEL, messages=[])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], temperature=9
        )


@pytest.mark.parametrize("transport", ["aiohttp", "sdk"])
def test_openai_provider_against_honed_serve_matches_the_local_model(
    server: str, workspace: Path, transport: str
) -> None:
    (workspace / "honed.toml").write_text(
        f'[endpoints.served]\nprovider = "openai"\nbase_url = "{server}"\ntransport = "{transport}"\n'
    )
    client = ModelClient(load_settings(start=workspace), use_cache=False)
    messages = [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Name three primary colors."},
    ]
    over_http, in_process = client.run(
        [
            ChatRequest.of(f"served/{MODEL}", messages, {"max_tokens": 12}),  # type: ignore[arg-type]
            ChatRequest.of(f"local/{MODEL}", messages, {"max_tokens": 12}),  # type: ignore[arg-type]
        ]
    )
    assert not isinstance(over_http, Exception) and not isinstance(in_process, Exception)
    assert over_http.text == in_process.text and over_http.text
    assert over_http.usage == in_process.usage
