"""The `Prompt` value type: templated messages plus the model, params and output contract they are meant for.

A prompt's identity is its `body()`: canonical JSON of everything that changes what the model is sent or
asked for (messages, few-shot examples, model, params, response schema, tools) plus its description. The
name is *not* part of the body: a name collects versions, and the same content under two names is one
version. Unset optional fields are left out of the body, so adding an optional field to this class later
does not change the hash of any existing prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from honed.errors import HonedError, InvalidInputError
from honed.hashing import content_hash
from honed.models.registry import ModelRef
from honed.models.types import ChatRequest, Message, Params
from honed.prompts.template import check_syntax, render, template_variables
from honed.prompts.validation import invalid
from honed.store.names import check_name

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


class Prompt(_Strict):
    """A versionable prompt. Build one with `Prompt.parse(mapping)` (errors are `InvalidInputError`) or
    load it from YAML with `honed.prompts.load_prompt`.

    Rendering puts the leading system message(s) first, then the `examples` as user/assistant pairs, then
    the remaining messages. `tools` (OpenAI tool definitions) are sent with every request; the completion's
    `tool_calls` holds what the model asked for, and a provider without tool support refuses the call.
    """

    name: str
    description: str | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    messages: list[PromptMessage] = Field(min_length=1)
    examples: list[Example] = Field(default_factory=list)
    response_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None

    # -- construction ---------------------------------------------------------------------------------

    @classmethod
    def parse(
        cls,
        data: Mapping[str, Any],
        *,
        where: str = "prompt",
        lines: Mapping[tuple[Any, ...], int] | None = None,
    ) -> Prompt:
        """Validate `data`; an error names `where` (a file path, say), the line when `lines` maps field
        paths to lines, and the field."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise invalid(exc, where, cls, lines) from None

    @classmethod
    def from_body(cls, name: str, body: Mapping[str, Any]) -> Prompt:
        """The prompt a stored version holds (the inverse of `body()`)."""
        return cls.parse({"name": name, **body}, where=f"stored prompt {name!r}")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _check(lambda: check_name("prompt", value))
        return value

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
        return out

    def version(self) -> str:
        """The content hash this prompt has (or would have) in the store."""
        return content_hash(self.body())

    def variables(self) -> set[str]:
        """Every variable the templates read."""
        found: set[str] = set()
        for text in self._texts():
            found |= template_variables(text)
        return found

    # -- use ------------------------------------------------------------------------------------------

    def render(self, variables: Mapping[str, Any] | None = None) -> list[Message]:
        """The messages to send, rendered with `variables`. Raises `InvalidInputError` naming the message
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
            self.render(variables),
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
