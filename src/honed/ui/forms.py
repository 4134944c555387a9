"""What every UI route that changes something shares: the body types it takes and the CSRF check.

A form posts `application/x-www-form-urlencoded` (or multipart); the request guard refuses a body type a
route has not declared (`honed.serve.guard.accepts`), so each UI POST route declares `FORM`. `check_csrf`
runs on every UI route (the router's dependency) and refuses a POST whose CSRF token (the form's `csrf`
field, or htmx's `X-CSRF-Token` header) is not the viewer's, before the route reads or writes anything.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import HTTPException, Request

from honed.serve.guard import accepts
from honed.ui.session import Viewer

FORM: dict[str, Any] = accepts("application/x-www-form-urlencoded", "multipart/form-data")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def check_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    viewer: Viewer | None = request.state.viewer
    if viewer is None:
        return  # the sign-in form, the one change an anonymous visitor may post
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        field = form.get("csrf")
        sent = field if isinstance(field, str) else None
    if sent is None or not hmac.compare_digest(sent, viewer.csrf):
        raise HTTPException(403, "the form is stale or came from another site: reload the page and retry")


def require(request: Request, scope: str) -> Viewer:
    """The viewer, if their scope includes `scope`; 403 otherwise."""
    viewer: Viewer = request.state.viewer
    if not viewer.can(scope):
        raise HTTPException(
            403, f"your token ({viewer.user}) has the {viewer.scope!r} scope; this needs {scope!r}"
        )
    return viewer
