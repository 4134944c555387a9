"""The web UI's plumbing: the template environment, the page response, and the middleware that puts a viewer
on every UI request (or sends an anonymous one to sign in) and sets the security headers.

Templates are Jinja2 with autoescaping on for every template: model outputs, case data, logs and names are
untrusted and render as text. The only markup that passes through unescaped is what honed's own report kit
builds (`honed.reports`, which escapes every value it is given), marked with `Markup` where it is handed
over. The Content-Security-Policy allows scripts and styles from this server only (htmx, vendored, with
eval off), so even markup that slipped through could not run a script.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from honed.hashing import short
from honed.reports import verdict_badge
from honed.serve.auth import is_api
from honed.ui.session import COOKIE, Sessions, Viewer

HERE = Path(__file__).parent
#: UI paths an anonymous visitor may open.
PUBLIC = ("/signin", "/static/")
HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def _ago(when: datetime | None) -> str:
    if when is None:
        return ""
    seconds = (datetime.now(UTC) - (when if when.tzinfo else when.replace(tzinfo=UTC))).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def _num(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _usd(value: float | None) -> str:
    if value is None:
        return "–"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def _latency(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        verdict=lambda v: trusted(verdict_badge(str(v))),
        short=short,
        ago=_ago,
        num=_num,
        usd=_usd,
        latency=_latency,
        urlquote=lambda s: quote(str(s), safe=""),
    )
    return env


ENV = _environment()


def page(request: Request, template: str, context: Mapping[str, Any], *, status: int = 200) -> HTMLResponse:
    """A template rendered for the request's viewer (`viewer` and `csrf` are in every template's context;
    an htmx request for a fragment gets the same template's `fragment` block when it has one)."""
    values = _values(request, context)
    tmpl = ENV.get_template(template)
    if request.headers.get("hx-request") and "fragment" in tmpl.blocks:
        ctx = tmpl.new_context(values)
        text = "".join(tmpl.blocks["fragment"](ctx))
    else:
        text = tmpl.render(values)
    return HTMLResponse(text, status_code=status)


def fragment(request: Request, template: str, context: Mapping[str, Any]) -> str:
    """A template rendered for the request's viewer, as text to send inside another response."""
    return ENV.get_template(template).render(_values(request, context))


def _values(request: Request, context: Mapping[str, Any]) -> dict[str, Any]:
    viewer: Viewer = request.state.viewer
    return {"viewer": viewer, "csrf": viewer.csrf, "path": request.url.path, **context}


def trusted(markup: str) -> Markup:
    """Markup built by honed's report kit (which escaped every value in it), to embed in a template."""
    return Markup(markup)


class UiMiddleware:
    """Puts the viewer on every UI request (`request.state.viewer`); an anonymous request for anything but
    the sign-in page and static files is sent to sign in (a GET) or refused (401), before routing, so an
    anonymous visitor cannot tell which pages exist. Adds the security headers to every UI response."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_api(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        viewer = await run_in_threadpool(self.sessions.viewer, request.cookies.get(COOKIE))
        path = scope["path"]
        response: Response | None = None
        if viewer is None and not path.startswith(PUBLIC):
            if scope["method"] in ("GET", "HEAD"):
                target = path + (
                    f"?{scope['query_string'].decode('latin-1')}" if scope["query_string"] else ""
                )
                response = RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)
            else:
                response = PlainTextResponse("sign in first", status_code=401)
        scope.setdefault("state", {})["viewer"] = viewer

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        if response is not None:
            await response(scope, receive, with_headers)
            return
        await self.app(scope, receive, with_headers)
