"""The playground: open a stored prompt version (or write one), fill its variables by hand or from 1-20
cases of a dataset version, run it on 1-4 models side by side, and keep what works: save the prompt as a
new version (with a note, recorded under the user) or add an output to a dataset as a case (a new dataset
version).

Every call goes through `honed.run.arun_prompt` with the server's workspace, so it renders exactly as
`honed prompts run` would (retrieval included), and the client's response cache and call log apply. The
server's client decides the cache: `honed serve` opens its client without it (its API must not answer an
application from the cache), so there the page says that runs are not cached; a workspace whose client
caches (the library's, the tests') caches playground runs too. The calls of one run go out concurrently.

Running calls models (it costs), so it needs the write scope, like saving; a read-only viewer sees the
prompt and the form, and no button that runs or changes anything.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.datastructures import FormData

from honed.datasets.case import case_from_fields
from honed.datasets.registry import find_cases, get_dataset, save_case
from honed.errors import HonedError, InvalidInputError
from honed.logs.context import log_context
from honed.prompts import get_prompt, push
from honed.prompts.spec import Prompt
from honed.run import Piece, PromptRun, arun_prompt_grid, astream_prompt_grid
from honed.ui.forms import FORM, require
from honed.ui.web import fragment, page
from honed.workspace import Workspace

MAX_MODELS = 4
MAX_CASES = 20
ROLES = ("system", "user", "assistant")
#: Form fields named `var.NAME` hold the variable NAME's value (filled by hand).
VAR = "var."
STARTER = (("system", "You are a helpful assistant."), ("user", "{{ question }}"))


@dataclass
class Draft:
    """The playground's form as typed: the prompt being written, the models, and where its variables come
    from. Kept as text so a refused form comes back as it was."""

    name: str = ""
    #: The stored version the draft started from (NAME@HASH): fields the form does not show (retrieval,
    #: examples, tools, schema) are kept from it.
    base: str = ""
    messages: list[tuple[str, str]] = field(default_factory=lambda: list(STARTER))
    params: str = ""
    models: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    dataset: str = ""
    split: str = ""
    start: int = 0
    count: int = 3
    note: str = ""

    @classmethod
    def of(cls, prompt: Prompt, ref: str) -> Draft:
        params = json.dumps(prompt.params, ensure_ascii=False) if prompt.params else ""
        return cls(
            name=prompt.name,
            base=ref,
            messages=[(m.role, m.content) for m in prompt.messages],
            params=params,
            models=[prompt.model] if prompt.model else [],
        )

    @classmethod
    def parse(cls, form: FormData) -> Draft:
        def text(key: str) -> str:
            value = form.get(key)
            return value if isinstance(value, str) else ""

        roles = [r for r in form.getlist("role") if isinstance(r, str)]
        contents = [c for c in form.getlist("content") if isinstance(c, str)]
        return cls(
            name=text("name").strip(),
            base=text("base").strip(),
            # An empty message is a row left blank for adding one, not a message.
            messages=[(r, c) for r, c in zip(roles, contents, strict=False) if c.strip()],
            params=text("params").strip(),
            models=[m.strip() for m in form.getlist("model") if isinstance(m, str) and m.strip()],
            variables={
                k[len(VAR) :]: v for k, v in form.multi_items() if k.startswith(VAR) and isinstance(v, str)
            },
            dataset=text("dataset").strip(),
            split=text("split").strip(),
            start=_int("start", text("start"), 0),
            count=_int("cases", text("cases"), 3),
            note=text("note").strip(),
        )

    def prompt(self, h: Workspace) -> Prompt:
        """The prompt the form describes. Its `model:` is the first model column's."""
        for role, _ in self.messages:
            if role not in ROLES:
                raise InvalidInputError(f"{role!r} is not a message role", hint=f"one of {', '.join(ROLES)}")
        body: dict[str, Any] = {}
        if self.base:
            body = get_prompt(h.store, self.base)[1].body()
        if self.params:
            try:
                params = json.loads(self.params)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"params are not valid JSON: {exc.msg}", hint='e.g. {"temperature": 0}'
                ) from None
            if not isinstance(params, dict):
                raise InvalidInputError("params must be a JSON object", hint='e.g. {"temperature": 0}')
            body["params"] = params
        else:
            body.pop("params", None)
        if self.models:
            body["model"] = self.models[0]
        body["messages"] = [{"role": r, "content": c} for r, c in self.messages]
        return Prompt.parse({**body, "name": self.name or "playground"}, where="the playground's prompt")

    def check_models(self) -> list[str]:
        if not self.models:
            raise InvalidInputError("name a model to run on", hint="e.g. local/smollm2-135m-instruct")
        if len(self.models) > MAX_MODELS:
            raise InvalidInputError(f"at most {MAX_MODELS} models side by side (got {len(self.models)})")
        return list(dict.fromkeys(self.models))


