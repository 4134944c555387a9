"""A real HTTP server on 127.0.0.1 that speaks just enough of OpenAI's chat API for tests.

It is a stand-in for endpoints that cannot run here (OpenAI itself): each request takes the next scripted
reply (status, headers, body, delay, framing) and is recorded, so tests can check retries, Retry-After,
errors and HTTP framing over real HTTP. When the script runs out it answers 200 with a chat completion
echoing the last message, or, on `/embeddings`, with `embeddings(body)`: deterministic vectors.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # None: a normal chat completion echoing the last user message
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    raw: bytes | None = None  # send these bytes instead of JSON
    chunked: bool = False  # Transfer-Encoding: chunked instead of Content-Length
    gzip: bool = False  # Content-Encoding: gzip
    close: bool = False  # close the connection after the reply without saying so (an idle timeout)
    drop: bool = False  # close the connection without replying at all
    #: server-sent events instead of one reply: each a JSON value, or bytes sent as they are (`[DONE]` is
    #: added). None with `"stream": true` in the request: the echo, a word per event, with usage.
    events: list[Any] | None = None


def completion(text: str, prompt_tokens: int = 7, completion_tokens: int = 3) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": 10},
    }


def chunks(text: str, body: dict[str, Any]) -> list[Any]:
    """The events a streaming OpenAI server sends for `text`: the role, a word per chunk, the finish
    reason, and the usage when the request asked for it."""

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "model": "stub-model",
            **extra,
            "choices": choices,
        }

    words = text.split(" ")
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    out: list[Any] = [chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])]
    out += [chunk([{"index": 0, "delta": {"content": p}, "finish_reason": None}]) for p in pieces]
    out.append(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if (body.get("stream_options") or {}).get("include_usage"):
        out.append(chunk([], usage={"prompt_tokens": 7, "completion_tokens": len(pieces), "total_tokens": 0}))
    return out


def stub_vector(text: str, dimensions: int = 8) -> list[float]:
    """The stub's embedding of `text`: deterministic, not unit length (clients must normalise)."""
    digest = hashlib.sha256(text.encode()).digest() * (dimensions // 32 + 1)
    return [(b - 127.5) / 10 for b in digest[:dimensions]]


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """An embeddings reply for a request body, its items in reverse order (the `index` says which is
    which), as a server is allowed to send them."""
    inputs = body.get("input", [])
    inputs = [inputs] if isinstance(inputs, str) else inputs
    dims = int(body.get("dimensions") or 8)
    data = [
        {"object": "embedding", "index": i, "embedding": stub_vector(text, dims)}
        for i, text in enumerate(inputs)
    ]
    tokens = sum(len(str(t).split()) for t in inputs)
    return {
        "object": "list",
        "data": data[::-1],
        "model": body.get("model", "stub-embedder"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


class StubServer:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.lock = threading.Lock()
        self.active = 0  # requests being answered now
        self.max_active = 0
        self.default_delay_s = 0.0  # how long the default reply (when the script is empty) takes
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def next_reply(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self.lock:
            self.requests.append({"body": body, "headers": headers})
            self.times.append(time.monotonic())
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            return self.script.pop(0) if self.script else Reply(delay_s=self.default_delay_s)

    def done(self) -> None:
        with self.lock:
            self.active -= 1


def _handler(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(
            self, status: int, payload: bytes, headers: dict[str, str], reply: Reply | None = None
        ) -> None:
            reply = reply or Reply()
            if reply.gzip:
                payload = gzip.compress(payload)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if reply.gzip:
                self.send_header("Content-Encoding", "gzip")
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if reply.chunked:  # in pieces of 7 bytes, so a reply spans many chunks
                for i in range(0, len(payload), 7):
                    piece = payload[i : i + 7]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(payload)
            if reply.close:
                self.close_connection = True

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                data = {
                    "object": "list",
                    "data": [{"id": "stub-model", "object": "model", "created": 0, "owned_by": "x"}],
                }
                self._send(200, json.dumps(data).encode(), {})
            else:
                self._send(404, b'{"error": {"message": "not found"}}', {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            reply = stub.next_reply(body, {k.lower(): v for k, v in self.headers.items()})
            try:
                self._answer(reply, body)
            finally:
                stub.done()

        def _answer(self, reply: Reply, body: dict[str, Any]) -> None:
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.drop:
                self.close_connection = True
                return
            events = reply.events
            if events is None and reply.body is None and reply.raw is None and body.get("stream"):
                last = body.get("messages", [{}])[-1].get("content", "")
                events = chunks(f"echo: {last}", body)
            if events is not None and reply.status < 400:
                self._stream(events, reply)
                return
            if reply.raw is not None:
                payload = reply.raw
            elif reply.body is None and self.path.rstrip("/").endswith("/embeddings"):
                payload = json.dumps(embeddings(body)).encode()
            elif reply.body is None:
                last = body.get("messages", [{}])[-1].get("content", "")
                payload = json.dumps(completion(f"echo: {last}")).encode()
            else:
                payload = json.dumps(reply.body).encode()
            self._send(reply.status, payload, reply.headers, reply)

        def _stream(self, events: list[Any], reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            for event in [*events, b"[DONE]"]:
                data = event if isinstance(event, bytes) else json.dumps(event).encode()
                self.wfile.write(b"data: " + data + b"\n\n")
                self.wfile.flush()
            self.close_connection = True

    return Handler


@contextmanager
def stub_openai(stub: StubServer | None = None) -> Iterator[StubServer]:
    """`stub` (a new `StubServer` by default; a subclass may script its replies) serving on 127.0.0.1."""
    stub = stub if stub is not None else StubServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    httpd.daemon_threads = True
    stub.httpd = httpd
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        httpd.shutdown()
        httpd.server_close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
