"""A fast stub of an OpenAI-compatible chat endpoint, for benchmarks: run it as its own process.

It is a bare asyncio.Protocol speaking just enough HTTP/1.1 (keep-alive, Content-Length bodies) so that its
own CPU per request stays far below a client's. Every `POST .../chat/completions` is answered after exactly
`--delay-s` (a timer, not a task) with one fixed chat.completion JSON with usage; anything else gets 404.

Bounded: it exits after `--max-requests` requests or `--max-seconds`, whichever comes first, and when its
stdin closes (so a crashed parent cannot leave it running). It prints `READY <port>` once it listens.

    python bench/_stub_server.py --port 0 --delay-s 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading

REPLY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The answer is 42."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
    },
    separators=(",", ":"),
).encode()


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


OK = _response("200 OK", REPLY)
NOT_FOUND = _response("404 Not Found", b'{"error":{"message":"not found"}}')


class Stats:
    def __init__(self, max_requests: int, done: asyncio.Event) -> None:
        self.requests = 0
        self.max_requests = max_requests
        self.done = done

    def count(self) -> None:
        self.requests += 1
        if self.requests >= self.max_requests:
            self.done.set()


class ChatProtocol(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, delay_s: float, stats: Stats) -> None:
        self.loop = loop
        self.delay_s = delay_s
        self.stats = stats
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        # Clients send one request at a time per connection; loop anyway in case they pipeline.
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                    break
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            request_line = head.split(b"\r\n", 1)[0]
            self.buffer = self.buffer[total:]
            self.stats.count()
            method, _, rest = request_line.partition(b" ")
            path = rest.partition(b" ")[0]
            if method == b"POST" and path.endswith(b"/chat/completions"):
                self.loop.call_later(self.delay_s, self._send, OK)
            else:
                self._send(NOT_FOUND)

    def _send(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(payload)


def _wait_for_eof(loop: asyncio.AbstractEventLoop, done: asyncio.Event) -> None:
    sys.stdin.buffer.read()
    loop.call_soon_threadsafe(done.set)


async def serve(host: str, port: int, delay_s: float, max_requests: int, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    stats = Stats(max_requests, done)
    server = await loop.create_server(lambda: ChatProtocol(loop, delay_s, stats), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    # A parent that dies closes our stdin: stop then rather than linger. A daemon thread, so that a
    # blocked read never holds up the exit.
    threading.Thread(target=_wait_for_eof, args=(loop, done), daemon=True).start()
    try:
        await asyncio.wait_for(done.wait(), timeout=max_seconds)
    except TimeoutError:
        pass
    finally:
        server.close()
        print(f"served {stats.requests} requests", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--delay-s", type=float, default=0.05)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.delay_s, args.max_requests, args.max_seconds))


if __name__ == "__main__":
    main()
