"""The listening sockets of `honed serve`, taken before anything is loaded or announced.

uvicorn binds only once it starts serving, and when the port is taken it logs a line and exits the process
itself: by then `honed serve` would have loaded its models, printed its address and replaced the
workspace's `.honed/serve.json`. Binding here first and handing uvicorn the bound sockets makes a taken
port one honed error with nothing announced, and leaves no moment between a check and the bind in which
another process could take the port.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from honed.errors import ConfigError

#: connections queued while the models load and between accepts (uvicorn's default)
BACKLOG = 2048


def listen(host: str, port: int, *, data_folder: Path | None = None) -> list[socket.socket]:
    """Listening sockets for `host`:`port`, one per address the name resolves to (as uvicorn would
    bind them). `ConfigError` when one cannot be had; its hint names this workspace's running
    `honed serve` (from `data_folder`'s discovery file) when that is what holds the port."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"cannot listen on {host}: unknown host ({exc.strerror})",
            hint="--host takes an address or a name of this machine, e.g. 127.0.0.1 or 0.0.0.0",
        ) from None
    sockets: list[socket.socket] = []
    try:
        for family, address in dict.fromkeys((info[0], info[4]) for info in found):
            # create_server sets SO_REUSEADDR on POSIX (a restart need not wait out TIME_WAIT, yet a port
            # someone listens on is refused) and listens at once, so the port is ours from here on.
            sockets.append(socket.create_server(address, family=family, backlog=BACKLOG))
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise _error(host, port, exc, data_folder) from None
    return sockets


def _error(host: str, port: int, exc: OSError, data_folder: Path | None) -> ConfigError:
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(f"port {port} on {host} is in use", hint=_in_use_hint(port, data_folder))
    if exc.errno == errno.EACCES:
        below = " (ports below 1024 need privileges)" if 0 < port < 1024 else ""
        return ConfigError(
            f"cannot listen on port {port} on {host}: permission denied{below}",
            hint="choose another port with --port N",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ConfigError(
            f"cannot listen on {host}: not an address of this machine",
            hint="--host takes an address of this machine, e.g. 127.0.0.1 or 0.0.0.0",
        )
    return ConfigError(
        f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="choose another --host or --port"
    )


def _in_use_hint(port: int, data_folder: Path | None) -> str:
    from urllib.parse import urlsplit

    from honed.models import served

    running = served.announced(data_folder) if data_folder is not None else None
    if running is not None:
        try:
            same_port = urlsplit(running.base_url).port == port
        except ValueError:
            same_port = False
        if same_port:
            return (
                f"this workspace's honed serve (pid {running.pid}) runs there: use {running.base_url}, "
                "or start another with --port N"
            )
    return "another program listens there: choose another port with --port N"
