"""Mounting the UI on the server's app: the viewer middleware, static files, the pages, and HTML errors."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from honed.errors import HonedError
from honed.reports import CSS
from honed.serve.responses import HttpError
from honed.ui.forms import check_csrf
from honed.ui.pages import (
    datasets,
    experiments,
    finetune,
    kb,
    ladders,
    logs,
    playground,
    prompts,
    review,
    signin,
)
from honed.ui.session import Sessions
from honed.ui.web import ENV, HERE, UiMiddleware
from honed.workspace import Workspace


def mount_ui(app: FastAPI, h: Workspace, sessions: Sessions) -> None:
    """Add the UI to `app`. Call it before the request guard is added (the guard must run first)."""
    app.add_middleware(UiMiddleware, sessions=sessions)

    @app.get("/static/report.css", include_in_schema=False)
    def report_css() -> Response:
        # The report kit's stylesheet, the same rules the self-contained reports inline.
        return Response(CSS, media_type="text/css")

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    # Every UI route, sign-in and sign-out included, gets the CSRF check (an anonymous visitor's only
    # form, signing in, has no session to tie a token to: see check_csrf).
    pages = APIRouter(dependencies=[Depends(check_csrf)])
    pages.include_router(signin.router(None if sessions.open else h.store, sessions))
    pages.include_router(experiments.router(h))
    pages.include_router(review.router(h))
    pages.include_router(logs.router(h))
    pages.include_router(kb.router(h))
    pages.include_router(finetune.router(h))
    pages.include_router(ladders.router(h))
    pages.include_router(playground.router(h))
    pages.include_router(prompts.router(h))
    pages.include_router(datasets.router(h))
    app.include_router(pages)


def error_page(request: Request, status: int, message: str, hint: str | None = None) -> Response:
    """An error on a UI path, as a page (the API's errors keep OpenAI's JSON shape). The message is text."""
    viewer = getattr(request.state, "viewer", None)
    text = ENV.get_template("error.html").render(
        status=status, message=message, hint=hint, viewer=viewer, csrf=viewer.csrf if viewer else "", path=""
    )
    return HTMLResponse(text, status_code=status)


def honed_error_page(request: Request, exc: HonedError) -> Response:
    """A HonedError on a UI path: its status as the API would give it, its message masked, as a page."""
    from honed.serve.responses import status_for

    status = exc.status if isinstance(exc, HttpError) else status_for(exc)[0]
    return error_page(request, status, exc.one_line())
