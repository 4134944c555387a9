"""Signing in with an API token, and out. Only where the UI needs it (off loopback, or --require-token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from honed.store import Store
from honed.ui.forms import FORM
from honed.ui.session import COOKIE, SESSION_S, Sessions, ui_scope
from honed.ui.web import ENV


def _next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never `//host` or `https://...`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _form(message: str | None, target: str, status: int = 200) -> Response:
    text = ENV.get_template("signin.html").render(message=message, next=target)
    return HTMLResponse(text, status_code=status)


def router(store: Store | None, sessions: Sessions) -> APIRouter:
    api = APIRouter()

    @api.get("/signin")
    def signin_form(request: Request, next: str | None = None) -> Response:
        if sessions.open:
            return RedirectResponse(_next(next), status_code=303)
        return _form(None, _next(next))

    @api.post("/signin", openapi_extra=FORM)
    def signin(
        request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
    ) -> Response:
        if sessions.open or store is None:
            return RedirectResponse(_next(next), status_code=303)
        found = store.tokens.verify(token.strip())
        if found is None:
            return _form("That token is not valid (unknown, malformed or revoked).", _next(next), 401)
        if ui_scope(found) is None:
            return _form(
                f"Token {found.id} ({found.name}) has no web UI scope: create one with "
                f"`honed tokens create NAME --scope read` (or annotate, write, admin).",
                _next(next),
                403,
            )
        response = RedirectResponse(_next(next), status_code=303)
        response.set_cookie(
            COOKIE,
            sessions.sign_in(found),
            max_age=SESSION_S,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @api.post("/signout", openapi_extra=FORM)
    def signout() -> Response:
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return api
