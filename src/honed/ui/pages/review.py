"""Review: annotation queues made from a run (all its results, or its regressions) or from logs, labelled
with the keyboard (static/review.js clicks the page's own buttons and links; every control also works as a
plain form or link without it).

The routes parse, check the viewer's scope (`annotate` to label, `write` to make or assign a queue), call
`honed.experiments.queues` with the viewer's name as the user, and render; the domain records who did what.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from honed.errors import InvalidInputError
from honed.experiments import queues
from honed.logs.filters import build_filter
from honed.store.review import SCALES, current_labels
from honed.ui.forms import FORM, require
from honed.ui.web import page
from honed.workspace import Workspace

QUEUES_PER_PAGE = 50
ITEMS_PER_PAGE = 100
#: Recent runs offered when making a queue.
RUN_CHOICES = 50
#: Label events shown as the queue's activity.
ACTIVITY = 50


def _go(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _text(value: str) -> str | None:
    return value.strip() or None


def router(h: Workspace) -> APIRouter:
    api = APIRouter()
    store = h.store

    @api.get("/review")
    def queue_list(request: Request, run: str | None = None) -> Response:
        found, _ = store.review.page(QUEUES_PER_PAGE)
        scales = {q.id: q.scale for q in found}
        labelled = store.review.labelled_counts(list(scales), scales)
        sizes = store.review.sizes(list(scales))
        runs, _ = store.runs.page(RUN_CHOICES)
        return page(
            request,
            "review/list.html",
            {
                "queues": found,
                "labelled": labelled,
                "sizes": sizes,
                "runs": runs,
                "chosen": run or "",
                "scales": SCALES,
            },
        )

    @api.post("/review/runs", openapi_extra=FORM)
    def from_run(
        request: Request,
        run: Annotated[str, Form()],
        select: Annotated[str, Form()] = "all",
        baseline: Annotated[str, Form()] = "",
        variant: Annotated[str, Form()] = "",
        scale: Annotated[str, Form()] = "pass_fail",
        name: Annotated[str, Form()] = "",
        assignee: Annotated[str, Form()] = "",
    ) -> Response:
        viewer = require(request, "write")
        if select not in ("all", "regressions"):
            raise InvalidInputError(f"unknown selection {select!r}", hint="all or regressions")
        queue = queues.create_run_queue(
            store,
            run.strip(),
            by=viewer.user,
            regressions=select == "regressions",
            baseline=_text(baseline),
            variant=_text(variant),
            scale=scale,
            name=_text(name),
            assignee=_text(assignee),
        )
        return _go(f"/review/{queue.id}")

    @api.post("/review/logs", openapi_extra=FORM)
    def from_logs(
        request: Request,
        prompt: Annotated[str, Form()] = "",
        model: Annotated[str, Form()] = "",
        since: Annotated[str, Form()] = "",
        thumbs: Annotated[str, Form()] = "",
        feedback: Annotated[str, Form()] = "",
        errors: Annotated[str, Form()] = "",
        limit: Annotated[int, Form()] = 100,
        scale: Annotated[str, Form()] = "pass_fail",
        name: Annotated[str, Form()] = "",
        assignee: Annotated[str, Form()] = "",
    ) -> Response:
        viewer = require(request, "write")
        given = {"prompt": prompt, "model": model, "since": since, "thumbs": thumbs, "feedback": feedback}
        given = {k: v.strip() for k, v in given.items() if v.strip()}
        where = build_filter(**given, errors=True if errors == "only" else None)  # type: ignore[arg-type]
        described = " ".join(f"--{k} {v}" for k, v in given.items()) + (
            " --errors" if errors == "only" else ""
        )
        queue = queues.create_log_queue(
            store,
            where,
            by=viewer.user,
            described=described.strip(),
            scale=scale,
            name=_text(name),
            assignee=_text(assignee),
            limit=limit,
        )
        return _go(f"/review/{queue.id}")

    @api.get("/review/{queue_id}")
    def queue_page(request: Request, queue_id: str, offset: int = 0) -> Response:
        viewer = request.state.viewer
        shown = queues.view(store, queue_id, viewer.user)
        offset = max(offset, 0)
        items = store.review.items(queue_id, offset=offset, limit=ITEMS_PER_PAGE)
        by_item: dict[int, list[tuple[str, str]]] = {}
        for (position, reviewer), label in sorted(shown.labels.items()):
            by_item.setdefault(position, []).append((reviewer, label.words()))
        return page(
            request,
            "review/queue.html",
            {
                "view": shown,
                "queue": shown.queue,
                "items": items,
                "by_item": by_item,
                "offset": offset,
                "per_page": ITEMS_PER_PAGE,
                "activity": store.review.events(queue_id, newest_first=True, limit=ACTIVITY),
            },
        )

    @api.post("/review/{queue_id}/assign", openapi_extra=FORM)
    def assign(request: Request, queue_id: str, assignee: Annotated[str, Form()] = "") -> Response:
        viewer = require(request, "write")
        queues.assign(store, queue_id, _text(assignee), by=viewer.user)
        return _go(f"/review/{queue_id}")

    @api.get("/review/{queue_id}/items/{number}")
    def item_page(request: Request, queue_id: str, number: int) -> Response:
        viewer = request.state.viewer
        queue = store.review.get(queue_id)
        item = store.review.item(queue_id, number - 1)
        labels = current_labels(store.review.events(queue_id, position=item.position))
        mine = labels.get((item.position, viewer.user))
        others = [x for (_, reviewer), x in sorted(labels.items()) if reviewer != viewer.user]
        return page(
            request,
            "review/item.html",
            {
                "queue": queue,
                "item": item,
                "number": number,
                "progress": queues.progress(store, queue, viewer.user),
                "mine": mine,
                "others": others,
                "can_label": viewer.can("annotate"),
            },
        )

    @api.post("/review/{queue_id}/items/{number}/label", openapi_extra=FORM)
    def label(
        request: Request,
        queue_id: str,
        number: int,
        passed: Annotated[str, Form()] = "",
        rating: Annotated[str, Form()] = "",
        correction: Annotated[str | None, Form()] = None,
        comment: Annotated[str | None, Form()] = None,
    ) -> Response:
        viewer = require(request, "annotate")
        if passed not in ("", "pass", "fail"):
            raise InvalidInputError(f"passed={passed!r} is not pass or fail", hint="pass or fail")
        if rating and not rating.isdigit():
            raise InvalidInputError(f"rating {rating!r} is not a number", hint="1 to 5")
        queues.label(
            store,
            queue_id,
            number - 1,
            by=viewer.user,
            passed=None if not passed else passed == "pass",
            rating=int(rating) if rating else None,
            correction=None if correction is None else correction.strip(),
            comment=None if comment is None else comment.strip(),
        )
        # A verdict moves on to the next item; a correction or a comment stays to be read back.
        if passed or rating:
            if number < store.review.size(queue_id):
                return _go(f"/review/{queue_id}/items/{number + 1}")
            return _go(f"/review/{queue_id}")
        return _go(f"/review/{queue_id}/items/{number}")

    @api.post("/review/{queue_id}/undo", openapi_extra=FORM)
    def undo(request: Request, queue_id: str) -> Response:
        viewer = require(request, "annotate")
        undone = queues.undo(store, queue_id, by=viewer.user)
        if undone is None:
            return _go(f"/review/{queue_id}")
        return _go(f"/review/{queue_id}/items/{undone.position + 1}")

    return api
