"""The one door both optimisers' model calls go through, for bench/optimize_vs_dspy.py: it counts them.

Standard library only, its own process, so it serves honed (run in the bench's process) and DSPy (run in
its own virtual environment) alike. Every `POST .../chat/completions` is counted under the current phase
(set with `POST /_phase {"phase": NAME}`; `GET /_stats` returns the counts): requests, and distinct
request bodies (canonical JSON, so a request sent again counts once there). Then it is either

- forwarded to `--upstream` (`honed serve` with the local model) and its answer passed back, or
- answered by a deterministic stub model (`--upstream` not given), described in `stub_reply`.

It prints `READY <port>` once it listens and exits when its stdin closes (a crashed parent leaves nothing).

    python bench/_gateway.py [--upstream http://127.0.0.1:8000/v1] [--delay-s 0.02]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The stub's improved instructions, what its "proposer" answers to any request for new instructions
# (honed's GEPA proposer asks for them inside ``` fences, DSPy's GEPA for a JSON object with a
# `new_instruction` field). A prompt whose instructions say it makes the stub likelier to answer in format.
IMPROVED = 'Answer the question. Reply with one line of JSON, {"answer": "..."}, and nothing else.'
_DSPY_QUESTION = re.compile(r"\[\[ ## question ## \]\]\n(.*?)(?:\n\n|$)", re.S)


def _unit(text: str) -> float:
    """A number in [0, 1) fixed by `text`: the stub's per-question luck."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


def stub_reply(body: dict[str, Any]) -> str:
    """A deterministic stand-in for a small model that follows formats only when shown them.

    Whether it answers a question in the format (`{"answer": ...}`, valid JSON) depends on the question
    (a fixed draw u) and on what the prompt holds: it does when u < p, where p is 0.10, +0.10 when the
    instructions (the system message) mention JSON, +0.15 per demonstration whose reply shows the format
    (up to three), and +0.25 when the instructions are the proposer's improved ones (`IMPROVED`). So
    demonstrations and better instructions measurably help, on every client alike. Prompts in DSPy's
    ChatAdapter framing (`[[ ## answer ## ]]` fields) get their reply in that framing, the format the
    framing asks for; it is the content of the answer whose format varies.
    """
    messages = body.get("messages") or []

    def text(m: dict[str, Any]) -> str:
        c = m.get("content")
        if isinstance(c, list):
            return "".join(str(p.get("text", "")) for p in c if isinstance(p, dict))
        return str(c or "")

    last_user = next((text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    system = "\n".join(text(m) for m in messages if m.get("role") == "system")
    if "`new_instruction`" in system:  # DSPy's GEPA proposer: a JSONAdapter signature
        return json.dumps({"new_instruction": IMPROVED})
    if "new instructions" in last_user.lower() and "```" in last_user:  # honed's (and gepa's own)
        return f"```\n{IMPROVED}\n```"
    framed = "[[ ## answer ## ]]" in system
    found = _DSPY_QUESTION.search(last_user) if framed else None
    question = found.group(1).strip() if found else last_user.strip()
    shown = sum(1 for m in messages[:-1] if m.get("role") == "assistant" and '{"answer"' in text(m))
    p = 0.10 + (0.10 if "json" in system.lower() else 0.0) + 0.15 * min(shown, 3)
    p += 0.25 if "nothing else" in system else 0.0
    word = "stub-" + hashlib.sha256(question.encode()).hexdigest()[:6]
    answer = json.dumps({"answer": word}) if _unit(question) < p else f"The answer is {word}."
    return f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]" if framed else answer


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phase = "none"
        self.requests: dict[str, int] = defaultdict(int)
        self.errors: dict[str, int] = defaultdict(int)
        self.distinct: dict[str, set[str]] = defaultdict(set)

    def count(self, body: bytes) -> str:
        try:
            key = hashlib.sha256(json.dumps(json.loads(body), sort_keys=True).encode()).hexdigest()
        except ValueError:
            key = hashlib.sha256(body).hexdigest()
        with self.lock:
            self.requests[self.phase] += 1
            self.distinct[self.phase].add(key)
            return self.phase

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            phases = set(self.requests) | set(self.errors)
            return {
                "phase": self.phase,
                "phases": {
                    p: {
                        "requests": self.requests[p],
                        "distinct": len(self.distinct[p]),
                        "errors": self.errors[p],
                    }
                    for p in sorted(phases)
                },
            }


def handler(counts: Counts, upstream: str | None, delay_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path == "/_stats":
                self._send(200, json.dumps(counts.snapshot()).encode())
            elif self.path.endswith("/models"):
                self._send(200, b'{"object":"list","data":[]}')
            else:
                self._send(404, b'{"error":{"message":"not found"}}')

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/_phase":
                with counts.lock:
                    counts.phase = json.loads(raw)["phase"]
                self._send(200, b"{}")
                return
            if not self.path.endswith("/chat/completions"):
                self._send(404, b'{"error":{"message":"not found"}}')
                return
            phase = counts.count(raw)
            status, payload = self._forward(raw) if upstream else self._stub(raw)
            if status != 200:
                with counts.lock:
                    counts.errors[phase] += 1
            self._send(status, payload)

        def _stub(self, raw: bytes) -> tuple[int, bytes]:
            body = json.loads(raw)
            text = stub_reply(body)
            time.sleep(delay_s)
            reply = {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "stub"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": 12, "total_tokens": 0},
            }
            return 200, json.dumps(reply).encode()

        def _forward(self, raw: bytes) -> tuple[int, bytes]:
            assert upstream is not None
            request = urllib.request.Request(
                upstream.rstrip("/") + "/chat/completions",
                data=raw,
                headers={"Content-Type": "application/json", "Authorization": "Bearer none"},
            )
            try:
                with urllib.request.urlopen(request, timeout=600) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()
            except OSError as exc:
                return 502, json.dumps({"error": {"message": f"gateway: {exc}"}}).encode()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", default=None, help="forward to this base URL (default: the stub)")
    parser.add_argument("--delay-s", type=float, default=0.02, help="the stub's time per call")
    args = parser.parse_args()
    counts = Counts()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(counts, args.upstream, args.delay_s))
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)

    def stop_on_eof() -> None:
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=stop_on_eof, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
