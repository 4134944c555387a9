"""Who may call `honed serve`: bearer tokens with scopes, checked before a request's body is read.

On a loopback address the server is open unless `--require-token`: only this machine can reach it. On any
other address every request needs `Authorization: Bearer hnd_...`, and the server will not start until a
token exists. The check is ASGI middleware rather than a route dependency so that it runs before routing, for
every path (a 404 must not tell an anonymous caller which paths exist), before any body is parsed or
anything written. Only `honed.serve.guard` runs before it (Host, Origin, body type and size).
"""

from __future__ import annotations

import base64
import ipaddress
import threading
import time
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from honed.errors import ConfigError, StoreError
from honed.serve.responses import HttpError, error_for
from honed.store.tokens import ApiToken

if TYPE_CHECKING:
    from honed.store import Store

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: The scope each path needs; any other path needs a valid token of any scope.
PATH_SCOPES: tuple[tuple[str, str], ...] = (
    ("/v1/chat", "inference"),
    ("/v1/models", "inference"),
    ("/v1/embeddings", "inference"),
    ("/v1/honed", "inference"),
    ("/v1/logs", "ingest"),
    ("/v1/feedback", "ingest"),
    ("/v1/traces", "ingest"),
    ("/api/public/otel", "ingest"),
)
#: Paths that also take HTTP Basic auth, as Langfuse's SDK sends it: the password is the API token and the
#: user name (Langfuse's "public key") must be the token's name.
BASIC_PREFIXES = ("/api/public/",)
_CREATE_HINT = "create one with `honed tokens create NAME --scope inference --scope ingest`"


#: Paths of the HTTP API; everything else is the web UI's, which checks its own sessions (`honed.ui`).
API_PREFIXES = ("/v1/", "/api/")


def is_api(path: str) -> bool:
    return path.startswith(API_PREFIXES) or path in ("/v1", "/api")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def scope_for(path: str) -> str | None:
    for prefix, scope in PATH_SCOPES:
        if path == prefix or path.startswith(prefix + "/"):
            return scope
    return None


def check_can_listen(host: str, store: Store | None, *, require_token: bool) -> bool:
    """Whether requests will need a token on `host`; ConfigError if they would but none can pass."""
    required = require_token or not is_loopback(host)
    if not required:
        return False
    why = (
        f"refusing to listen on {host}" if not is_loopback(host) else "refusing to start with --require-token"
    )
    if store is None:
        raise ConfigError(
            f"{why}: API tokens live in a workspace's database and there is none here",
            hint="run `honed init` (or set HONED_HOME), then `honed tokens create`",
        )
    if store.tokens.active_count() == 0:
        raise ConfigError(
            f"{why} without an API token, and there are none, so no request could be served",
            hint=_CREATE_HINT,
        )
    return True


class TokenGate:
    """Verifies bearer tokens against the store. `last_used_at` is written at most once per
    `touch_every_s` per token, so a busy client does not turn every request into a database write."""

    def __init__(self, store: Store, *, touch_every_s: float = 60.0) -> None:
        self._store = store
        self._touch_every_s = touch_every_s
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, authorization: str | None, scope: str | None, *, basic: bool = False) -> ApiToken:
        """The token allowed to make this request; HttpError 401 (no valid token) or 403 (wrong scope).
        With `basic`, `Authorization: Basic base64(NAME:TOKEN)` is taken too (NAME: the token's name)."""
        scheme, _, value = (authorization or "").partition(" ")
        name = None
        if basic and scheme.lower() == "basic":
            name, value = _basic(value)
        elif scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("this server needs an API token: send `Authorization: Bearer <token>`")
        token = self._store.tokens.verify(value.strip())
        if token is None:
            raise _unauthorized("the API token is not valid (unknown, malformed or revoked)")
        if name is not None and name not in (token.name, token.id):
            raise _unauthorized(
                f"the public key {name!r} is not the name of the token given as the secret key",
                hint=f"set the public key (LANGFUSE_PUBLIC_KEY) to {token.name!r}",
            )
        if scope is not None and scope not in token.scopes:
            raise HttpError(
                f"the API token {token.id} ({token.name}) lacks the {scope!r} scope this endpoint needs",
                status=403,
                kind="permission_error",
                code="insufficient_scope",
                hint=f"create a token with --scope {scope}",
            )
        self._maybe_touch(token.id)
        return token

    def _maybe_touch(self, token_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._touched.get(token_id)
            if last is not None and now - last < self._touch_every_s:
                return
            self._touched[token_id] = now
        try:
            self._store.tokens.touch(token_id)
        except StoreError:
            # Bookkeeping only: a busy database must not fail an authorised request. Try again next time.
            with self._lock:
                self._touched.pop(token_id, None)


class AuthMiddleware:
    """ASGI middleware: every HTTP request must carry a token `gate` accepts for the path's scope; with
    `api_only`, only API paths (the web UI's pages check the session their own middleware found)."""

    def __init__(self, app: ASGIApp, gate: TokenGate, *, api_only: bool = False) -> None:
        self.app = app
        self.gate = gate
        self.api_only = api_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.api_only and not is_api(scope["path"])):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        try:
            basic = scope["path"].startswith(BASIC_PREFIXES)
            token = await run_in_threadpool(
                lambda: self.gate.check(header, scope_for(scope["path"]), basic=basic)
            )
        except (HttpError, StoreError) as exc:
            await error_for(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["api_token"] = token
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _basic(value: str) -> tuple[str, str]:
    """(user, password) of a Basic credential; 401 when it is not one."""
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        sep, user, password = "", "", ""
    if not sep or not password:
        raise _unauthorized("the Basic credential is not base64 of PUBLIC_KEY:SECRET_KEY")
    return user, password


def _unauthorized(message: str, hint: str = _CREATE_HINT) -> HttpError:
    return HttpError(
        message,
        status=401,
        code="invalid_api_key",
        hint=hint,
        headers={"WWW-Authenticate": "Bearer"},
    )
