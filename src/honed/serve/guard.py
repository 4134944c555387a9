"""What every request must be before any route (or the token check) sees it.

A web page the user visits can send "simple" cross-site requests to a server on 127.0.0.1 (a POST with
`Content-Type: text/plain` needs no CORS preflight), and by DNS rebinding it can make its own name resolve
to 127.0.0.1 and read the answers. An open loopback server has no token to stop either, so `RequestGuard`
checks every request, on every path, before authentication and before any body is read:

- `Host` must name this server: on a loopback address `127.0.0.1`, `localhost` or `[::1]` with the port it
  listens on; on another address that address and port; plus `allowed_hosts`. 421 Misdirected Request
  otherwise (RFC 9110 §15.5.20), 400 when it is missing or malformed. Listening on all interfaces
  (0.0.0.0), where tokens are required, any Host is accepted unless `allowed_hosts` is set.
- `Origin`, when present, must be the request's own origin or one of `allow_origins`: 403.
- A POST, PUT or PATCH with a body must be JSON (`application/json` or `application/*+json`, any
  parameters) or of a type its route declares with `accepts(...)`: 415. Browsers cannot send JSON
  cross-site without a CORS preflight, which this server does not grant to foreign origins.
- The body may not exceed `max_body_bytes`: Content-Length is checked up front and the bytes are counted as
  they arrive, so a chunked body without a length is cut off too: 413.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from honed.config import ServeConfig, normal_origin, origin_of
from honed.serve.auth import is_loopback
from honed.serve.responses import HttpError, error_for

#: The `openapi_extra` key under which a route lists the body types it takes besides JSON.
BODY_TYPES_KEY = "x-honed-body-types"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
ANY_INTERFACE = ("0.0.0.0", "::", "")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_NAME = re.compile(r"[a-z0-9_.-]+|\[[0-9a-f:.]+\]")


def accepts(*media_types: str) -> dict[str, Any]:
    """`openapi_extra` for a route whose body may also be of these types, e.g.
    `@router.post("/v1/traces", openapi_extra=accepts("application/x-protobuf"))`. JSON is always taken."""
    return {BODY_TYPES_KEY: [t.strip().lower() for t in media_types]}


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


@dataclass(frozen=True)
class HostRule:
    """A name the Host header may carry: exact, or `*.domain` for its subdomains; on `port` (None: any
    port), or on the port the server listens on (`own_port`)."""

    name: str
    port: int | None = None
    own_port: bool = False

    @classmethod
    def parse(cls, text: str) -> HostRule:
        """`NAME`, `NAME:PORT`, `*.DOMAIN` (as validated in `ServeConfig`)."""
        authority = split_authority(text.lower().removeprefix("*."), None)
        if authority is None:
            raise ValueError(f"{text!r} is not a host name")
        name, port = authority
        return cls(("*." if text.startswith("*.") else "") + name, port)

    def matches(self, name: str, port: int | None, own_port: int | None) -> bool:
        if self.name.startswith("*."):
            if not name.endswith(self.name[1:]):
                return False
        elif name != self.name:
            return False
        wanted = own_port if self.own_port else self.port
        return wanted is None or port == wanted


@dataclass(frozen=True)
class RequestPolicy:
    """What `RequestGuard` lets through. `hosts` None: any Host."""

    hosts: tuple[HostRule, ...] | None
    allow_origins: frozenset[str] = frozenset()
    max_body_bytes: int = ServeConfig().max_body_bytes

    @classmethod
    def for_server(cls, host: str, serve: ServeConfig) -> RequestPolicy:
        """The policy for a server listening on `host` (its `--host`) with the `[serve]` settings."""
        extra = tuple(HostRule.parse(h) for h in serve.allowed_hosts if h != "*")
        hosts: tuple[HostRule, ...] | None
        if "*" in serve.allowed_hosts or (host in ANY_INTERFACE and not extra):
            hosts = None
        elif host in ANY_INTERFACE:
            hosts = extra
        else:
            own = _bracketed(host.lower())
            names = dict.fromkeys((*LOOPBACK_NAMES, own) if is_loopback(host) else (own,))
            hosts = (*(HostRule(n, own_port=True) for n in names), *extra)
        return cls(hosts, frozenset(serve.allow_origins), serve.max_body_bytes)


class RequestGuard:
    """ASGI middleware enforcing `policy` on every HTTP request (see the module docstring). `routes` (the
    app's, a live list) are looked up only for the body types a route declares with `accepts`."""

    def __init__(self, app: ASGIApp, policy: RequestPolicy, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.policy = policy
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check(scope)
        except HttpError as exc:
            await error_for(exc)(scope, receive, send)
            return
        await _BodyLimit(self.app, self.policy.max_body_bytes)(scope, receive, send)

    def _check(self, scope: Scope) -> None:
        headers = _headers(scope)
        scheme = str(scope.get("scheme", "http"))
        own = self._check_host(scope, headers.get(b"host", []), scheme)
        self._check_origin(headers.get(b"origin", []), scheme, own)
        length = _content_length(headers.get(b"content-length", []), self.policy.max_body_bytes)
        if scope["method"] in BODY_METHODS and (length or b"transfer-encoding" in headers):
            self._check_type(scope, headers.get(b"content-type", []))

    def _check_host(self, scope: Scope, values: list[str], scheme: str) -> tuple[str, int | None] | None:
        """The request's (name, port) from its Host header, which must be one this server answers to."""
        if len(values) > 1:
            raise HttpError("the request has more than one Host header", status=400, code="invalid_host")
        authority = split_authority(values[0], scheme) if values else None
        if values and authority is None:
            raise HttpError(
                f"the Host header {_shown(values[0])} is malformed", status=400, code="invalid_host"
            )
        if self.policy.hosts is None:
            return authority
        if authority is None:
            raise HttpError("the request has no Host header", status=400, code="invalid_host")
        server = scope.get("server")
        own_port = server[1] if server and isinstance(server[1], int) else None
        if not any(rule.matches(*authority, own_port) for rule in self.policy.hosts):
            raise HttpError(
                f"this server does not answer to the host {_shown(values[0])}",
                status=421,
                code="host_not_allowed",
                hint="call it by the address it listens on, or start it with --allowed-host NAME",
            )
        return authority

    def _check_origin(self, values: list[str], scheme: str, own: tuple[str, int | None] | None) -> None:
        if not values:
            return
        try:
            origin = normal_origin(values[0]) if len(values) == 1 else ""
        except ValueError:
            origin = ""
        same = own is not None and origin == origin_of(scheme, *own)
        if not (same or origin in self.policy.allow_origins):
            raise HttpError(
                f"requests from the web page origin {_shown(', '.join(values))} are not allowed",
                status=403,
                kind="permission_error",
                code="origin_not_allowed",
                hint="start the server with --allow-origin ORIGIN to let that page call it",
            )

    def _check_type(self, scope: Scope, values: list[str]) -> None:
        media = values[0].split(";", 1)[0].strip().lower() if len(values) == 1 else ""
        declared = self._declared_types(scope)
        if media and (is_json(media) or media in declared):
            return
        if len(values) > 1:
            sent = "with several Content-Type headers"
        elif media:
            sent = f"as {_shown(values[0])}"
        else:
            sent = "without a Content-Type"
        wanted = " or ".join(("JSON", *declared))
        raise HttpError(
            f"the request body must be {wanted}; this one was sent {sent}",
            status=415,
            code="unsupported_media_type",
            param="Content-Type",
            hint="send it with Content-Type: application/json",
        )

    def _declared_types(self, scope: Scope) -> list[str]:
        return _declared_types(self.routes, scope)


def _declared_types(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            # FastAPI (0.16x) includes a router as one route that wraps it (no prefixes here): the route
            # that declares its body types is inside.
            inner = getattr(route, "original_router", None)
            if inner is not None:
                return _declared_types(inner.routes, scope)
            extra = getattr(route, "openapi_extra", None) or {}
            return list(extra.get(BODY_TYPES_KEY, ()))
    return []


class _BodyLimit:
    """Runs the app with a `receive` that counts body bytes. Past `limit` it answers 413 itself (unless the
    app has started its response) and tells the app the client is gone; the app's own response and the
    errors it raises over the missing body are dropped."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.received = 0
        self.cut = False
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def limited_receive() -> Message:
            if self.cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.cut = True
                    if not self.started:
                        self.started = True
                        await error_for(too_large(self.limit))(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if self.cut:
                return
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not self.cut:
                raise


def too_large(limit: int) -> HttpError:
    return HttpError(
        f"the request body is larger than this server's limit of {limit:,} bytes",
        status=413,
        code="body_too_large",
        hint="send less per request (split a batch), or raise --max-body-bytes / [serve] max_body_bytes",
    )


def split_authority(value: str, scheme: str | None) -> tuple[str, int | None] | None:
    """`host[:port]` as (lowercase name, port); the scheme's default port when none is written (None
    without a scheme). None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]") + 1
        name, rest = value[:end], value[end:]
    else:
        name, sep, port_text = value.partition(":")
        rest = sep + port_text
    if not _valid_name(name) or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
        return None
    port = int(rest[1:]) if rest else (_DEFAULT_PORTS.get(scheme) if scheme else None)
    if port is not None and not 0 < port < 65536:
        return None
    return name, port


def _valid_name(name: str) -> bool:
    return bool(name) and _NAME.fullmatch(name) is not None


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _headers(scope: Scope) -> dict[bytes, list[str]]:
    out: dict[bytes, list[str]] = {}
    for key, value in scope.get("headers", []):
        out.setdefault(key.lower(), []).append(value.decode("latin-1"))
    return out


def _content_length(values: list[str], limit: int) -> int:
    """The declared length (0 when none); 400 when malformed, 413 past `limit`."""
    if not values:
        return 0
    if len(set(values)) > 1 or not values[0].strip().isdigit():
        raise HttpError("the Content-Length header is malformed", status=400, param="Content-Length")
    length = int(values[0])
    if length > limit:
        raise too_large(limit)
    return length


def _shown(value: str) -> str:
    return repr(value if len(value) <= 100 else value[:100] + "...")
