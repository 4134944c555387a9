"""Run the real `honed` command in a process of its own, as a user would.

Each command is a child forked from a server that has already imported honed's libraries
(tests/support/forkserver.py says why and what it shares): its own argv, environment, folder, pipes and
exit status, without paying ~0.7 s of CPU for a fresh interpreter's imports each time. A command whose
environment changes what Python reads at start-up (PYTHON*, the locale) runs in a fresh interpreter, as
does every command when `TESTS_FORKSERVER=0` is set. Tests about the process itself (what it imports, the
console script, signals) start `HONED` themselves.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HONED = str(Path(sys.executable).parent / "honed")
_SERVER_PY = str(Path(__file__).with_name("forkserver.py"))
#: What Python reads once at start-up: a command whose values differ from the server's runs afresh.
_STARTUP = ("PYTHON", "LANG", "LC_")


def honed(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`honed ARGS` in `cwd` with the machine's HONED_* settings removed (except the model cache)."""
    # The model cache, and the tests' default of no latency probe after a run (see tests/conftest.py).
    keep = {"HONED_MODEL_CACHE", "HONED_LOCAL_LATENCY_CALLS"}
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_") or k in keep}
    full_env.pop("OPENAI_API_KEY", None)
    full_env["COLUMNS"] = "200"  # wide enough for any table, unless the test sets COLUMNS itself
    full_env.update(env or {})
    argv = [HONED, *args]
    server = _server()
    if server is None or _startup(full_env) != server.startup:
        return subprocess.run(
            argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, input=input
        )
    return server.run(argv, cwd=cwd, env=full_env, input=input, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """A user error: non-zero exit, no traceback, exactly one line on stderr containing `fragments`."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _startup(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(_STARTUP)}


class _ForkServer:
    """This test process's fork server, started on first use and stopped when the process exits."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.folder = tempfile.mkdtemp(prefix="honed-fork-")
        self.path = os.path.join(self.folder, "socket")
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("HONED_", "OPENAI_")) and k != "COLUMNS"
        }
        self.startup = _startup(self.env)
        self.log = open(os.path.join(self.folder, "server.log"), "w+b")  # noqa: SIM115  # closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, _SERVER_PY, self.path],
            env=self.env,
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while not os.path.exists(self.path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the tests' fork server did not start: {self._said()}")
            time.sleep(0.02)
        atexit.register(self.stop)

    def _said(self) -> str:
        """The end of what the server printed (its log), for an error about it."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        if os.getpid() != self.owner:
            return  # a forked copy of the test process: the server is not its own
        self.process.terminate()
        self.process.wait(10)
        self.log.close()
        for name in os.listdir(self.folder):
            os.unlink(os.path.join(self.folder, name))
        os.rmdir(self.folder)

    def run(
        self, argv: list[str], *, cwd: Path, env: dict[str, str], input: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """What `subprocess.run(argv, capture_output=True, text=True, ...)` returns, from a forked child."""
        deadline = time.monotonic() + timeout
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            try:
                conn.connect(self.path)
            except OSError as exc:
                status = self.process.poll()
                raise RuntimeError(
                    f"the tests' fork server is gone ({exc}; exit status {status}): {self._said()}"
                ) from None
            request = {"argv": argv, "env": env, "cwd": str(cwd)}
            socket.send_fds(conn, [json.dumps(request).encode()], [stdin_r, stdout_w, stderr_w])
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
        pid = int(json.loads(conn.recv(1 << 16))["pid"])
        out, err = bytearray(), bytearray()
        pending = (input or "").encode()
        with selectors.DefaultSelector() as selector:
            if pending:
                os.set_blocking(stdin_w, False)
                selector.register(stdin_w, selectors.EVENT_WRITE)
            else:
                os.close(stdin_w)
            selector.register(stdout_r, selectors.EVENT_READ, out)
            selector.register(stderr_r, selectors.EVENT_READ, err)
            while selector.get_map():
                left = deadline - time.monotonic()
                events = selector.select(timeout=max(0.0, left))
                if not events and left <= 0:
                    self._kill(pid, conn)
                    for key in list(selector.get_map().values()):
                        selector.unregister(key.fd)
                        os.close(key.fd)
                    raise subprocess.TimeoutExpired(argv, timeout, bytes(out), bytes(err))
                for key, _ in events:
                    if key.fd == stdin_w:
                        try:
                            pending = pending[os.write(stdin_w, pending[: 1 << 16]) :]
                        except BrokenPipeError:
                            pending = b""
                        if not pending:
                            selector.unregister(stdin_w)
                            os.close(stdin_w)
                        continue
                    chunk = os.read(key.fd, 1 << 16)
                    if chunk:
                        key.data.extend(chunk)
                    else:
                        selector.unregister(key.fd)
                        os.close(key.fd)
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            status = int(json.loads(conn.recv(1 << 16))["status"])
        except TimeoutError:
            self._kill(pid, conn)
            raise subprocess.TimeoutExpired(argv, timeout, bytes(out), bytes(err)) from None
        conn.close()
        return subprocess.CompletedProcess(argv, os.waitstatus_to_exitcode(status), _text(out), _text(err))

    @staticmethod
    def _kill(pid: int, conn: socket.socket) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        conn.close()


def _text(data: bytearray) -> str:
    """As `text=True` decodes a pipe: the locale's encoding (UTF-8 here), universal newlines."""
    return data.decode().replace("\r\n", "\n").replace("\r", "\n")


_server_instance: _ForkServer | None = None


def _server() -> _ForkServer | None:
    global _server_instance
    if os.environ.get("TESTS_FORKSERVER") == "0":
        return None
    if _server_instance is None:
        _server_instance = _ForkServer()
    return _server_instance
