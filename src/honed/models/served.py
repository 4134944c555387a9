"""A running `honed serve` of this workspace, used by other honed processes instead of loading models.

Loading the local model or a local embedder costs seconds per process (torch, transformers and the
weights); a `honed serve` of the same workspace has them loaded already. So `honed serve` (on loopback,
where no token is needed) writes `.honed/serve.json` — its address, its pid, the chat endpoints it serves —
and removes it on exit; the local provider and the local embedders of any other process of the workspace
find it (`find`) and send their work there (`ServedModels`). The file carries a random token, and a
server removes it only while it still holds that token: a second server of the workspace that replaced it
puts the first one's file back when it stops (if that one still runs), and never removes it.

It is used only when it gives the same results: the file is ignored when its pid is gone or its address
does not answer as that pid; a chat call names the model identity it expects (a LoRA adapter's
fingerprint) and an embedding request gets the server's embedder identity back, and a mismatch means
the work is done in process. Requests carry honed's own `ChatRequest` (every parameter and the sample
index), the replies the provider's own result; the caller still caches, retries and logs as before, and
its cache keys do not change. If the server stops answering mid-way, the caller loads its own model and
goes on. `[local] use_server = false` (or `HONED_LOCAL_USE_SERVER=0`) turns all of this off.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from honed import errors
from honed.errors import HonedError
from honed.models.types import ChatRequest, ProviderResult, Usage

if TYPE_CHECKING:
    import urllib.error

    from honed.config import Settings

FILE = "serve.json"
_FORMAT = 1
#: how long a probe of the server's status may take before the file is taken as stale
PROBE_TIMEOUT_S = 2.0
#: a delegated call waits as long as the caller's endpoint timeout allows, at least this long
MIN_CALL_TIMEOUT_S = 600.0
STATUS_PATH = "/honed/status"
GENERATE_PATH = "/honed/generate"
EMBEDDINGS_PATH = "/embeddings"
#: errors a served call may raise and the caller re-raises as its own (anything else: do it in process)
_FORWARDED_ERRORS = ("InvalidInputError", "UnknownModelError", "NotFoundError", "ConfigError")


class ServerGone(Exception):
    """The server did not answer, or answered something this process cannot use: do the work here."""


@dataclass(frozen=True)
class Served:
    """What a running `honed serve` published: `base_url` ends in `/v1`."""

    base_url: str
    pid: int
    endpoints: tuple[str, ...]
    embedders: bool


def discovery_file(data_folder: Path) -> Path:
    return data_folder / FILE


@dataclass(frozen=True)
class Publication:
    """What `publish` wrote, so that `withdraw` removes that file and no other."""

    path: Path
    token: str
    #: the file this one replaced (another server of the workspace), put back on withdraw if it still runs
    previous: str | None


def publish(
    data_folder: Path, *, base_url: str, endpoints: tuple[str, ...], embedders: bool = True
) -> Publication:
    """Write this process's discovery file (atomically: a reader sees the old file or the new one)."""
    path = discovery_file(data_folder)
    try:
        previous: str | None = path.read_text(encoding="utf-8")
    except OSError:
        previous = None
    token = secrets.token_hex(16)
    body = {
        "format": _FORMAT,
        "base_url": base_url,
        "pid": os.getpid(),
        "token": token,
        "endpoints": list(endpoints),
        "embedders": embedders,
        "started": time.time(),
    }
    _write(path, json.dumps(body))
    return Publication(path, token, previous)


def withdraw(publication: Publication) -> None:
    """Remove the discovery file `publication` wrote, if it is still there: a file another server wrote
    since is theirs. The file it replaced comes back if that server still runs."""
    path = publication.path
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(current, dict) or current.get("token") != publication.token:
        return
    previous = publication.previous
    earlier = _parse(previous) if previous is not None else None
    if previous is not None and earlier is not None and earlier.pid != os.getpid() and _alive(earlier.pid):
        _write(path, previous)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def announced(data_folder: Path) -> Served | None:
    """The server the discovery file names while its process lives (None if none), without asking it
    anything: for messages. Work is sent only where `find`, which checks that it answers, says."""
    try:
        served = _parse(discovery_file(data_folder).read_text(encoding="utf-8"))
    except OSError:
        return None
    return served if served is not None and _alive(served.pid) else None


