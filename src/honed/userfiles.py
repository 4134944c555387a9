"""Reading and validating the files users write (prompts, specs, plans, `honed.toml`), with one error form:

    prompts/qa.yaml:7: messages[1].role: must be one of system, user, assistant (got 'usr')

`read_file` parses YAML (JSON is read as the YAML it is) into plain JSON values plus a map from each field
path to its line: PyYAML's `safe_load` forgets where values came from, so we compose the node tree instead
(it keeps start marks), record the line of every mapping key and list item, and build the values ourselves.
Duplicate keys, which `safe_load` silently resolves to the last one, are errors here, and so are values
that are not JSON (dates, binary, NaN): what is read is hashed as canonical JSON.

`validate` turns a pydantic `ValidationError` into one `InvalidInputError` naming the file, the line when
the map knows it, and the field as one would point at it in the file. The first problem in file order is
the message (a reader fixes a file top-down); an unknown key's hint lists the keys allowed there; further
problems follow the hint as "also ...", so a file with several mistakes is not fixed one re-run at a time.
"""

from __future__ import annotations

import json
import math
import types
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from honed.errors import InvalidInputError

__all__ = [
    "Lines",
    "Loc",
    "Problem",
    "UserFile",
    "describe",
    "format_loc",
    "invalid",
    "json_lines",
    "locate",
    "parse_text",
    "problems",
    "read_file",
    "validate",
]

Loc = tuple[str | int, ...]
#: Field path -> 1-based line, as `read_file` builds it (any mapping of tuples will do: TOML's, say).
Lines = Mapping[tuple[Any, ...], int]
M = TypeVar("M", bound=BaseModel)

#: Tags of pydantic tagged unions start with this; they are ours, not the user's, so paths drop them.
_TAG_PREFIX = "<"
#: How many problems after the first an error lists (a file with hundreds is fixed a few at a time).
_MORE_SHOWN = 5
#: The longest value repr a message quotes back as "(got ...)"; longer ones are on the line it names.
_GOT_MAX = 60


# -- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserFile:
    """A parsed file: `data` (plain JSON values) and `lines` (field path -> 1-based line)."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return str(self.path)


def read_file(path: Path, what: str = "file") -> UserFile:
    """Parse one YAML (or JSON) document. Raises `InvalidInputError` as "FILE:LINE: what is wrong";
    `what` names the kind of file in "no such ..."."""
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such {what}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot be read: {exc.strerror}") from None
    return parse_text(text, path)


def json_lines(path: Path | str, text: str, *, hint: str | None = None) -> Iterator[tuple[int, Any]]:
    """The non-blank lines of JSONL `text` as (line number, JSON value); `path` is what errors name, and a
    line that is not JSON is one as "FILE:LINE: not valid JSON (why)" with `hint`. Lines end at "\n"
    only: a JSON string may hold U+2028 and the like, which `str.splitlines` would also break at."""
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path}:{n}: not valid JSON ({exc.msg})", hint=hint) from None
        yield n, value


def parse_text(text: str, path: Path) -> UserFile:
    """`read_file` for text already in hand; `path` is what errors name."""
    loader = yaml.SafeLoader(text)
    lines: dict[Loc, int] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            raise InvalidInputError(f"{path}:1: the file is empty")
        data = _convert(loader, node, (), lines, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "cannot parse"
        if "expected a single document" in str(exc.context or ""):
            problem = "holds more than one YAML document (one per file)"
        raise InvalidInputError(f"{path}:{line}: not valid YAML ({problem})") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: not valid YAML ({exc})") from None
    finally:
        loader.dispose()
    lines.setdefault((), 1)
    return UserFile(path, data, lines)


def _convert(loader: yaml.SafeLoader, node: yaml.Node, at: Loc, lines: dict[Loc, int], path: Path) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve `<<:` merge keys
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise InvalidInputError(f"{path}:{line}: keys must be strings, not {key!r}")
            if key in out:
                raise InvalidInputError(f"{path}:{line}: duplicate key {key!r}")
            lines[(*at, key)] = line
            out[key] = _convert(loader, value_node, (*at, key), lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[(*at, i)] = item.start_mark.line + 1
            items.append(_convert(loader, item, (*at, i), lines, path))
        return items
    value = loader.construct_object(node, deep=True)
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    line = node.start_mark.line + 1
    raise InvalidInputError(
        f"{path}:{line}: {value!r} is not a JSON value", hint="quote it to make it a string"
    )


# -- validating ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is in the file (`loc`, `line`) and what is wrong."""

    loc: Loc
    line: int | None
    message: str
    unknown_key: bool
    #: where the problem is in the data validated (before `at` and `rename`): what the model knows
    inner: Loc = ()
    missing: bool = False

    def __str__(self) -> str:
        field_ = format_loc(self.loc)
        return f"{field_}: {self.message}" if field_ else self.message


