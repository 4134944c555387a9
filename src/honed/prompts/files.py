"""Prompt and chain files: one YAML document per file, validated strictly, written back for `show --yaml`.

A file whose top level has `steps:` is a chain; anything else is a prompt. The file name without its
extension is the default name, so `prompts/qa.yaml` holds prompt `qa` unless it says `name:`.

    name: qa                      # optional: defaults to the file name
    model: local/smollm2-135m-instruct
    params: {temperature: 0, max_tokens: 64}
    messages:
      - role: system
        content: Answer in one sentence.
      - role: user
        content: "{{ question }}"
    examples:                     # optional few-shot pairs, placed after the system message(s)
      - {input: What is 2+2?, output: "4"}
    response_schema: {...}        # optional JSON schema: the model is asked for JSON that fits it
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from honed.errors import InvalidInputError
from honed.prompts.chain import Chain
from honed.prompts.spec import Prompt
from honed.userfiles import read_file

SUFFIXES = (".yaml", ".yml")
_FIELD_ORDER = ("name", "description", "model", "params", "messages", "examples", "response_schema", "tools")


def is_chain_data(data: Any) -> bool:
    return isinstance(data, dict) and "steps" in data


def load_file(path: str | Path) -> Prompt | Chain:
    """A prompt or a chain from one YAML file; errors read "FILE:LINE: field: what is wrong"."""
    source = read_file(Path(path))
    data = source.data
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"{source.where}:1: expected a mapping with messages (a prompt) or steps (a chain)",
            hint="see examples/prompts/qa.yaml",
        )
    data = {"name": Path(path).stem, **data}
    if is_chain_data(data):
        return Chain.parse(data, where=source.where, lines=source.lines)
    return Prompt.parse(data, where=source.where, lines=source.lines)


def load_prompt(path: str | Path) -> Prompt:
    """The prompt in one YAML file."""
    item = load_file(path)
    if not isinstance(item, Prompt):
        raise InvalidInputError(f"{path}: is a chain, not a prompt", hint="use load_chain")
    return item


def load_chain(path: str | Path) -> Chain:
    """The chain in one YAML file."""
    item = load_file(path)
    if not isinstance(item, Chain):
        raise InvalidInputError(f"{path}: is a prompt, not a chain (it has no steps)")
    return item


def find_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, and the *.yaml / *.yml files under the folders named (recursively, sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
            if not inside:
                raise InvalidInputError(f"{path}: has no .yaml files")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise InvalidInputError(f"{path}: no such file or folder")
    return list(dict.fromkeys(found))


def load_files(paths: Iterable[str | Path]) -> list[Prompt | Chain]:
    """Every prompt and chain in `paths`, all validated before any is returned. The first error is
    raised, and its hint names the other invalid files, so one run shows everything to fix."""
    items: list[Prompt | Chain] = []
    errors: list[tuple[Path, InvalidInputError]] = []
    for path in find_files(paths):
        try:
            items.append(load_file(path))
        except InvalidInputError as exc:
            errors.append((path, exc))
    if errors:
        first = errors[0][1]
        if len(errors) > 1:
            others = "also invalid: " + ", ".join(str(p) for p, _ in errors[1:])
            first.hint = f"{first.hint}; {others}" if first.hint else others
        raise first
    seen: dict[tuple[str, str], int] = {}
    for item in items:
        key = (type(item).__name__, item.name)
        seen[key] = seen.get(key, 0) + 1
    dupes = sorted(name for (_, name), n in seen.items() if n > 1)
    if dupes:
        raise InvalidInputError(
            f"more than one file defines {', '.join(map(repr, dupes))}",
            hint="each name belongs to one file; set a distinct `name:` in one of them",
        )
    return items


def load_prompts(paths: Iterable[str | Path]) -> list[Prompt]:
    """The prompts in `paths` (chain files among them are validated too, then left out)."""
    return [item for item in load_files(paths) if isinstance(item, Prompt)]


def to_data(item: Prompt | Chain) -> dict[str, Any]:
    """The mapping a file holding `item` would contain, fields in their documented order."""
    body = _ordered({"name": item.name, **item.body()})
    for step in body.get("steps", []):
        if isinstance(step["prompt"], dict):
            step["prompt"] = _ordered(step["prompt"])
    return body


def _ordered(data: dict[str, Any]) -> dict[str, Any]:
    order = {key: i for i, key in enumerate(_FIELD_ORDER)}
    return dict(sorted(data.items(), key=lambda kv: order.get(kv[0], len(order))))


def to_yaml(item: Prompt | Chain) -> str:
    """YAML that `load_file` reads back into an equal value (multi-line text as `|` blocks)."""
    return dump_yaml(to_data(item))


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


_OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line strings: prompts are prose, and diffs of them should read as prose."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Whitespace-only text (a stop sequence of newlines) reads best escaped: "\n\n"; so do the other line
    # breaks YAML knows (\r, NEL, LS, PS), which a block or plain scalar would turn into \n or a space.
    if any(c in value for c in _OTHER_BREAKS) or (value and not value.strip()):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