def _int(field_name: str, text: str, default: int) -> int:
    if not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInputError(f"{field_name} must be a whole number, not {text!r}") from None


VariableSet = tuple[str, str | None, Mapping[str, Any]]
"""A row's label, its case id (None for values typed by hand), and the variables."""

Cell = PromptRun | HonedError | None
"""A model's run for a row, its failure, or None while it runs."""


@dataclass(frozen=True)
class Row:
    """One set of variables (a case, or the values typed by hand) and each model's run or failure."""

    label: str
    case_id: str | None
    variables: Mapping[str, Any]
    results: list[Cell]

    @property
    def inputs_json(self) -> str:
        return json.dumps(dict(self.variables), ensure_ascii=False)


def _variable_sets(h: Workspace, draft: Draft, prompt: Prompt) -> list[VariableSet]:
    """What to run the prompt on: cases of the dataset version the form names, else the typed values."""
    if not draft.dataset:
        needed = prompt.variables()
        return [("by hand", None, {k: v for k, v in draft.variables.items() if k in needed})]
    if not 1 <= draft.count <= MAX_CASES:
        raise InvalidInputError(f"run on 1 to {MAX_CASES} cases (got {draft.count})")
    dataset = get_dataset(h.store, draft.dataset)
    cases = find_cases(dataset, split=draft.split or None)[max(draft.start, 0) :][: draft.count]
    if not cases:
        raise InvalidInputError(
            f"{dataset.ref} has no cases from number {draft.start + 1}", hint="start at 0"
        )
    return [(c.id, c.id, c.inputs) for c in cases]


def _rows(sets: Sequence[VariableSet], grid: Sequence[Sequence[Cell]]) -> list[Row]:
    return [
        Row(label, case_id, variables, list(results))
        for (label, case_id, variables), results in zip(sets, grid, strict=True)
    ]