def _write(path: Path, text: str) -> None:
    staging = path.with_name(f".{FILE}.{os.getpid()}")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def _parse(text: str) -> Served | None:
    try:
        data = json.loads(text)
        if data.get("format") != _FORMAT:
            return None
        return Served(
            base_url=str(data["base_url"]).rstrip("/"),
            pid=int(data["pid"]),
            endpoints=tuple(str(e) for e in data["endpoints"]),
            embedders=bool(data.get("embedders")),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


_lock = threading.Lock()
_found: dict[Path, Served | None] = {}


def find(settings: Settings) -> Served | None:
    """The live server of `settings`' workspace, or None (none running, stale file, or turned off).
    Probed once per process; `forget` drops the answer (e.g. when the server stopped answering)."""
    if not settings.local.use_server or settings.data_folder is None:
        return None
    path = discovery_file(settings.data_folder)
    with _lock:
        if path in _found:
            return _found[path]
    served = _probe(path)
    with _lock:
        _found[path] = served
    return served


def forget(settings: Settings) -> None:
    if settings.data_folder is not None:
        with _lock:
            _found[discovery_file(settings.data_folder)] = None


def _probe(path: Path) -> Served | None:
    try:
        served = _parse(path.read_text(encoding="utf-8"))
    except OSError:
        return None
    if served is None or served.pid == os.getpid() or not _alive(served.pid):
        return None
    try:
        status = _request(served.base_url + STATUS_PATH, None, PROBE_TIMEOUT_S)
    except ServerGone:
        return None
    return served if status.get("pid") == served.pid else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: the HTTP probe decides
    except (OSError, OverflowError):
        return False
    return True


def _request(url: str, body: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
    """GET (no body) or POST JSON; the reply's JSON. `HonedError` for an error honed can forward,
    `ServerGone` for everything else (refused, timed out, not honed's answer)."""
    import urllib.error
    import urllib.request  # here: most processes never look for a server (~50 ms of imports)

    # The server is on loopback: never through a proxy the environment names.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with opener.open(request, timeout=timeout) as response:
            reply: Any = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise _error_from(exc) from None
    except (OSError, ValueError) as exc:
        raise ServerGone(str(exc)) from None
    if not isinstance(reply, dict):
        raise ServerGone("not a JSON object")
    return reply


def _error_from(exc: urllib.error.HTTPError) -> Exception:
    try:
        raw = exc.read()
    except OSError:
        raw = b""
    return _error_from_body(exc.code, raw)


def _error_from_body(status: int, raw: bytes) -> Exception:
    """The server's error as the `HonedError` the work would have raised here, when it is one of those a
    local model raises for the request itself (bad input, unknown model); else `ServerGone`."""
    try:
        error = json.loads(raw).get("error") or {}
    except (ValueError, AttributeError):
        return ServerGone(f"HTTP {status}")
    kind = error.get("honed_error")
    cls = getattr(errors, kind, None) if kind in _FORWARDED_ERRORS else None
    if isinstance(cls, type) and issubclass(cls, HonedError):
        return cls(str(error.get("honed_message") or error.get("message")), hint=error.get("honed_hint"))
    return ServerGone(f"HTTP {status}: {error.get('message')}")


class ServedModels:
    """Calls to one running server: chat generations for the local provider, vectors for embedders."""

    def __init__(self, served: Served, *, timeout_s: float = MIN_CALL_TIMEOUT_S) -> None:
        self.served = served
        self.timeout_s = max(timeout_s, MIN_CALL_TIMEOUT_S)
        # An HTTP session belongs to an event loop: one per loop that calls (each entry keeps its loop).
        self._sessions: dict[int, tuple[Any, Any]] = {}

    def serves_chat(self, endpoint: str) -> bool:
        return endpoint in self.served.endpoints

    async def generate(
        self, endpoint: str, model: str, request: ChatRequest, identity: str | None
    ) -> ProviderResult:
        """`request` run by the server's `endpoint`/`model` (the same model: `identity` must match).
        Concurrent calls are concurrent requests, so the server batches them as the engine here would."""
        import asyncio

        import aiohttp

        body = {"endpoint": endpoint, "model": model, "request": request.to_dict(), "identity": identity}
        loop = asyncio.get_running_loop()
        entry = self._sessions.get(id(loop))
        if entry is None:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            connector = aiohttp.TCPConnector(limit=0)
            entry = self._sessions[id(loop)] = (
                loop,
                aiohttp.ClientSession(timeout=timeout, connector=connector),
            )
        session = entry[1]
        try:
            async with session.post(self.served.base_url + GENERATE_PATH, json=body) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServerGone(str(exc)) from None
        if status >= 400:
            raise _error_from_body(status, raw)
        try:
            reply = json.loads(raw)
            return ProviderResult(
                text=str(reply["text"]),
                usage=Usage(int(reply["input_tokens"]), int(reply["output_tokens"])),
                finish_reason=reply.get("finish_reason"),
                model=reply.get("model"),
                tool_calls=tuple(reply["tool_calls"]) if reply.get("tool_calls") else None,
                queue_s=None if reply.get("queue_s") is None else float(reply["queue_s"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ServerGone(f"unexpected reply: {exc}") from None

    async def aclose(self) -> None:
        """Close the HTTP sessions opened on the running loop (others were closed with their loops)."""
        import asyncio

        loop = asyncio.get_running_loop()
        for key, (owner, session) in list(self._sessions.items()):
            if owner is loop:
                await session.close()
            if owner is loop or owner.is_closed():
                del self._sessions[key]

    def embed(self, model: str, texts: list[str], identity: str, batch_size: int) -> list[bytes]:
        """The float32 little-endian bytes of each text's vector from the server's `model`, which must
        have `identity`; `ServerGone` when it is another model (or none)."""
        body = {
            "model": model,
            "input": texts,
            "encoding_format": "base64",
            "honed_batch_size": batch_size,
        }
        reply = _request(self.served.base_url + EMBEDDINGS_PATH, body, self.timeout_s)
        if reply.get("honed_identity") != identity:
            raise ServerGone(f"the server's {model} is {reply.get('honed_identity')}, not {identity}")
        try:
            rows = sorted(reply["data"], key=lambda row: int(row["index"]))
            vectors = [base64.b64decode(row["embedding"]) for row in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise ServerGone(f"unexpected reply: {exc}") from None
        if len(vectors) != len(texts):
            raise ServerGone(f"{len(vectors)} vectors for {len(texts)} texts")
        return vectors
