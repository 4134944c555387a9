"""Other honed processes of a workspace use its running `honed serve` instead of loading models.

`honed serve` announces itself in `.honed/serve.json` (and withdraws it on exit); a command finds it only
while its pid is alive and its address answers as that pid. The routes they use (`/v1/honed/generate`,
`/v1/embeddings`) run a request exactly as in process, sit behind the same request guard as every route,
and refuse a model other than the one the caller expects. The slow tests run real CLI commands against
a real `honed serve` with the local model and MiniLM: same answers as in process, counted by the
server, and no torch in the command's process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

import honed
from honed.config import init_workspace, load_settings
from honed.errors import UnknownModelError
from honed.models import served
from honed.models.types import ChatRequest
from honed.serve import create_app
from tests.support.cli import HONED
from tests.support.servers import running
from tests.support.stub_openai import free_port

MODEL = "local/smollm2-135m-instruct"


def start_serve(root: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """`honed serve ARGS` in `root`; waits for its discovery file and returns (process, /v1 base URL)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_") or k == "HONED_MODEL_CACHE"}
    proc = subprocess.Popen(
        [HONED, "serve", "--port", str(port), *args],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if httpx.get(f"{base}/honed/status", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "honed serve did not start"
        time.sleep(0.2)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)  # waits, and closes its stderr pipe


def forget_all() -> None:
    with served._lock:
        served._found.clear()


def test_serve_announces_itself_only_while_it_runs(tmp_path: Path) -> None:
    root = init_workspace(tmp_path / "ws")
    discovery = root / ".honed" / "serve.json"
    proc, base = start_serve(root, "--no-warm")
    try:
        data = json.loads(discovery.read_text())
        assert data["pid"] == proc.pid and data["base_url"] == base and data["endpoints"] == ["local"]
        assert httpx.get(f"{base}/honed/status").json()["pid"] == proc.pid
        forget_all()
        found = served.find(load_settings(start=root))
        assert found is not None and found.pid == proc.pid and found.base_url == base
        forget_all()
        assert served.find(load_settings({"local.use_server": False}, start=root)) is None  # turned off
    finally:
        stop(proc)
    assert proc.returncode == 128 + signal.SIGTERM  # through the cleanup, not killed on the spot
    assert not discovery.exists()
    forget_all()
    assert served.find(load_settings(start=root)) is None


def test_a_stale_or_foreign_discovery_file_is_ignored(tmp_path: Path) -> None:
    root = init_workspace(tmp_path / "ws")
    settings = load_settings(start=root)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    free = f"http://127.0.0.1:{free_port()}/v1"
    for pid, url in ((int(dead.stdout), free), (os.getppid(), free)):  # gone; alive but not answering
        (root / ".honed" / "serve.json").write_text(
            json.dumps({"format": 1, "base_url": url, "pid": pid, "endpoints": ["local"], "embedders": True})
        )
        forget_all()
        assert served.find(settings) is None
    (root / ".honed" / "serve.json").write_text("{not json")
    forget_all()
    assert served.find(settings) is None


@pytest.fixture
def scripted_server(workspace: Path) -> Iterator[served.ServedModels]:
    """The app of `honed serve` for the scripted endpoint, on a real socket, as a caller sees it."""
    with honed.connect(workspace) as h:
        app = create_app(h.client, served_endpoints=("scripted",), store=h.store)
        with running(app) as base:
            yield served.ServedModels(served.Served(base, os.getpid(), ("scripted",), True))


def test_generate_runs_the_request_as_the_provider_would(scripted_server: served.ServedModels) -> None:
    request = ChatRequest.of("scripted/echo", "Hello there", {"max_tokens": 5, "temperature": 0})

    async def both() -> tuple[object, object]:
        try:
            over_http = await scripted_server.generate("scripted", "echo", request, None)
        finally:
            await scripted_server.aclose()
        with honed.connect() as h:
            provider, ref, _ = h.client.resolve("scripted/echo")
            return over_http, await provider.complete(ref.model, request)

    over_http, in_process = asyncio.run(both())
    assert over_http == in_process


def test_generate_refuses_another_model_and_forwards_request_errors(
    scripted_server: served.ServedModels,
) -> None:
    request = ChatRequest.of("scripted/echo", "hi")

    async def call(endpoint: str, model: str, identity: str | None) -> object:
        try:
            return await scripted_server.generate(endpoint, model, request, identity)
        finally:
            await scripted_server.aclose()

    with pytest.raises(served.ServerGone, match="409"):
        asyncio.run(call("scripted", "echo", "an-adapter-retrained-since"))
    with pytest.raises(UnknownModelError, match="does not serve endpoint 'local'"):
        asyncio.run(call("local", "smollm2-135m-instruct", None))
    status = httpx.get(scripted_server.served.base_url + "/honed/status").json()
    assert status["pid"] == os.getpid() and status["requests"] == {}  # nothing was answered


def test_the_request_guard_applies_to_the_new_routes(scripted_server: served.ServedModels) -> None:
    base = scripted_server.served.base_url
    port = httpx.URL(base).port
    for path in ("/embeddings", "/honed/generate"):
        body = json.dumps({"model": "all-MiniLM-L6-v2", "input": "x"})
        rebound = httpx.post(base + path, content=body, headers={"Host": f"evil.example:{port}"})
        assert rebound.status_code == 421, rebound.text
        plain = httpx.post(base + path, content=body, headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415, plain.text
        deep = httpx.post(
            base + path, content="[" * 100 + "]" * 100, headers={"Content-Type": "application/json"}
        )
        assert deep.status_code == 400, deep.text


# -- the real thing: honed serve with the local model, and CLI commands in other processes -------------

PROBE = """
import atexit, json, sys
out = sys.argv[1]
sys.argv = ["honed", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from honed.cli.main import run
run()
"""


def cli(root: Path, *args: str, use_server: bool = True) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`honed ARGS` in a fresh interpreter: its result and the modules it imported."""
    out = root / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_") or k == "HONED_MODEL_CACHE"}
    env.update(COLUMNS="200", HONED_LOCAL_USE_SERVER="1" if use_server else "0")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done, set(json.loads(out.read_text()))


def requests_served(base: str) -> dict[str, int]:
    return dict(httpx.get(f"{base}/honed/status").json()["requests"])


@pytest.mark.slow
def test_commands_use_the_running_server_and_get_the_same_answers(tmp_path: Path) -> None:
    root = init_workspace(tmp_path / "ws")
    (root / "docs").mkdir()
    (root / "docs" / "returns.md").write_text("# Returns\n\nReturns take 30 days.\n", encoding="utf-8")
    (root / "docs" / "shipping.md").write_text("# Shipping\n\nParcels ship in two days.\n", encoding="utf-8")
    proc, base = start_serve(root)
    try:
        run = ("models", "run", MODEL, "Name a primary colour.", "--max-tokens", "12", "--no-cache", "--json")
        via_server, modules = cli(root, *run)
        assert requests_served(base).get("generate") == 1
        assert "torch" not in modules  # the command loaded no model of its own
        in_process, modules = cli(root, *run, use_server=False)
        assert "torch" in modules and requests_served(base).get("generate") == 1
        [a], [b] = json.loads(via_server.stdout), json.loads(in_process.stdout)
        assert a["text"] == b["text"] and a["text"]
        assert (a["input_tokens"], a["output_tokens"]) == (b["input_tokens"], b["output_tokens"])

        cli(root, "kb", "create", "docs")
        cli(root, "kb", "ingest", "docs", "docs")
        query = "how long do returns take"
        found, modules = cli(root, "kb", "search", "docs", query, "--method", "dense", "--json")
        assert requests_served(base).get("embeddings") == 2  # the chunks, then the query
        assert "torch" not in modules and "sentence_transformers" not in modules
        assert json.loads(found.stdout)["hits"][0]["doc_id"] == "returns.md"

        # /v1/embeddings is OpenAI's embeddings API for anyone: the SDK gets MiniLM's vectors.
        import openai

        sdk = openai.OpenAI(base_url=base, api_key="unused", max_retries=0)
        reply = sdk.embeddings.create(model="all-MiniLM-L6-v2", input=[query, "another text"])
        assert [len(d.embedding) for d in reply.data] == [384, 384] and reply.usage.prompt_tokens > 4
        from_sdk = np.array(reply.data[0].embedding, dtype=np.float32)
    finally:
        stop(proc)

    # The vectors the server made are the ones this process makes (they are in the embedding cache now).
    from honed.rag.index.embedders import CachedEmbedder, build_embedder

    settings = load_settings({"local.use_server": False}, start=root)
    with honed.connect(root) as h:
        inner = build_embedder("local/all-MiniLM-L6-v2", settings)
        cached = CachedEmbedder(inner, h.store)
        texts = [query, "# Returns\n\nReturns take 30 days."]
        keys = [cached.keys([query], query=True)[0], cached.keys(texts[1:])[0]]
        stored = h.store.embeddings.get_many(keys)
        assert set(stored) == set(keys)
        here = inner.embed(texts)
        np.testing.assert_allclose(np.stack([stored[k] for k in keys]), here, atol=1e-6)
        np.testing.assert_allclose(from_sdk, here[0], atol=1e-6)


@pytest.mark.slow
def test_a_server_that_stops_answering_is_replaced_by_the_model_in_process(tmp_path: Path) -> None:
    from honed.models.client import ModelClient

    root = init_workspace(tmp_path / "ws")
    proc, _ = start_serve(root, "--no-warm")
    settings = load_settings(start=root)
    try:
        forget_all()
        assert served.find(settings) is not None  # this process will send its calls there...
    finally:
        stop(proc)  # ...but the server is gone before the first one
    client = ModelClient(settings, use_cache=False)
    [answer] = client.run([ChatRequest.of(MODEL, "Name a primary colour.", {"max_tokens": 8})])
    assert not isinstance(answer, Exception), answer
    assert answer.text and answer.usage.output_tokens > 0
