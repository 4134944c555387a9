"""Prompts: the list of prompts and chains, a name's history (versions, notes, labels and who moved them),
a version's content, two versions side by side with their diff, and moving a label (scope write).

The domain functions are the CLI's (`list_all`, `history`, `get_item`, `diff_prompts`, `set_label`); a
label moved here names its mover (`by=`), so `label_moves` can show who moved it, when, and from where.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from honed.errors import InvalidInputError, NotFoundError
from honed.prompts import diff_prompts, get_item, history, list_all, set_label, to_yaml
from honed.prompts.registry import kind_named, label_moves
from honed.store.names import ANY, Version
from honed.ui.forms import FORM, require
from honed.ui.web import page
from honed.workspace import Workspace


def _pick(versions: list[Version], number: int | None, default: int) -> Version:
    """The version numbered `number` (default: the one at index `default`); 404 for a number not there."""
    if number is None:
        return versions[default]
    for v in versions:
        if v.number == number:
            return v
    raise NotFoundError(
        f"{versions[0].kind} {versions[0].name!r} has no version v{number}",
        hint=f"it has v1 to v{versions[-1].number}",
    )


def router(h: Workspace) -> APIRouter:
    api = APIRouter()

    @api.get("/prompts")
    def prompts(request: Request) -> Response:
        return page(request, "prompts/list.html", {"rows": list_all(h.store)})

    @api.get("/prompts/{name}")
    def prompt_page(request: Request, name: str, v: int | None = None) -> Response:
        versions = history(h.store, name)
        shown = _pick(versions, v, -1)
        _, item = get_item(h.store, f"{name}@{shown.hash}")
        labels = {label: ver.number for ver in versions for label in ver.labels}
        # Where each label points as this page shows it: a move posted from it is refused if the label
        # has moved since (someone else moved it meanwhile).
        seen = {label: ver.hash for ver in versions for label in ver.labels}
        return page(
            request,
            "prompts/prompt.html",
            {
                "name": name,
                "kind": kind_named(h.store, name),
                "versions": list(reversed(versions)),
                "shown": shown,
                "text": to_yaml(item),
                "labels": dict(sorted(labels.items())),
                "seen": json.dumps(seen, sort_keys=True),
                "moves": label_moves(h.store, name, limit=50),
            },
        )

    @api.get("/prompts/{name}/diff")
    def diff_page(request: Request, name: str, a: int | None = None, b: int | None = None) -> Response:
        versions = history(h.store, name)
        old = _pick(versions, a, max(len(versions) - 2, 0))
        new = _pick(versions, b, -1)
        _, old_item = get_item(h.store, f"{name}@{old.hash}")
        _, new_item = get_item(h.store, f"{name}@{new.hash}")
        diff = diff_prompts(
            old_item, new_item, old_label=f"{name}@v{old.number}", new_label=f"{name}@v{new.number}"
        )
        return page(
            request,
            "prompts/diff.html",
            {
                "name": name,
                "versions": list(reversed(versions)),
                "old": old,
                "new": new,
                "old_text": to_yaml(old_item),
                "new_text": to_yaml(new_item),
                "diff": diff,
                # The unified diff's body, without its two header lines (the columns name the versions).
                "lines": diff.unified.splitlines()[2:],
            },
        )

    @api.post("/prompts/{name}/labels", openapi_extra=FORM)
    def move_label(
        request: Request,
        name: str,
        label: Annotated[str, Form()],
        version: Annotated[int, Form()],
        seen: Annotated[str, Form()] = "",
    ) -> Response:
        viewer = require(request, "write")
        label = label.strip()
        if not label:
            raise InvalidInputError("give the label a name", hint="e.g. production, staging")
        expect: object = ANY
        if seen:
            try:
                where = json.loads(seen)
            except ValueError:
                raise InvalidInputError("the form is damaged: reload the page") from None
            expect = where.get(label) if isinstance(where, dict) else ANY
        set_label(h.store, f"{name}@v{version}", label, by=viewer.user, expect=expect)
        return RedirectResponse(f"/prompts/{name}#labels", status_code=303)

    return api
