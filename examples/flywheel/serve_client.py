"""Start `honed serve`, ask the fine-tuned model through the official `openai` SDK, and stop the server.

python serve_client.py MODEL   (e.g. local/smollm2-135m-instruct+ft-abc123)
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from openai import OpenAI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(model: str) -> None:
    port = free_port()
    honed = Path(sys.executable).parent / "honed"
    server = subprocess.Popen([str(honed), "serve", "--port", str(port)])
    try:
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused-on-loopback", max_retries=0)
        deadline = time.monotonic() + 120
        while True:
            try:
                served = [m.id for m in client.models.list().data]
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("honed serve did not start") from None
                time.sleep(0.5)
        name = model.split("/", 1)[1]
        print(f"served models: {', '.join(served)}")
        raw = client.chat.completions.with_raw_response.create(
            model=name,
            messages=[
                {"role": "system", "content": "Route the support ticket."},
                {"role": "user", "content": "My parcel has been stuck in transit for ten days."},
            ],
            max_tokens=12,
            temperature=0,
        )
        reply = raw.parse()
        print(f"{name}: {reply.choices[0].message.content!r} (log id {raw.headers.get('x-honed-log-id')})")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main(sys.argv[1])
