"""The fork server behind the tests' `honed` commands (tests/support/cli.py): a Python process that has
imported honed's libraries once and forks a child for each command.

Why: the suite runs ~450 `honed` commands, and a fresh interpreter spent 0.5-0.9 s of CPU importing
SQLAlchemy, pydantic, numpy, Jinja, aiohttp and honed itself before it did anything: about a third of the
suite's CPU on 2 cores. A forked child starts with those modules imported and runs what the console
script runs, `honed.cli.main.run()`, as a process of its own: its own argv, environment, working folder,
stdin/stdout/stderr pipes and exit status. It ends as the interpreter does (threads joined, atexit handlers
run, output flushed) but without tearing down the modules it inherited (see `child`).

What a child shares with this server is what importing the preloaded modules did. None of them reads the
environment, the terminal or the working folder at import (honed.cli does, so it is not preloaded: each
child imports it, as a fresh process would), and none of the model libraries is preloaded: torch starts
threads, and a process must not fork once it has. The client falls back to a fresh interpreter when a
command's environment differs in what Python reads only at start-up (PYTHON*, the locale).

Run as `python forkserver.py SOCKET_PATH`. Protocol, over a SOCK_SEQPACKET Unix socket, one connection per
command: the client sends {"argv", "env", "cwd"} as JSON with three file descriptors (stdin, stdout,
stderr); the server answers {"pid"} at once and {"status"} (a wait status) when the child has exited.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import random
import selectors
import signal
import socket
import sys
import threading
from typing import Any

#: Imported once here. Not honed.cli (see above) nor anything that imports torch.
PRELOAD = (
    "sqlalchemy",
    "numpy",
    "pydantic",
    "jinja2",
    "yaml",
    "rich.console",
    "rich.table",
    "typer",
    "aiohttp",
    "honed",
    "honed.api",
    "honed.store",
    "honed.datasets",
    "honed.prompts",
    "honed.evals",
    "honed.evals.evaluators",
    "honed.experiments",
    "honed.logs",
    "honed.optimize",
    "honed.importers",
    "honed.rag",
    "honed.finetune",
)
#: Never in this process: each would make forking unsafe or change what a child's imports do.
NOT_PRELOADED = ("torch", "transformers", "sentence_transformers", "chromadb", "honed.cli")


def preload() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    loaded = [n for n in NOT_PRELOADED if n in sys.modules]
    if loaded:
        raise SystemExit(f"forkserver: preloading imported {loaded}; a child must import these itself")


def serve(path: str) -> None:
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # Listening before the socket has its name: the client waits for the name, and a connect between
    # bind() and listen() would be refused.
    listener.bind(path + ".new")
    listener.listen(64)
    os.rename(path + ".new", path)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that SIGCHLD writes to the wakeup fd
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    waiting: dict[int, socket.socket] = {}
    while os.getppid() == parent:  # the test process is gone: so is the server
        for key, _ in selector.select(timeout=1.0):
            if key.data == "accept":
                conn, _ = listener.accept()
                message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
                if len(fds) != 3:
                    conn.close()
                    for fd in fds:
                        os.close(fd)
                    continue
                request = json.loads(message)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    try:
                        selector.close()
                        for sock in (listener, conn, *waiting.values()):
                            sock.close()
                        signal.set_wakeup_fd(-1)
                        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                        os.close(wake_r)
                        os.close(wake_w)
                        child(request, fds)
                    finally:
                        os._exit(70)  # child() ends in os._exit: only a failure to set it up gets here
                for fd in fds:
                    os.close(fd)
                _send(conn, {"pid": pid})
                waiting[pid] = conn
            else:
                while True:
                    try:
                        os.read(wake_r, 512)
                    except BlockingIOError:
                        break
                reap(waiting)
    listener.close()
    os.unlink(path)


def reap(waiting: dict[int, socket.socket]) -> None:
    while waiting:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = waiting.pop(pid, None)
        if conn is not None:
            _send(conn, {"status": status})
            conn.close()


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the client gave up on this command (a timeout): nobody to tell
        conn.send(json.dumps(message).encode())


def child(request: dict[str, Any], fds: list[int]) -> None:
    """Become the command: its pipes, folder, environment and argv; run it; exit. Never returns."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    code = 0
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        # As in a fresh process: children must not share the server's random sequences.
        random.seed()
        sys.modules["numpy"].random.seed()
        from honed.cli.main import run

        run()  # exits with the command's status, as the console script's `sys.exit(run())` does
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:  # what the interpreter does with an uncaught exception
        sys.excepthook(*sys.exc_info())
        code = 1
    # The interpreter's exit, but for tearing its modules down: other threads joined, atexit handlers run,
    # output flushed. Tearing down the ~800 modules inherited from the server wrote to every page they
    # share with it, and took 0.35 s of each command's CPU. multiprocessing's forked children end so.
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _exit_code(code: object) -> int:
    """As the interpreter reads `SystemExit.code`: None is 0, an int is itself, anything else is printed."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    # A console script's sys.path starts with its own folder (the venv's bin), not this one.
    sys.path[0] = os.path.dirname(sys.executable)
    preload()
    serve(sys.argv[1])
