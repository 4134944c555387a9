"""Datasets: the list, a dataset's versions and splits, its cases with text search and pages, and a form
to edit or add a case (scope write), which records a new version and leaves every earlier one as it was.

The domain functions are `list_datasets`, `get_dataset`, `dataset_history`, `find_cases` and `save_case`
(which records who made the change); this module parses the form and renders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from honed.datasets.case import Case, case_from_fields
from honed.datasets.registry import dataset_history, find_cases, get_dataset, list_datasets, save_case
from honed.errors import InvalidInputError, NotFoundError
from honed.ui.forms import FORM, require
from honed.ui.web import page
from honed.workspace import Workspace

#: Cases per page.
CASES_PER_PAGE = 25


@dataclass(frozen=True)
class CaseForm:
    """The edit form's fields as text, as the person typed them (so a refused form comes back intact)."""

    id: str = ""
    inputs: str = "{\n  \n}"
    reference: str = ""
    reference_json: bool = False
    split: str = ""
    metadata: str = ""

    @classmethod
    def of(cls, case: Case) -> CaseForm:
        ref = case.reference
        as_json = ref is not None and not isinstance(ref, str)
        return cls(
            id=case.id,
            inputs=_dump(case.inputs),
            reference="" if ref is None else (_dump(ref) if as_json else str(ref)),
            reference_json=as_json,
            split=case.split or "",
            metadata=_dump(case.metadata) if case.metadata else "",
        )

    def case(self) -> Case:
        """The case these fields describe (its id derived from its inputs when left empty). Raises
        InvalidInputError naming the field."""
        inputs = _load("inputs", self.inputs)
        if not isinstance(inputs, dict):
            raise InvalidInputError('inputs must be a JSON object, e.g. {"question": "..."}')
        fields: dict[str, Any] = {"id": self.id.strip() or None, "inputs": inputs}
        if self.reference.strip():
            fields["reference"] = (
                _load("reference", self.reference) if self.reference_json else self.reference
            )
        if self.split.strip():
            fields["split"] = self.split.strip()
        if self.metadata.strip():
            fields["metadata"] = _load("metadata", self.metadata)
        try:
            return case_from_fields(fields)
        except ValueError as exc:
            raise InvalidInputError(f"the case is not valid: {exc}") from None


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _load(field: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{field} is not valid JSON: {exc.msg} (line {exc.lineno})") from None


def router(h: Workspace) -> APIRouter:
    api = APIRouter()

    @api.get("/datasets")
    def datasets(request: Request) -> Response:
        return page(request, "datasets/list.html", {"rows": list_datasets(h.store)})

    @api.get("/datasets/{name}")
    def dataset_page(
        request: Request,
        name: str,
        v: int | None = None,
        q: str | None = None,
        split: str | None = None,
        offset: int = 0,
    ) -> Response:
        versions = dataset_history(h.store, name)
        dataset = get_dataset(h.store, f"{name}@v{v}" if v is not None else name)
        found = find_cases(dataset, q, split=split or None)
        offset = max(offset, 0)
        return page(
            request,
            "datasets/dataset.html",
            {
                "dataset": dataset,
                "versions": list(reversed(versions)),
                "latest": versions[-1].number,
                "splits": dataset.split_counts(),
                "cases": found[offset : offset + CASES_PER_PAGE],
                "matched": len(found),
                "offset": offset,
                "per_page": CASES_PER_PAGE,
                "query": {"v": dataset.number, "q": q or "", "split": split or ""},
            },
        )

    @api.get("/datasets/{name}/edit")
    def edit_form(request: Request, name: str, case: str | None = None) -> Response:
        require(request, "write")
        dataset = get_dataset(h.store, name)  # edits start from the latest version
        form = CaseForm()
        if case is not None:
            found = next((c for c in dataset.cases if c.id == case), None)
            if found is None:
                raise NotFoundError(f"dataset {dataset.ref} has no case {case!r}")
            form = CaseForm.of(found)
        return _edit_page(request, dataset.name, dataset.number, case, form, None)

    @api.post("/datasets/{name}/cases", openapi_extra=FORM)
    def save(
        request: Request,
        name: str,
        based_on: Annotated[int, Form()],
        replaces: Annotated[str, Form()] = "",
        id: Annotated[str, Form()] = "",
        inputs: Annotated[str, Form()] = "",
        reference: Annotated[str, Form()] = "",
        reference_json: Annotated[bool, Form()] = False,
        split: Annotated[str, Form()] = "",
        metadata: Annotated[str, Form()] = "",
        note: Annotated[str, Form()] = "",
    ) -> Response:
        viewer = require(request, "write")
        form = CaseForm(id, inputs, reference, reference_json, split, metadata)
        try:
            result = save_case(
                h.store,
                name,
                form.case(),
                replaces=replaces or None,
                based_on=based_on,
                note=note.strip() or None,
                by=viewer.user,
            )
        except InvalidInputError as exc:
            # The form comes back as typed, with the reason, rather than an error page that loses it.
            return _edit_page(request, name, based_on, replaces or None, form, exc.one_line(), status=400)
        return RedirectResponse(f"/datasets/{name}?v={result.dataset.number}", status_code=303)

    return api


def _edit_page(
    request: Request,
    name: str,
    based_on: int,
    replaces: str | None,
    form: CaseForm,
    error: str | None,
    *,
    status: int = 200,
) -> Response:
    context = {"name": name, "based_on": based_on, "replaces": replaces, "form": form, "error": error}
    return page(request, "datasets/edit.html", context, status=status)
