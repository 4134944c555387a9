"""What `honed serve` refuses before any route runs, on a real socket on 127.0.0.1 with real httpx: cross-site
writes (non-JSON bodies, foreign origins), foreign Host names (DNS rebinding), bodies over the size limit
(declared or chunked), JSON nested too deep; and a big request that does not hold up small ones."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request

import honed
from honed.api import Honed
from honed.config import load_settings
from honed.errors import ConfigError
from honed.models.types import ChatRequest
from honed.serve import create_app
from honed.serve.guard import accepts
from honed.testing import scripted
from tests.support.cli import HONED
from tests.support.servers import running
from tests.support.stub_openai import free_port

LOG = {"id": "app-1", "model": "m", "inputs": {"q": "hi"}, "output": "hello"}


@contextmanager
def serving(workspace: Path, *, host: str = "127.0.0.1", **serve: Any) -> Iterator[tuple[str, Honed]]:
    """`honed serve`'s app over the workspace, with `[serve]` settings `serve`, listening on 127.0.0.1
    (as if started with `--host host`). Yields the /v1 base URL and the workspace."""
    h = honed.connect(workspace, **{f"serve.{k}": v for k, v in serve.items()})
    try:
        app = create_app(h.client, host=host, served_endpoints=("scripted",), store=h.store)
        with running(app) as base:
            yield base, h
    finally:
        h.close()


def assert_refused(reply: httpx.Response, status: int, code: str | None) -> None:
    """An error in OpenAI's shape, so every OpenAI client reports it as usual."""
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code, error


def port_of(base: str) -> int:
    port = httpx.URL(base).port
    assert port is not None
    return port


