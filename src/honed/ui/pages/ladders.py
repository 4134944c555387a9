"""Optimisation ladders: the list of stored ledgers, and a ladder's page: the body of its HTML report (the
ledger, the charts and the diagnosis, as `honed optimize report` writes it) under the UI's navigation.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from honed.optimize.ladder import KIND, stored_ledger
from honed.optimize.report import LADDER_CSS, ladder_sections
from honed.ui.web import page, trusted
from honed.workspace import Workspace


def router(h: Workspace) -> APIRouter:
    api = APIRouter()

    @api.get("/ladders")
    def ladders(request: Request) -> Response:
        return page(request, "ladders/list.html", {"rows": h.store.names.names(KIND)})

    @api.get("/ladders.css", include_in_schema=False)
    def ladder_css() -> Response:
        # The report's own rules, which the standalone page inlines: this server's policy allows
        # stylesheets from itself only, never an inline <style>.
        return Response(LADDER_CSS, media_type="text/css")

    @api.get("/ladders/{name}")
    def ladder(request: Request, name: str, version: str | None = None) -> Response:
        ledger = stored_ledger(h, name, version or None)
        context = {
            "name": name,
            "report": trusted(ladder_sections(ledger)),
            "versions": list(reversed(h.store.names.history(KIND, name))),
            "shown": version,
        }
        return page(request, "ladders/ladder.html", context)

    return api
