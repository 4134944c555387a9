"""The `Prompt` value type: templated messages plus the model, params and output contract they are meant for.

A prompt's identity is its `body()`: canonical JSON of everything that changes what the model is sent or
asked for (messages, few-shot examples, model, params, response schema, tools) plus its description. The
name is *not* part of the body: a name collects versions, and the same content under two names is one
version. Unset optional fields are left out of the body, so adding an optional field to this class later
does not change the hash of any existing prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from honed.errors import HonedError, InvalidInputError
from honed.hashing import content_hash
from honed.models.registry import ModelRef
from honed.models.types import ChatRequest, Message, Params
from honed.prompts.template import check_syntax, render, template_variables
from honed.store.names import check_name
from honed.userfiles import validate

T = TypeVar("T")
PromptRole = Literal["system", "user", "assistant"]
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "max_tokens": (int,),
    "seed": (int,),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Named(_Strict):
    """What prompts and chains share as named, versioned files: parsing with errors that point into the
    file, rebuilding from a stored body, and the name rule of every stored name. A subclass declares its
    own `name` field (where it stands in the field order is part of its content hash)."""

    noun: ClassVar[str]  # "prompt", "chain": as error messages name it

    @classmethod
    def parse(
        cls,
        data: Mapping[str, Any],
        *,
        where: str = "",
        lines: Mapping[tuple[Any, ...], int] | None = None,
    ) -> Self:
        """Validate `data`; an error names `where` (a file path, say; default: the noun), the line when
        `lines` maps field paths to lines, and the field."""
        return validate(cls, dict(data), where=where or cls.noun, lines=lines)

    @classmethod
    def from_body(cls, name: str, body: Mapping[str, Any]) -> Self:
        """The version a stored body holds (the inverse of `body()`)."""
        return cls.parse({"name": name, **body}, where=f"stored {cls.noun} {name!r}")

    @field_validator("name", check_fields=False)
    @classmethod
    def _name(cls, value: str) -> str:
        _check(lambda: check_name(cls.noun, value))
        return value


class PromptMessage(_Strict):
    """One templated message. Tool messages are not part of a prompt template."""

    role: PromptRole
    content: str

    @field_validator("content")
    @classmethod
    def _template(cls, value: str) -> str:
        check_syntax(value)
        return value


class Example(_Strict):
    """A few-shot example; it becomes a user message (`input`) and an assistant message (`output`)."""

    input: str
    output: str

    @field_validator("input", "output")
    @classmethod
    def _template(cls, value: str) -> str:
        check_syntax(value)
        return value


_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


class RetrieveStep(_Strict):
    """Fill the variable `into` from a knowledge base before rendering. `mode: search` (the default)
    puts the `k` best chunks for the rendered `query` there, numbered `[1] (chunk id) text` for
    citations; `mode: stuff` fits whole documents instead, in id order, without retrieval. Either way
    `max_tokens` caps what goes in (chunks or documents in order, until the next would not fit).
    `mode: gold` is an oracle for diagnosis: the documents the case's `context_ids` name (what perfect
    retrieval would find), formatted like `stuff`; a case without gold ids gets an empty context.
    Instead of `kb`, a `router` (a `honed.rag.retrieve.routing.RouterConfig` mapping) picks the knowledge
    base per query, or none: then the variable is empty and the trace records the decision."""

    kb: str | None = None
    router: dict[str, Any] | None = None
    into: str = Field(default="context", pattern=_IDENT)
    mode: Literal["search", "stuff", "gold"] = "search"
    query: str | None = None
    k: int = Field(default=5, ge=1, le=1000)
    method: Literal["dense", "bm25", "hybrid"] = "hybrid"
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    where: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)

    @field_validator("query")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            check_syntax(value)
        return value

    @field_validator("where")
    @classmethod
    def _where(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # The filter syntax is plain data checked by a pure function; a malformed filter must fail when
        # the prompt is read, not at its first retrieval.
        from honed.rag.index.filters import check

        _check(lambda: check(value))
        return value

    @model_validator(mode="after")
    def _query_for_search(self) -> RetrieveStep:
        if (self.kb is None) == (self.router is None):
            raise ValueError("a retrieve step needs exactly one of `kb` or `router`")
        if (self.mode == "search" or self.router is not None) and self.query is None:
            raise ValueError("a search step needs `query` (a template, e.g. '{{ question }}')")
        return self


class ExamplesFrom(_Strict):
    """Dynamic few-shot: the `k` cases of `dataset` most similar to the rendered `query` (by embedding
    similarity of the same template rendered over each case's inputs) become demonstrations, after the
    static `examples`. `input`/`output` are templates over an example case: its inputs as variables,
    plus `reference`. A case with the current case's id is never its own example."""

    dataset: str
    query: str
    k: int = Field(default=3, ge=1, le=50)
    split: str | None = None
    input: str
    output: str = "{{ reference }}"

    @field_validator("query", "input", "output")
    @classmethod
    def _template(cls, value: str) -> str:
        check_syntax(value)
        return value


class Resource(_Strict):
    """A prompt tool: a name a template calls while rendering. Exactly one of `file` (its text; a path
    relative to the prompt file's folder), `kb` (`{{ name(query) }}`: numbered chunks) or `sql` (a database
    URL; `{{ name(key=value) }}` runs the fixed SELECT in `query` with those parameters, or
    `{{ name("SELECT ...") }}` when no `query` is set; read-only, rows as a table)."""

    file: str | None = None
    kb: str | None = None
    k: int = Field(default=3, ge=1, le=100)
    method: Literal["dense", "bm25", "hybrid"] = "hybrid"
    sql: str | None = None
    query: str | None = None
    row_limit: int = Field(default=50, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one(self) -> Resource:
        given = [k for k in ("file", "kb", "sql") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a resource needs exactly one of `file`, `kb` or `sql`")
        return self


class Prompt(Named):
    """A versionable prompt. Build one with `Prompt.parse(mapping)` (errors are `InvalidInputError`) or
    load it from YAML with `honed.prompts.load_prompt`.

    Rendering puts the leading system message(s) first, then the `examples` as user/assistant pairs, then
    the remaining messages. `tools` (OpenAI tool definitions) are sent with every request; the completion's
    `tool_calls` holds what the model asked for, and a provider without tool support refuses the call.
    """

    noun = "prompt"

    name: str
    description: str | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    messages: list[PromptMessage] = Field(min_length=1)
    examples: list[Example] = Field(default_factory=list)
    response_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    retrieve: list[RetrieveStep] | None = None
    examples_from: ExamplesFrom | None = None
    resources: dict[str, Resource] | None = None

    # -- construction ---------------------------------------------------------------------------------

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        if value is not None:
            _check(lambda: ModelRef.parse(value))
        return value

    @field_validator("params", "examples", mode="before")
    @classmethod
    def _empty(cls, value: Any, info: Any) -> Any:
        # `params:` with nothing after it is YAML's null; it means "none".
        return ({} if info.field_name == "params" else []) if value is None else value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, types in _PARAM_TYPES.items():
            v = value.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, types)):
                raise ValueError(f"{key} must be {'an integer' if types == (int,) else 'a number'}")
        stop = value.get("stop")
        if stop is not None and not (
            isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
        ):
            raise ValueError("stop must be a string or a list of strings")
        # Normalised (`stop: x` == `stop: [x]`) so that equivalent files hash the same.
        return _check(lambda: Params.from_dict(value).to_dict())

    @field_validator("response_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            # Imported here: jsonschema costs ~70 ms, and every CLI command imports this module.
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError

            try:
                Draft202012Validator.check_schema(value)
            except SchemaError as exc:
                where = "/".join(str(p) for p in exc.path) or "top level"
                raise ValueError(f"not a valid JSON schema at {where}: {exc.message}") from None
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, tool in enumerate(value or []):
            function = tool.get("function")
            if tool.get("type") != "function" or not isinstance(function, dict):
                raise ValueError(f"tool {i + 1} must be {{type: function, function: {{name: ...}}}}")
            if not isinstance(function.get("name"), str):
                raise ValueError(f"tool {i + 1} needs function.name")
        return value

    # -- identity -------------------------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        """Canonical JSON content for the version hash (see the module docstring)."""
        out: dict[str, Any] = {"messages": [m.model_dump() for m in self.messages]}
        if self.examples:
            out["examples"] = [e.model_dump() for e in self.examples]
        if self.params:
            out["params"] = self.params
        for key in ("description", "model", "response_schema", "tools"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.retrieve:
            out["retrieve"] = [r.model_dump(exclude_none=True) for r in self.retrieve]
        if self.examples_from is not None:
            out["examples_from"] = self.examples_from.model_dump(exclude_none=True)
        if self.resources:
            out["resources"] = {k: r.model_dump(exclude_none=True) for k, r in self.resources.items()}
        return out

    @property
    def augmented(self) -> bool:
        """Whether rendering needs retrieval first (see `honed.rag.retrieve.augment`)."""
        return bool(self.retrieve or self.examples_from or self.resources)

    def provided(self) -> set[str]:
        """Variables the prompt fills itself: retrieval targets and resource names."""
        return {r.into for r in self.retrieve or []} | set(self.resources or {})

    def version(self) -> str:
        """The content hash this prompt has (or would have) in the store."""
        return content_hash(self.body())

    def variables(self) -> set[str]:
        """Every variable the templates read."""
        found: set[str] = set()
        for text in self._texts():
            found |= template_variables(text)
        for step in self.retrieve or []:
            found |= template_variables(step.query or "")
        if self.examples_from is not None:
            found |= template_variables(self.examples_from.query)
        return found - self.provided()

    # -- use ------------------------------------------------------------------------------------------

    def render(
        self, variables: Mapping[str, Any] | None = None, *, examples: Sequence[tuple[str, str]] = ()
    ) -> list[Message]:
        """The messages to send, rendered with `variables`; `examples` are (user, assistant) texts added
        after the prompt's own examples (dynamic few-shot). Raises `InvalidInputError` naming the message
        and the missing variable."""
        values = dict(variables or {})
        out: list[Message] = []
        lead = next((i for i, m in enumerate(self.messages) if m.role != "system"), len(self.messages))
        for i, m in enumerate(self.messages[:lead]):
            out.append({"role": m.role, "content": self._render(m.content, values, i, m.role)})
        for j, ex in enumerate(self.examples, 1):
            where = f"prompt {self.name!r} example {j}"
            out.append({"role": "user", "content": render(ex.input, values, where=f"{where} input")})
            out.append({"role": "assistant", "content": render(ex.output, values, where=f"{where} output")})
        for user, assistant in examples:
            out.append({"role": "user", "content": user})
            out.append({"role": "assistant", "content": assistant})
        for i, m in enumerate(self.messages[lead:], lead):
            out.append({"role": m.role, "content": self._render(m.content, values, i, m.role)})
        return out

    def request(
        self,
        variables: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        params: Params | Mapping[str, Any] | None = None,
        sample_index: int = 0,
        examples: Sequence[tuple[str, str]] = (),
    ) -> ChatRequest:
        """A `ChatRequest` for these variables. `model` overrides the prompt's model; `params` are laid
        over the prompt's params."""
        chosen = model or self.model
        if chosen is None:
            raise InvalidInputError(
                f"prompt {self.name!r} names no model", hint="set `model:` in the prompt or pass a model"
            )
        extra = params.to_dict() if isinstance(params, Params) else dict(params or {})
        return ChatRequest.of(
            chosen,
            self.render(variables, examples=examples),
            Params.from_dict({**self.params, **extra}),
            response_schema=self.response_schema,
            sample_index=sample_index,
            tools=self.tools,
        )

    def _render(self, source: str, values: dict[str, Any], index: int, role: str) -> str:
        return render(source, values, where=f"prompt {self.name!r} message {index + 1} ({role})")

    def _texts(self) -> list[str]:
        return [m.content for m in self.messages] + [t for e in self.examples for t in (e.input, e.output)]


def _check(fn: Callable[[], T]) -> T:
    """Run a honed check inside a pydantic validator, where only ValueError becomes a field error."""
    try:
        return fn()
    except HonedError as exc:
        raise ValueError(str(exc)) from None