def test_non_json_bodies_are_refused_and_nothing_is_stored(workspace: Path) -> None:
    body = json.dumps([LOG]).encode()
    with serving(workspace) as (base, h):
        # What a web page can send cross-site without a preflight, and what curl -d sends.
        for content_type in (
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain; application/json",
        ):
            reply = httpx.post(f"{base}/logs", content=body, headers={"Content-Type": content_type})
            assert_refused(reply, 415, "unsupported_media_type")
            feedback = json.dumps([{"log_id": "app-1", "kind": "thumbs", "value": "up"}]).encode()
            reply = httpx.post(f"{base}/feedback", content=feedback, headers={"Content-Type": content_type})
            assert_refused(reply, 415, "unsupported_media_type")
        reply = httpx.post(f"{base}/logs", content=body, headers={"Content-Type": ""})
        assert_refused(reply, 415, "unsupported_media_type")
        chat = {"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}]}
        reply = httpx.post(
            f"{base}/chat/completions", content=json.dumps(chat), headers={"Content-Type": "text/plain"}
        )
        assert_refused(reply, 415, "unsupported_media_type")
        assert h.store.logs.count() == 0

        # JSON with a charset, or a +json type, is taken.
        reply = httpx.post(
            f"{base}/logs", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
        )
        assert reply.status_code == 200, reply.text
        reply = httpx.post(
            f"{base}/feedback",
            content=json.dumps([{"log_id": "app-1", "kind": "thumbs", "value": "up"}]),
            headers={"Content-Type": "application/vnd.honed+json"},
        )
        assert reply.status_code == 200, reply.text
        assert h.store.logs.count() == 1 and len(h.store.logs.feedback_for(["app-1"])["app-1"]) == 1


def test_a_route_can_declare_other_body_types(workspace: Path) -> None:
    h = honed.connect(workspace, **{"serve.max_body_bytes": 4096})
    try:
        app = create_app(h.client, served_endpoints=("scripted",), store=h.store)

        @app.post("/v1/raw", openapi_extra=accepts("application/x-protobuf"))
        async def raw(request: Request) -> dict[str, int]:
            return {"bytes": len(await request.body())}

        with running(app) as base:
            protobuf = {"Content-Type": "application/x-protobuf"}
            reply = httpx.post(f"{base}/raw", content=b"\x0a\x03abc", headers=protobuf)
            assert reply.status_code == 200 and reply.json() == {"bytes": 5}
            assert httpx.post(f"{base}/raw", json={"a": 1}).status_code == 200  # JSON is always taken
            reply = httpx.post(f"{base}/raw", content=b"abc", headers={"Content-Type": "text/plain"})
            assert_refused(reply, 415, "unsupported_media_type")
            # The type belongs to that route only, and the size limit holds there too.
            reply = httpx.post(f"{base}/logs", content=b"\x0a\x03abc", headers=protobuf)
            assert_refused(reply, 415, "unsupported_media_type")
            assert_refused(
                httpx.post(f"{base}/raw", content=b"x" * 5000, headers=protobuf), 413, "body_too_large"
            )
    finally:
        h.close()


def test_a_foreign_origin_is_refused_and_allowed_ones_work(workspace: Path) -> None:
    app_origin = "http://localhost:3000"
    with serving(workspace, allow_origins=[app_origin]) as (base, h):
        own = f"http://127.0.0.1:{port_of(base)}"
        for origin in ("https://evil.example", "null", "http://localhost:3001", "http://127.0.0.1"):
            reply = httpx.post(f"{base}/logs", json=[LOG], headers={"Origin": origin})
            assert_refused(reply, 403, "origin_not_allowed")
            chat = {"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}]}
            reply = httpx.post(f"{base}/chat/completions", json=chat, headers={"Origin": origin})
            assert_refused(reply, 403, "origin_not_allowed")
            assert_refused(httpx.get(f"{base}/models", headers={"Origin": origin}), 403, "origin_not_allowed")
        h.flush_logs()
        assert h.store.logs.count() == 0  # neither ingested nor generated

        # The server's own pages, and the origins it was told to allow.
        reply = httpx.post(f"{base}/logs", json=[LOG], headers={"Origin": own})
        assert reply.status_code == 200, reply.text
        reply = httpx.post(
            f"{base}/feedback",
            json=[{"log_id": "app-1", "kind": "thumbs", "value": "up"}],
            headers={"Origin": app_origin},
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers["access-control-allow-origin"] == app_origin
        # A browser asks first before sending JSON cross-site: granted to the allowed origin only.
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        reply = httpx.options(f"{base}/logs", headers={"Origin": app_origin, **preflight})
        assert reply.status_code == 200 and reply.headers["access-control-allow-origin"] == app_origin
        reply = httpx.options(f"{base}/logs", headers={"Origin": "https://evil.example", **preflight})
        assert_refused(reply, 403, "origin_not_allowed")
        assert "access-control-allow-origin" not in reply.headers


def test_only_the_servers_own_host_names_are_answered(workspace: Path) -> None:
    calls: list[ChatRequest] = []

    def model(request: ChatRequest) -> str:
        calls.append(request)
        return "spent"

    chat = {"model": "scripted/spend", "messages": [{"role": "user", "content": "hi"}]}
    with scripted("spend", model), serving(workspace) as (base, h):
        port = port_of(base)
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "localhost"):
            assert_refused(httpx.get(f"{base}/models", headers={"Host": host}), 421, "host_not_allowed")
            reply = httpx.post(f"{base}/chat/completions", json=chat, headers={"Host": host})
            assert_refused(reply, 421, "host_not_allowed")
            reply = httpx.post(f"{base}/logs", json=[LOG], headers={"Host": host})
            assert_refused(reply, 421, "host_not_allowed")
        assert_refused(httpx.get(f"{base}/models", headers={"Host": "a b"}), 400, "invalid_host")
        assert calls == [] and h.store.logs.count() == 0

        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
            assert httpx.get(f"{base}/models", headers={"Host": host}).status_code == 200, host
        reply = httpx.post(f"{base}/chat/completions", json=chat)
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "spent"
        # Errors of the framework itself are in OpenAI's shape too.
        reply = httpx.get(f"{base}/nothing-here")
        assert_refused(reply, 404, None)
        assert reply.json()["error"]["message"] == "Not Found: GET /v1/nothing-here"


def test_on_all_interfaces_any_host_unless_allowed_hosts_are_given(workspace: Path) -> None:
    # Listening on 0.0.0.0 needs tokens anyway, so any Host is fine...
    with serving(workspace, host="0.0.0.0") as (base, _):
        assert httpx.get(f"{base}/models", headers={"Host": "honed.internal:8443"}).status_code == 200
    # ...unless the names are given: then only those (on any port, unless one is named).
    hosts = ["api.example.com", "*.corp.example", "10.0.0.5:8000"]
    with serving(workspace, host="0.0.0.0", allowed_hosts=hosts) as (base, _):
        for host in ("api.example.com", "api.example.com:443", "ml.corp.example", "10.0.0.5:8000"):
            assert httpx.get(f"{base}/models", headers={"Host": host}).status_code == 200, host
        for host in ("evil.example", "corp.example", "10.0.0.5:9000", f"127.0.0.1:{port_of(base)}"):
            assert_refused(httpx.get(f"{base}/models", headers={"Host": host}), 421, "host_not_allowed")
    # On loopback they come on top of the loopback names (e.g. behind a local reverse proxy).
    with serving(workspace, allowed_hosts=["honed.test"]) as (base, _):
        assert httpx.get(f"{base}/models", headers={"Host": "honed.test"}).status_code == 200
        assert httpx.get(f"{base}/models").status_code == 200


def test_bodies_over_the_limit_get_413_with_or_without_a_length(workspace: Path) -> None:
    limit = 64 * 1024
    big_log = {**LOG, "output": "x" * (limit + 100)}
    chat = {"model": "scripted/echo", "messages": [{"role": "user", "content": "x" * (limit + 100)}]}

    def chunked(payload: dict[str, Any] | list[Any]) -> Iterator[bytes]:
        data = json.dumps(payload).encode()
        for i in range(0, len(data), 8192):
            yield data[i : i + 8192]

    with serving(workspace, max_body_bytes=limit) as (base, h):
        for path, payload in (("logs", [big_log]), ("chat/completions", chat)):
            # Declared up front: refused before a byte of the body is read.
            assert_refused(httpx.post(f"{base}/{path}", json=payload), 413, "body_too_large")
            # Chunked, no Content-Length: cut off once the count passes the limit.
            reply = httpx.post(
                f"{base}/{path}", content=chunked(payload), headers={"Content-Type": "application/json"}
            )
            assert "content-length" not in reply.request.headers
            assert reply.request.headers["transfer-encoding"] == "chunked"
            assert_refused(reply, 413, "body_too_large")
        h.flush_logs()
        assert h.store.logs.count() == 0
        # Under the limit, chunked or not, and the server still answers after the refusals.
        small = {**LOG, "output": "x" * (limit // 2)}
        assert httpx.post(f"{base}/logs", json=[small]).status_code == 200
        reply = httpx.post(
            f"{base}/logs",
            content=chunked([{**small, "id": "app-2"}]),
            headers={"Content-Type": "application/json"},
        )
        assert reply.status_code == 200, reply.text
        assert h.store.logs.count() == 2


def test_deeply_nested_json_is_a_400_not_a_500(workspace: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    headers = {"Content-Type": "application/json"}

    def nested(depth: int) -> Any:
        value: Any = "leaf"
        for _ in range(depth):
            value = {"x": value}
        return value

    with serving(workspace) as (base, h):
        for path in ("chat/completions", "logs", "feedback"):
            assert_refused(httpx.post(f"{base}/{path}", content=deep, headers=headers), 400, "json_too_deep")
        wrapped = b'{"logs": [{"model": "m", "inputs": {"q": ' + deep + b"}}]}"
        assert_refused(httpx.post(f"{base}/logs", content=wrapped, headers=headers), 400, "json_too_deep")
        # Deeper than the limit (64) though shallow enough for Python's parser: refused all the same.
        reply = httpx.post(f"{base}/logs", json=[{**LOG, "inputs": nested(100)}])
        assert_refused(reply, 400, "json_too_deep")
        chat = {
            "model": "scripted/echo",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": nested(100)}},
        }
        assert_refused(httpx.post(f"{base}/chat/completions", json=chat), 400, "json_too_deep")
        assert h.store.logs.count() == 0
        assert httpx.post(f"{base}/logs", json=[{**LOG, "inputs": nested(20)}]).status_code == 200
        reply = httpx.post(f"{base}/logs", content=b"{not json", headers=headers)
        assert_refused(reply, 400, "invalid_json")


def test_a_big_chat_request_does_not_hold_up_small_ones(workspace: Path) -> None:
    counting = threading.Event()

    def model(request: ChatRequest) -> str:
        counting.set()  # the reply is chosen; the prompt's tokens are counted next
        return "ok"

    prompt = "a" * 2_000_000  # 2 MB, under the limit: ~250,000 tokens, a second or more to count
    big: dict[str, Any] = {}
    small_done: list[float] = []
    with scripted("big", model) as ref, serving(workspace) as (base, _):

        def send_big() -> None:
            body = {"model": ref, "messages": [{"role": "user", "content": prompt}]}
            big["reply"] = httpx.post(f"{base}/chat/completions", json=body, timeout=120)
            big["done"] = time.monotonic()

        thread = threading.Thread(target=send_big)
        thread.start()
        try:
            assert counting.wait(60), "the big request never reached the model"
            with httpx.Client(timeout=60) as http:
                while thread.is_alive() and len(small_done) < 20:
                    assert http.get(f"{base}/models").status_code == 200
                    small_done.append(time.monotonic())
        finally:
            thread.join(timeout=120)
    reply = big["reply"]
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["prompt_tokens"] > 100_000  # it was counted
    # Small requests were answered while the big one was still being worked on, not queued behind it.
    # (Blocked, they complete just after it: never three of them a tenth of a second before.)
    early = [t for t in small_done if t < big["done"] - 0.1]
    assert len(early) >= 3, (len(small_done), [big["done"] - t for t in small_done])


def test_serve_settings_follow_flag_env_file_precedence(workspace: Path) -> None:
    (workspace / "honed.toml").write_text(
        '[serve]\nmax_body_bytes = 100000\nallow_origins = ["HTTP://LocalHost:3000/"]\n'
    )
    assert load_settings(start=workspace, env={}).serve.max_body_bytes == 100_000
    env = {"HONED_SERVE_MAX_BODY_BYTES": "200000", "HONED_SERVE_ALLOWED_HOSTS": "a.example, b.example:8000"}
    from_env = load_settings(start=workspace, env=env).serve
    assert from_env.max_body_bytes == 200_000 and from_env.allowed_hosts == ("a.example", "b.example:8000")
    assert from_env.allow_origins == ("http://localhost:3000",)  # as browsers spell it
    assert load_settings(
        {"serve.max_body_bytes": 300_000}, start=workspace, env=env
    ).serve.max_body_bytes == (300_000)
    from_file = load_settings(start=workspace, env={}).serve
    assert from_file.max_json_depth == 64 and from_file.allowed_hosts == ()  # defaults

    (workspace / "honed.toml").write_text('[serve]\nallow_origins = ["http://app.example/path"]\n')
    with pytest.raises(ConfigError, match=r"honed.toml:2: serve\.allow_origins.*not an origin"):
        load_settings(start=workspace, env={})
    (workspace / "honed.toml").write_text("")
    with pytest.raises(ConfigError, match="not a host name"):
        load_settings({"serve.allowed_hosts": ["http://x.example"]}, start=workspace, env={})


def test_the_serve_command_takes_the_options(workspace: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_") or k == "HONED_MODEL_CACHE"}
    env.update(HONED_SERVE_ALLOW_ORIGINS="http://app.example:8080", HONED_SERVE_MAX_BODY_BYTES="1000000")
    proc = subprocess.Popen(
        [
            *(HONED, "serve", "--port", str(port), "--endpoint", "scripted", "--no-warm"),
            *("--allowed-host", "api.example", "--max-body-bytes", "4096"),
        ],
        cwd=workspace,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                httpx.get(f"{base}/models", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "honed serve did not start within 60 s"
                time.sleep(0.2)
        assert httpx.get(f"{base}/models", headers={"Host": "api.example"}).status_code == 200
        assert_refused(httpx.get(f"{base}/models", headers={"Host": "evil.example"}), 421, "host_not_allowed")
        origin = {"Origin": "http://app.example:8080"}
        assert httpx.post(f"{base}/logs", json=[LOG], headers=origin).status_code == 200
        assert_refused(
            httpx.post(f"{base}/logs", json=[{**LOG, "id": "x", "output": "x" * 5000}]), 413, "body_too_large"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