def _line(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode() + b"\n"


def router(h: Workspace) -> APIRouter:
    api = APIRouter()

    def render(
        request: Request,
        draft: Draft,
        *,
        rows: Sequence[Row] = (),
        columns: Sequence[str] = (),
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        variables: list[str] = []
        # A draft that does not parse yet shows no variable fields; its error is shown above the form.
        with suppress(HonedError):
            variables = sorted(draft.prompt(h).variables()) if draft.messages else []
        models = draft.models + [""] * (MAX_MODELS - len(draft.models))
        context = {
            "draft": draft,
            "models": models[:MAX_MODELS],
            "variables": variables,
            "rows": rows,
            "columns": columns,
            "error": error,
            "roles": ROLES,
            "cached": h.client.use_cache,
            "max_cases": MAX_CASES,
        }
        return page(request, "playground/playground.html", context, status=status)

    @api.get("/playground")
    def playground(request: Request, prompt: str | None = None, dataset: str | None = None) -> Response:
        draft = Draft()
        if prompt:
            version, found = get_prompt(h.store, prompt)
            draft = Draft.of(found, f"{found.name}@{version.hash}")
        draft.dataset = dataset or ""
        return render(request, draft)

    async def planned(request: Request) -> tuple[Draft, Prompt, list[str], list[VariableSet]] | Response:
        """What a run posts: the draft, its prompt, models and variable sets; or the form, refused."""
        draft = Draft.parse(await request.form())
        try:
            prompt = draft.prompt(h)
            return draft, prompt, draft.check_models(), _variable_sets(h, draft, prompt)
        except HonedError as exc:
            return render(request, draft, error=exc.one_line(), status=400)

    @api.post("/playground/run", openapi_extra=FORM)
    async def run(request: Request) -> Response:
        viewer = require(request, "write")
        plan = await planned(request)
        if isinstance(plan, Response):
            return plan
        draft, prompt, models, sets = plan
        # The calls' log entries say they came from the playground and whose run it was.
        with log_context(metadata={"playground": True, "user": viewer.user}):
            grid = await arun_prompt_grid(h, prompt, models, [variables for _, _, variables in sets])
        return render(request, draft, rows=_rows(sets, grid), columns=models)

    @api.post("/playground/stream", openapi_extra=FORM)
    async def stream(request: Request) -> Response:
        """The run for the page's script: lines of JSON, first the grid with empty cells, then each
        output's pieces as `{"cell", "text"}`, then the whole grid again, done. A refused form is the
        page with its error, as from /playground/run."""
        viewer = require(request, "write")
        plan = await planned(request)
        if isinstance(plan, Response):
            return plan
        draft, prompt, models, sets = plan

        def grid_html(grid: Sequence[Sequence[Cell]]) -> str:
            context = {"draft": draft, "rows": _rows(sets, grid), "columns": models}
            return fragment(request, "playground/_results.html", context)

        async def lines() -> AsyncIterator[bytes]:
            yield _line({"html": grid_html([[None] * len(models) for _ in sets])})
            # One task drives this generator, so the log context holds for every call it makes.
            with log_context(metadata={"playground": True, "user": viewer.user}):
                async for event in astream_prompt_grid(
                    h, prompt, models, [variables for _, _, variables in sets]
                ):
                    if isinstance(event, Piece):
                        yield _line({"cell": f"cell-{event.row}-{event.column}", "text": event.text})
                    else:
                        yield _line({"html": grid_html(event), "done": True})

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @api.post("/playground/save", openapi_extra=FORM)
    async def save(request: Request) -> Response:
        viewer = require(request, "write")
        draft = Draft.parse(await request.form())
        try:
            if not draft.name:
                raise InvalidInputError("name the prompt to save it", hint="e.g. qa")
            [pushed] = push(h.store, [draft.prompt(h)], note=draft.note or None, by=viewer.user)
        except HonedError as exc:
            return render(request, draft, error=exc.one_line(), status=400)
        return RedirectResponse(f"/prompts/{draft.name}?v={pushed.version.number}", status_code=303)

    @api.post("/playground/case", openapi_extra=FORM)
    async def add_case(request: Request) -> Response:
        viewer = require(request, "write")
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        name = values.get("target", "").strip()
        if not name:
            raise InvalidInputError("name the dataset to add the case to")
        try:
            inputs = json.loads(values.get("inputs", ""))
        except json.JSONDecodeError:
            raise InvalidInputError("the case's inputs are not valid JSON: rerun and add it again") from None
        if not isinstance(inputs, dict) or not inputs:
            raise InvalidInputError("a case needs at least one input variable")
        metadata = {
            "source": "playground",
            "model": values.get("model", ""),
            "prompt": values.get("prompt", ""),
        }
        try:
            case = case_from_fields(
                {
                    "id": values.get("case_id", "").strip() or None,
                    "inputs": inputs,
                    "reference": values.get("output", ""),
                    "metadata": {k: v for k, v in metadata.items() if v},
                }
            )
        except ValueError as exc:
            raise InvalidInputError(f"the case is not valid: {exc}") from None
        note = f"output of {metadata['model']} added from the playground"
        result = save_case(h.store, name, case, note=note, by=viewer.user)
        return RedirectResponse(f"/datasets/{name}?v={result.dataset.number}", status_code=303)

    return api
