"""Turn a pydantic `ValidationError` into one `InvalidInputError` in the form users can act on:

    prompts/qa.yaml:7: messages[1].role: must be one of system, user, assistant

The line comes from a map of field paths to lines that the YAML reader builds (see `yamlsource`); the
field path is written the way one would point at it in the file.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from honed.errors import InvalidInputError

Loc = tuple[str | int, ...]
#: Tags of pydantic tagged unions start with this; they are ours, not the user's, so paths drop them.
TAG_PREFIX = "<"


def invalid(
    exc: ValidationError,
    where: str,
    root: type[BaseModel],
    lines: Mapping[tuple[Any, ...], int] | None = None,
) -> InvalidInputError:
    errors = exc.errors()
    locs: list[Loc] = [
        tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith(TAG_PREFIX))) for e in errors
    ]

    def line(i: int) -> int | None:
        return line_of(lines, locs[i]) if lines is not None else None

    def problem(i: int) -> str:
        field = format_loc(locs[i])
        message = "unknown key" if errors[i]["type"] == "extra_forbidden" else _message(errors[i])
        return f"{field + ': ' if field else ''}{message}"

    # Report the problems in file order, as a reader fixing them top-down expects: the first in the
    # message, the others (which would otherwise only show up one per re-run) after the hint.
    order = sorted(range(len(errors)), key=lambda i: line(i) or 0)
    at = order[0]
    hint: str | None = None
    if errors[at]["type"] == "extra_forbidden":
        model = model_at(root, locs[at][:-1])
        if model is not None:
            hint = f"allowed keys here: {', '.join(model.model_fields)}"
    first_line = line(at)
    prefix = f"{where}:{first_line}" if first_line else where
    if len(order) > 1:
        rest = [f"{'line ' + str(line(i)) + ': ' if line(i) else ''}{problem(i)}" for i in order[1:]]
        shown = rest[:_MORE_SHOWN] + ([f"{len(rest) - _MORE_SHOWN} more"] if len(rest) > _MORE_SHOWN else [])
        more = f"also {'; '.join(shown)}"
        hint = f"{hint}; {more}" if hint else more
    return InvalidInputError(f"{prefix}: {problem(at)}", hint=hint)


#: How many problems after the first an error lists (a file with hundreds is fixed a few at a time).
_MORE_SHOWN = 5


def format_loc(loc: Sequence[str | int]) -> str:
    """`('messages', 1, 'role')` -> `messages[1].role`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_of(lines: Mapping[tuple[Any, ...], int], loc: Sequence[str | int]) -> int | None:
    """The line of the deepest part of `loc` the map knows (a missing key points at its parent)."""
    for n in range(len(loc), -1, -1):
        found = lines.get(tuple(loc[:n]))
        if found is not None:
            return found
    return None


def model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc`, for listing its allowed keys."""
    current: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """The model class inside list[...], X | None, Annotated[...] (or the annotation itself)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (list, Union, types.UnionType):
        for arg in get_args(annotation):
            inner = _unwrap(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return annotation


def _message(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"must be one of {expected}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "too_short" and "min_length" in ctx:
        return f"needs at least {ctx['min_length']} item(s)"
    simple = {
        "missing": "is required",
        "string_type": "must be a string",
        "dict_type": "must be a mapping",
        "model_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
        "list_type": "must be a list",
    }
    if kind in simple:
        return simple[kind]
    msg = str(error["msg"])
    return msg[:1].lower() + msg[1:]
