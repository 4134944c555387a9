"""What changed between two versions: a unified diff of their YAML, for people, and the list of changed
fields (`params.temperature`, `messages[2].content`), for reports that attribute a score change to it."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from honed.prompts.chain import Chain
from honed.prompts.files import to_data, to_yaml
from honed.prompts.spec import Prompt
from honed.userfiles import format_loc

_MISSING = object()
_DEPTH = 3  # messages -> [2] -> content; deeper changes are reported at that depth


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str
    change: str  # "added" | "removed" | "changed"
    old: Any = None
    new: Any = None


@dataclass(frozen=True, slots=True)
class Diff:
    old_label: str
    new_label: str
    changes: list[FieldChange]
    unified: str

    @property
    def identical(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old_label,
            "new": self.new_label,
            "identical": self.identical,
            "changes": [
                {"path": c.path, "change": c.change, "old": c.old, "new": c.new} for c in self.changes
            ],
            "unified": self.unified,
        }


def diff_prompts(
    old: Prompt | Chain, new: Prompt | Chain, *, old_label: str = "old", new_label: str = "new"
) -> Diff:
    """Compare two prompts (or chains). The name is compared too, so two files can be diffed."""
    old_body, new_body = to_data(old), to_data(new)  # in file order, so changes list top-down
    unified = "".join(
        difflib.unified_diff(
            to_yaml(old).splitlines(keepends=True),
            to_yaml(new).splitlines(keepends=True),
            fromfile=old_label,
            tofile=new_label,
        )
    )
    return Diff(old_label, new_label, changed_fields(old_body, new_body), unified)


def changed_fields(old: Any, new: Any) -> list[FieldChange]:
    out: list[FieldChange] = []
    _walk(old, new, (), out)
    return out


def _walk(old: Any, new: Any, at: tuple[str | int, ...], out: list[FieldChange]) -> None:
    if old == new:
        return
    if old is _MISSING or new is _MISSING:
        change = "added" if old is _MISSING else "removed"
        out.append(FieldChange(format_loc(at), change, _value(old), _value(new)))
        return
    if len(at) < _DEPTH and isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            _walk(old.get(key, _MISSING), new.get(key, _MISSING), (*at, key), out)
        return
    if len(at) < _DEPTH and isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            a = old[i] if i < len(old) else _MISSING
            b = new[i] if i < len(new) else _MISSING
            _walk(a, b, (*at, i), out)
        return
    out.append(FieldChange(format_loc(at), "changed", old, new))


def _value(v: Any) -> Any:
    return None if v is _MISSING else v
