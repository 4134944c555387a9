"""pytest plugin: a real, throwaway Chroma server for the test session.

`chroma run` (the CLI chromadb installs next to the Python executable) serves a temporary folder on
127.0.0.1 at a free port; the fixture waits for its heartbeat, yields its URL and stops it at the end.
It starts in under a second here, so one server per session is plenty. Tests that share it use
collection names of their own.

Fixtures:
    chroma_url    session: http://127.0.0.1:PORT of the running server
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import free_port

STARTUP_TIMEOUT_S = 60.0


def chroma_executable() -> Path:
    """The `chroma` CLI of this environment (next to the interpreter), else the one on PATH."""
    beside = Path(sys.executable).parent / "chroma"
    if beside.exists():
        return beside
    found = shutil.which("chroma")
    if found is None:
        pytest.fail("the `chroma` CLI is missing: install chromadb in this environment", pytrace=False)
    return Path(found)


def _alive(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start(executable: Path, data: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    # The port is free when chosen but could be taken before the server binds it: retry a few times.
    tail = ""
    for _ in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(executable), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _alive(url):
                return process, url
            time.sleep(0.05)
        _stop(process)
        tail = log.read_text(errors="replace")[-2000:]
    pytest.fail(f"`chroma run` did not become ready:\n{tail}", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Chroma server running on a throwaway folder for this test session."""
    root = tmp_path_factory.mktemp("chroma-server")
    process, url = _start(chroma_executable(), root / "data", root / "server.log")
    try:
        yield url
    finally:
        _stop(process)
        with contextlib.suppress(OSError):
            shutil.rmtree(root)
