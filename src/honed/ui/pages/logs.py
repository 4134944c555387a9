"""Logs and traces: the log list with the CLI's filters, a log in full with feedback and "add to dataset",
and a trace as the tree of its spans.

The filters are parsed by `honed.logs.filters.build_filter`, the parser of `honed logs list`, so `since=7d`
or `min_score=judge=4` mean here what they mean there; feedback goes through `honed.logs.feedback`, the
functions behind `honed logs feedback`; a log becomes a case as `honed logs curate` makes one.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from honed.datasets.registry import KIND as DATASETS
from honed.errors import InvalidInputError
from honed.logs.browse import log_page, trace_tree
from honed.logs.curate import add_log_to_dataset
from honed.logs.feedback import feedback_rows, record_feedback
from honed.logs.filters import build_filter
from honed.logs.record import SOURCES
from honed.ui.forms import FORM, require
from honed.ui.web import page
from honed.workspace import Workspace

#: Logs per page of the list.
LOGS_PER_PAGE = 50
#: The errors filter: the CLI's --errors (only) and --no-errors (none), or either.
ERRORS = {"": None, "only": True, "none": False}


def _pretty(value: Any) -> str | None:
    """JSON as a person reads it (the template escapes it like any text); None for nothing to show."""
    if value in (None, {}, []):
        return None
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _text(value: str | None) -> str | None:
    """A form field: an empty one is "not given", as an option left out on the command line."""
    return value if value and value.strip() else None


def router(h: Workspace) -> APIRouter:
    api = APIRouter()

    @api.get("/logs")
    def logs(
        request: Request,
        prompt: str = "",
        model: str = "",
        source: str = "",
        since: str = "",
        until: str = "",
        feedback: str = "",
        thumbs: str = "",
        min_score: str = "",
        session: str = "",
        trace: str = "",
        errors: str = "",
        after: str | None = None,
    ) -> Response:
        if errors not in ERRORS:
            raise InvalidInputError(f"unknown filter errors={errors!r}", hint="only, none, or leave it empty")
        where = build_filter(
            prompt=_text(prompt),
            model=_text(model),
            source=_text(source),
            since=_text(since),
            until=_text(until),
            feedback=_text(feedback),
            thumbs=_text(thumbs),
            # One text box for the CLI's repeatable --min-score: pairs separated by commas or spaces.
            min_score=min_score.replace(",", " ").split(),
            session=_text(session),
            trace=_text(trace),
            errors=ERRORS[errors],
        )
        found = log_page(h.store, where, limit=LOGS_PER_PAGE, after=after)
        # The filters as typed, to fill the form again and to carry them to the next page.
        values = {
            "prompt": prompt,
            "model": model,
            "source": source,
            "since": since,
            "until": until,
            "feedback": feedback,
            "thumbs": thumbs,
            "min_score": min_score,
            "session": session,
            "trace": trace,
        }
        query = {k: v for k, v in {**values, "errors": errors}.items() if v}
        return page(
            request,
            "logs/list.html",
            {
                "found": found,
                "query": query,
                "values": values,
                "errors": errors,
                "sources": SOURCES,
                "after": after,
            },
        )

    @api.get("/logs/{log_id}")
    def log(request: Request, log_id: str, added: str | None = None) -> Response:
        entry = h.store.logs.get(log_id)
        entry_log = entry.log
        return page(
            request,
            "logs/log.html",
            {
                "entry": entry,
                "log": entry_log,
                "params": _pretty(entry_log.get("params")),
                "metadata": _pretty(entry_log.get("metadata")),
                "inputs": _pretty(entry_log.get("inputs")),
                "datasets": [name for name, _, _ in h.store.names.names(DATASETS)],
                "added": added,
            },
        )

    @api.post("/logs/{log_id}/feedback", openapi_extra=FORM)
    def give_feedback(
        request: Request,
        log_id: str,
        thumbs: Annotated[str | None, Form()] = None,
        rating: Annotated[str | None, Form()] = None,
        correction: Annotated[str | None, Form()] = None,
        comment: Annotated[str | None, Form()] = None,
    ) -> Response:
        viewer = require(request, "annotate")
        score = _text(rating)
        try:
            value = None if score is None else float(score)
        except ValueError:
            raise InvalidInputError(f"rating {rating!r} is not a number", hint="e.g. 4") from None
        rows = feedback_rows(
            log_id,
            thumbs=_text(thumbs),
            rating=value,
            correction=_text(correction),
            comment=_text(comment),
            source=viewer.user,
        )
        found, _ = record_feedback(h.store, log_id, rows, by=viewer.user)
        return RedirectResponse(f"/logs/{quote(found, safe='')}#feedback", status_code=303)

    @api.post("/logs/{log_id}/dataset", openapi_extra=FORM)
    def add_to_dataset(request: Request, log_id: str, dataset: Annotated[str, Form()] = "") -> Response:
        viewer = require(request, "write")
        name = dataset.strip()
        if not name:
            raise InvalidInputError(
                "no dataset named", hint="type the name of a dataset (a new one is created)"
            )
        result = add_log_to_dataset(h.store, log_id, name, by=viewer.user)
        target = quote(h.store.logs.resolve_id(log_id), safe="")
        return RedirectResponse(f"/logs/{target}?added={quote(result.dataset.ref)}", status_code=303)

    @api.get("/traces/{trace_id}")
    def trace(request: Request, trace_id: str) -> Response:
        return page(request, "logs/trace.html", {"tree": trace_tree(h.store, trace_id)})

    return api
