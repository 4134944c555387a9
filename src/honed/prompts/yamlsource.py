"""Read a YAML file into plain JSON values plus a map from each field path to its line.

PyYAML's `safe_load` forgets where values came from, so errors could only say "somewhere in qa.yaml". We
compose the node tree instead (which keeps start marks), record the line of every mapping key and list
item, and build the values ourselves. Duplicate keys, which `safe_load` silently resolves to the last one,
are errors here, and so are values that are not JSON (dates, binary, NaN): a version is canonical JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from honed.errors import InvalidInputError

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class YamlSource:
    """A parsed file: `data` (plain JSON values) and `lines` (field path -> 1-based line)."""

    path: Path
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return str(self.path)


def read_yaml(path: Path) -> YamlSource:
    """Parse one YAML document. Raises `InvalidInputError` as "FILE:LINE: what is wrong"."""
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: is not UTF-8 text") from None
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path) -> YamlSource:
    loader = yaml.SafeLoader(text)
    lines: dict[Path_, int] = {}
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
            problem = "holds more than one YAML document (one prompt per file)"
        raise InvalidInputError(f"{path}:{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    lines.setdefault((), 1)
    return YamlSource(path, data, lines)


def _convert(loader: yaml.SafeLoader, node: yaml.Node, at: Path_, lines: dict[Path_, int], path: Path) -> Any:
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