def validate(
    model: type[M],
    data: Any,
    *,
    where: str,
    lines: Lines | None = None,
    at: Loc = (),
    hint: str | None = None,
    rename: Callable[[Loc], Loc] | None = None,
) -> M:
    """`model` validated from `data`, or one `InvalidInputError` "WHERE:LINE: field.path: message".

    `where` names the file (or the thing validated); `lines` maps field paths to lines; `at` is where
    `data` sits in the file when it is a part of it; `rename` maps a location in `data` back to the
    file's when the caller reshaped the file's data first; `hint` says how to fix any problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, model, where=where, lines=lines, at=at, hint=hint, rename=rename) from None


def invalid(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    where: str,
    lines: Lines | None = None,
    at: Loc = (),
    hint: str | None = None,
    rename: Callable[[Loc], Loc] | None = None,
    hidden: Collection[str] = (),
) -> InvalidInputError:
    """The error `validate` raises, for callers that catch `ValidationError` themselves (to blame an
    environment variable, say). `hidden` keys are set by the program, so they are not offered as allowed."""
    found = problems(exc, lines=lines, at=at, rename=rename)
    first = found[0]
    hints = [hint] if hint else []
    if first.unknown_key:
        there = model_at(model, first.inner[:-1])
        if there is not None:
            hints.append(f"allowed keys here: {', '.join(k for k in there.model_fields if k not in hidden)}")
    if len(found) > 1:
        rest = [f"{'line ' + str(p.line) + ': ' if p.line else ''}{p}" for p in found[1:]]
        shown = rest[:_MORE_SHOWN] + ([f"{len(rest) - _MORE_SHOWN} more"] if len(rest) > _MORE_SHOWN else [])
        hints.append(f"also {'; '.join(shown)}")
    prefix = f"{where}:{first.line}" if first.line else where
    return InvalidInputError(f"{prefix}: {first}", hint="; ".join(hints) or None)


def problems(
    exc: ValidationError,
    *,
    lines: Lines | None = None,
    at: Loc = (),
    rename: Callable[[Loc], Loc] | None = None,
) -> list[Problem]:
    """Every problem in `exc`, in file order (those without a line first, as they concern the whole)
    with missing keys last."""
    out: list[Problem] = []
    for error in exc.errors():
        inner: Loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(_TAG_PREFIX)))
        loc = (*at, *(rename(inner) if rename is not None else inner))
        unknown = error["type"] == "extra_forbidden"
        message = "unknown key" if unknown else _message(error)
        line = _line_of(lines, loc) if lines is not None else None
        out.append(Problem(loc, line, message, unknown, inner, error["type"] == "missing"))
    # File order, except that missing keys come last: one is often the other side of a misspelt key
    # (`inpt:` and no `input:`), which is the line to fix. sorted() is stable, so problems on one line
    # keep pydantic's (field) order.
    return sorted(out, key=lambda p: (p.missing, p.line or 0))


def locate(where: str, loc: Loc, lines: Lines | None = None) -> str:
    """The start of an error about `loc` that validation did not catch (a check across fields, say):
    "WHERE:LINE: field.path", in the same form as `validate`'s."""
    line = _line_of(lines, loc) if lines is not None else None
    field_ = format_loc(loc)
    return f"{where}:{line}: {field_}" if line else f"{where}: {field_}"


def describe(exc: ValidationError) -> str:
    """The first problem as "field: message", for callers that add the file and line themselves (the
    dataset readers know the row's line; pydantic does not)."""
    return str(problems(exc)[0])


def format_loc(loc: Sequence[str | int]) -> str:
    """`('messages', 1, 'role')` -> `messages[1].role`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(lines: Lines, loc: Sequence[str | int]) -> int | None:
    """The line of the deepest part of `loc` the map knows (a missing key points at its parent)."""
    for n in range(len(loc), -1, -1):
        found = lines.get(tuple(loc[:n]))
        if found is not None:
            return found
    return None


def model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc`, for listing its allowed keys."""
    current: Any = root
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        found = current.model_fields.get(part)
        if found is None:
            return None
        current = _unwrap(found.annotation)
        if get_origin(current) is dict:  # dict[str, Model] (endpoints, say): the next part names an entry
            current = _unwrap(get_args(current)[1])
            if parts:
                parts.pop(0)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """The model class inside list[...], X | None, Annotated[...] (or the annotation itself)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (list, Union, types.UnionType):
        for arg in get_args(annotation):
            inner = _unwrap(arg)
            if get_origin(inner) is dict or (isinstance(inner, type) and issubclass(inner, BaseModel)):
                return inner
    return annotation


def _message(error: Any) -> str:
    """Pydantic's message in the file's terms, with the value given when it is short and not quoted."""
    text = _words(error)
    value = error.get("input")
    # A string is quoted back unless the message already quotes it; a number always, as a bare "10" in
    # a message ("must be smaller than size (10)") is usually another value.
    if error["type"] != "missing" and isinstance(value, str | int | float | bool):
        got = repr(value)
        if len(got) <= _GOT_MAX and not (isinstance(value, str) and got in text):
            text += f" (got {got})"
    return text


def _words(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"must be one of {expected}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "too_short" and "min_length" in ctx:
        return f"needs at least {ctx['min_length']} item(s)"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "is empty"
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
